/**
 * GET /metrics through createApp, with msw playing the portal and an injected clock: queue
 * depth and age as the store holds them, jobs done / retried / dead by kind as the worker runs
 * them, REST requests and throttles per hashed portal equal to what the portal received, event
 * acknowledgements counted by status — and no member_id or token anywhere in the output.
 */
import { http, HttpResponse } from 'msw';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorker } from '../../server/jobs/worker.js';
import { portalLabel } from '../../server/metrics.js';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { sample } from '../support/prometheus.js';

const FORM = 'application/x-www-form-urlencoded';
const START = new Date('2026-03-01T12:00:00.000Z');

let h: Harness;
let now = START;
let portal: string;
let pid: number;

const advance = (seconds: number): void => {
  now = new Date(now.getTime() + seconds * 1000);
};
const event = (body: string) => request(h.app).post('/b24/events').set('Content-Type', FORM).send(body);

async function scrape(): Promise<string> {
  const res = await request(h.app).get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.text;
}

async function queue(): Promise<Record<string, number | undefined>> {
  const text = await scrape();
  return Object.fromEntries(
    ['queued', 'running', 'dead'].flatMap((state) => [
      [state, sample(text, 'sarafan_queue_jobs', { state })],
      [`${state}Age`, sample(text, 'sarafan_queue_oldest_job_age_seconds', { state })],
    ]),
  );
}

/** The portal answers its next REST request (whatever the method) with this error, once. */
function failNextRequest(status: number, error: string, description: string): void {
  h.msw.use(
    http.post(`https://${h.portal.domain}/rest//:method`, () => HttpResponse.json({ error, error_description: description }, { status }), { once: true }),
  );
}

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => now } });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  await h.worker.drain();
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  portal = portalLabel(h.portal.memberId);
});

afterAll(async () => {
  await h.close();
});

describe('GET /metrics', () => {
  it('answers Prometheus text with every Sarafan metric described, process metrics, and no member_id or token', async () => {
    const text = await scrape();
    for (const name of [
      'sarafan_queue_jobs',
      'sarafan_queue_oldest_job_age_seconds',
      'sarafan_jobs_done_total',
      'sarafan_jobs_failed_total',
      'sarafan_jobs_dead_total',
      'sarafan_portal_requests_total',
      'sarafan_portal_throttled_total',
      'sarafan_event_ack_seconds',
      'sarafan_reconcile_lag_seconds',
    ]) {
      expect(text).toContain(`# HELP ${name} `);
    }
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(portal).toMatch(/^[0-9a-f]{12}$/);
    // The installed portal has not been reconciled yet: its lag counts from the install.
    expect(sample(text, 'sarafan_reconcile_lag_seconds', { portal })).toBeGreaterThanOrEqual(0);
    for (const secret of [h.portal.memberId, h.portal.domain, h.portal.accessToken, h.portal.refreshToken, h.portal.applicationToken]) {
      expect(text).not.toContain(secret);
    }
  });

  it('counts every REST request the portal received, under the hashed portal', async () => {
    expect(h.portal.calls.length).toBeGreaterThan(0); // the install's registration
    expect(sample(await scrape(), 'sarafan_portal_requests_total', { portal })).toBe(h.portal.calls.length);
  });

  it('shows queue depth and the age of the oldest job per state, then the worker drains it: jobs done by kind', async () => {
    expect(await queue()).toEqual({ queued: 0, queuedAge: 0, running: 0, runningAge: 0, dead: 0, deadAge: 0 });
    const doneBefore = sample(await scrape(), 'sarafan_jobs_done_total', { kind: 'crm.change' }) ?? 0;
    const first = h.portal.add('deal', { TITLE: 'Первая', STAGE_ID: 'NEW', OPPORTUNITY: 100 });
    const second = h.portal.add('deal', { TITLE: 'Вторая', STAGE_ID: 'NEW', OPPORTUNITY: 200 });
    expect((await event(crmEvent(h.portal, 'ONCRMDEALADD', first))).status).toBe(200);
    advance(30);
    expect((await event(crmEvent(h.portal, 'ONCRMDEALADD', second))).status).toBe(200);
    advance(12);

    expect(await queue()).toEqual({ queued: 2, queuedAge: 42, running: 0, runningAge: 0, dead: 0, deadAge: 0 });

    expect(await h.worker.drain()).toBe(2);
    const text = await scrape();
    expect(await queue()).toEqual({ queued: 0, queuedAge: 0, running: 0, runningAge: 0, dead: 0, deadAge: 0 });
    expect(sample(text, 'sarafan_jobs_done_total', { kind: 'crm.change' })).toBe(doneBefore + 2);
    expect(sample(text, 'sarafan_portal_requests_total', { portal })).toBe(h.portal.calls.length);
  });

  it('counts a 503 QUERY_LIMIT_EXCEEDED answer as a throttle of that portal, and its retry as another request', async () => {
    const text = await scrape();
    expect(sample(text, 'sarafan_portal_throttled_total', { portal, code: 'QUERY_LIMIT_EXCEEDED' })).toBeUndefined();
    const deal = h.portal.add('deal', { TITLE: 'Третья', STAGE_ID: 'NEW', OPPORTUNITY: 300 });
    await event(crmEvent(h.portal, 'ONCRMDEALADD', deal));
    failNextRequest(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests');

    expect(await h.worker.drain()).toBe(1); // the gateway waited and sent the read again
    expect(await h.store.deals.get(pid, deal)).not.toBeNull();

    const after = await scrape();
    expect(sample(after, 'sarafan_portal_throttled_total', { portal, code: 'QUERY_LIMIT_EXCEEDED' })).toBe(1);
    // msw's one-off answer is not in the portal's own record: one request more than it saw.
    expect(sample(after, 'sarafan_portal_requests_total', { portal })).toBe(h.portal.calls.length + 1);
  });

  it('counts a failed run as retried, and its last failure as dead, by kind; the dead job shows in the queue', async () => {
    const worker = createWorker(h.deps, { workerId: 'metrics-test', maxAttempts: 2 });
    const deal = h.portal.add('deal', { TITLE: 'Четвёртая', STAGE_ID: 'NEW', OPPORTUNITY: 400 });
    await event(crmEvent(h.portal, 'ONCRMDEALADD', deal));

    failNextRequest(403, 'ACCESS_DENIED', 'Access denied');
    expect(await worker.drain()).toBe(1);
    let text = await scrape();
    expect(sample(text, 'sarafan_jobs_failed_total', { kind: 'crm.change' })).toBe(1);
    expect(sample(text, 'sarafan_jobs_dead_total', { kind: 'crm.change' })).toBeUndefined();
    expect(await queue()).toMatchObject({ queued: 1, running: 0, dead: 0 });

    advance(10); // the back-off after a first attempt (backoffMs(1))
    failNextRequest(403, 'ACCESS_DENIED', 'Access denied');
    expect(await worker.drain()).toBe(1);
    advance(7);
    text = await scrape();
    expect(sample(text, 'sarafan_jobs_failed_total', { kind: 'crm.change' })).toBe(1);
    expect(sample(text, 'sarafan_jobs_dead_total', { kind: 'crm.change' })).toBe(1);
    expect(await queue()).toEqual({ queued: 0, queuedAge: 0, running: 0, runningAge: 0, dead: 1, deadAge: 7, });
    expect(await h.store.jobs.depth(pid)).toEqual({ queued: 0, running: 0, dead: 1 });
  });

  it('observes the acknowledgement of every event, by status', async () => {
    const before = await scrape();
    const count = (text: string, status: string) => sample(text, 'sarafan_event_ack_seconds_count', { status }) ?? 0;
    const deal = h.portal.add('deal', { TITLE: 'Пятая', STAGE_ID: 'NEW', OPPORTUNITY: 500 });
    expect((await event(crmEvent(h.portal, 'ONCRMDEALADD', deal))).status).toBe(200);
    expect((await event(crmEvent(h.portal, 'ONCRMDEALUPDATE', deal))).status).toBe(200);
    expect((await event(crmEvent(h.portal, 'ONCRMDEALUPDATE', deal, { applicationToken: 'wrong' }))).status).toBe(401);
    const after = await scrape();
    expect(count(after, '200') - count(before, '200')).toBe(2);
    expect(count(after, '401') - count(before, '401')).toBe(1);
    expect(sample(after, 'sarafan_event_ack_seconds_bucket', { status: '200', le: '+Inf' })).toBe(count(after, '200'));
    // Other routes are not acknowledgements.
    await request(h.app).get('/healthz');
    expect(count(await scrape(), '200')).toBe(count(after, '200'));
  });
});
