/**
 * `GET /` through createApp: a small page saying what Sarafan is and where to go (in sandbox mode
 * the sandbox portal), instead of the JSON 404 every unknown path gets.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await createHarness();
});

afterAll(async () => {
  await h.close();
});

describe('GET /', () => {
  it('answers an HTML page about Sarafan with the operators’ probes, and no portal link outside sandbox mode', async () => {
    const res = await request(h.app).get('/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('<title>Sarafan</title>');
    expect(res.text).toContain('referral and loyalty programs inside Bitrix24 CRM');
    expect(res.text).toContain('<a href="/healthz">/healthz</a>');
    expect(res.text).toContain('install the application on your portal');
    expect(res.text).not.toContain('portal-link');
    expect(h.portal.calls).toEqual([]);
  });

  it('in sandbox mode links the sandbox portal', async () => {
    const app = createApp({ ...h.deps, ready: () => h.store.ready(), portalUrl: 'http://localhost:3001/' });
    const res = await request(app).get('/');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<a href="http://localhost:3001/" data-testid="portal-link">sandbox portal</a>');
    expect(res.text).not.toContain('install the application on your portal');
  });

  it('leaves every other unknown path a JSON 404', async () => {
    const res = await request(h.app).get('/nothing-here');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/json/);
  });
});
