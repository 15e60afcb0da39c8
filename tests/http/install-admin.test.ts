/**
 * The OAuth server confirms that tokens belong to Sarafan on that portal, not that their user
 * may install it: an install with a non-administrator's valid tokens is refused, storing and
 * registering nothing.
 */
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await createHarness();
  h.portal.installerIsAdmin = false;
});

afterAll(async () => {
  await h.close();
});

it('refuses an install with a non-admin user’s (valid) tokens: 403, nothing stored or registered', async () => {
  const { query, body } = installRequest(h.portal);
  const res = await request(h.app).post(`/b24/install?${query}`).set('Content-Type', 'application/x-www-form-urlencoded').send(body);
  expect(res.status).toBe(403);
  expect(res.text).toContain('administrator');
  expect(h.portal.oauthRequests).toHaveLength(1);
  expect(h.portal.calls.map((c) => c.method)).toEqual(['profile']);
  expect(await h.store.installations.findByMemberId(h.portal.memberId)).toBeNull();
});
