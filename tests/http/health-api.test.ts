/**
 * Installation health (SPEC 7, issue 12): GET /api/health, POST /api/health/repair and
 * POST /api/jobs/:id/retry through createApp, msw playing the portal and refusing anything
 * unexpected. Checks the answers against the admin contract, the stored state and every call
 * sent to the portal (GET sends reads only).
 */
import { http, HttpResponse } from 'msw';
import request from 'supertest';
import { buildManifest } from '../../install/manifest.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { healthAnswerSchema, repairAnswerSchema, retryJobAnswerSchema, type HealthAnswer } from '../../src/contract/admin.js';
import type { Installation, JobKind } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';
import { FORM, sendEvent } from '../support/scenario.js';

const T0 = new Date('2026-12-03T10:00:00.000Z');
let now = T0;
let h: Harness;
let store: SqlStore;
let portal: Installation;
let other: Installation;
const ADMIN = 'user-token-admin-health-0001';
const MANAGER = 'user-token-manager-health-0002';

/** What a read of the registration may send: the lists of reconcile.ts's reader, nothing that writes. */
const READS = /^(crm\.(deal|contact|lead)\.userfield\.list|event\.get|placement\.get|bizproc\.robot\.list)$/;

const get = (path: string, token = ADMIN) => request(h.app).get(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId);
const post = (path: string, token = ADMIN) => request(h.app).post(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId);

async function health(): Promise<HealthAnswer> {
  const res = await get('/api/health');
  expect(res.status).toBe(200);
  return healthAnswerSchema.parse(res.body);
}

const missing = (answer: HealthAnswer) => (answer.registration ?? []).filter((i) => !i.present).map((i) => `${i.kind} ${i.name}`);

interface JobRow {
  id: number;
  portal_id: number;
  status: string;
  attempts: number;
  run_at: Date | string;
  key: string;
}
const jobRow = async (id: number): Promise<JobRow | undefined> => (await store.rawQuery<JobRow & Record<string, unknown>>('SELECT * FROM jobs WHERE id = $1', [id]))[0];
const iso = (v: Date | string) => new Date(v).toISOString();

let seq = 0;
/** A job that ran out of attempts: queued due before anything else, claimed, failed for good. */
async function deadJob(portalId: number, key: string, error: string, kind: JobKind = 'crm.change'): Promise<number> {
  await store.jobs.enqueue({ portalId, kind, key, payload: {}, runAt: new Date(Date.UTC(2000, 0, 1, 0, 0, ++seq)) }, now);
  const [job] = await store.jobs.claim('test-killer', 1, now);
  if (!job || job.key !== key || job.portalId !== portalId) throw new Error(`claimed ${JSON.stringify(job)} instead of ${key}`);
  await store.jobs.fail(job.id, error, null, now);
  return job.id;
}

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => now } });
  store = h.store as SqlStore;
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  await h.worker.drain();
  portal = (await h.store.installations.findByMemberId(h.portal.memberId))!;
  expect(portal.status).toBe('active');
  other = await h.store.installations.upsertVerified(
    {
      memberId: 'member-other-health',
      domain: 'other.bitrix24.ru',
      clientEndpoint: 'https://other.bitrix24.ru/rest/',
      serverEndpoint: 'https://oauth.bitrix.info/rest/',
      scope: 'crm',
      userId: 1,
      tokens: { accessToken: 'other-access-token', refreshToken: 'other-refresh-token', expiresAt: new Date(T0.getTime() + 3600_000) },
    },
    T0,
  );
});

afterAll(async () => {
  await h?.close();
});

beforeEach(async () => {
  // Every test starts from an empty queue and the portal's own clock at T0.
  await store.rawQuery('DELETE FROM jobs');
  now = T0;
});

describe('GET /api/health', () => {
  it('is for admins only: 403 for a manager on every health route, 401 without a token; nothing reaches the portal', async () => {
    h.portal.resetCalls();
    expect((await get('/api/health', MANAGER)).status).toBe(403);
    expect((await post('/api/health/repair', MANAGER)).status).toBe(403);
    expect((await post('/api/jobs/1/retry', MANAGER)).status).toBe(403);
    expect((await request(h.app).get('/api/health')).status).toBe(401);
    expect(h.portal.commands().filter((c) => c.method !== 'profile')).toEqual([]);
  });

  it('answers the contract: a registered portal has every item present, read with one batch of lists', async () => {
    h.portal.resetCalls();
    const answer = await health();
    expect(answer.checkedAt).toBe(T0.toISOString());
    expect(answer.installation).toEqual({ domain: h.portal.domain, status: 'active', installedAt: portal.installedAt!.toISOString() });
    expect(answer.registrationError).toBeNull();
    const manifest = buildManifest(APP_BASE_URL);
    expect(answer.registration!.length).toBe(manifest.userFields.length + manifest.events.length + manifest.placements.length + manifest.robots.length);
    expect(answer.registration!.every((i) => i.present && i.problem === null)).toBe(true);
    // Read-only: one batch of the reader's lists, and nothing else but the user's own profile check.
    expect(h.portal.calls.filter((c) => c.method !== 'profile').map((c) => c.method)).toEqual(['batch']);
    const sent = h.portal.commands().filter((c) => c.method !== 'profile');
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.filter((c) => !READS.test(c.method))).toEqual([]);
  });

  it('shows exactly the field and the event missing on the portal as absent, and a handler bound elsewhere as a problem', async () => {
    const savedFields = [...h.portal.userFields.deal];
    const savedEvents = h.portal.events.map((e) => ({ ...e }));
    try {
      h.portal.userFields.deal = h.portal.userFields.deal.filter((f) => f.FIELD_NAME !== 'UF_CRM_SARAFAN_REWARD');
      h.portal.events = h.portal.events.filter((e) => e.event !== 'ONCRMLEADADD');
      h.portal.events.find((e) => e.event === 'ONCRMCONTACTUPDATE')!.handler = 'https://old.example.net/b24/events';
      h.portal.resetCalls();
      const answer = await health();
      expect(missing(answer)).toEqual(['field UF_CRM_SARAFAN_REWARD (deal)', 'event ONCRMLEADADD']);
      const problems = answer.registration!.filter((i) => i.problem !== null);
      expect(problems).toEqual([
        { kind: 'event', name: 'ONCRMCONTACTUPDATE', present: true, problem: `bound to https://old.example.net/b24/events instead of ${APP_BASE_URL}/b24/events` },
      ]);
      expect(h.portal.commands().filter((c) => c.method !== 'profile' && !READS.test(c.method))).toEqual([]);
    } finally {
      h.portal.userFields.deal = savedFields;
      h.portal.events = savedEvents;
    }
  });

  it('a portal that fails to answer gives registration null with a sentence, and the rest from the store', async () => {
    await deadJob(portal.id, 'deal:404', 'boom');
    h.portal.failCommands('event.get', 1);
    const answer = await health();
    expect(answer.registration).toBeNull();
    expect(answer.registrationError).toMatch(/^The portal refused to show Sarafan's registration \(.*event\.get failed: INTERNAL_SERVER_ERROR/);
    expect(answer.queue.dead).toBe(1);
    expect(answer.installation.domain).toBe(h.portal.domain);
  });

  it('a portal that cannot be reached gives registration null with a sentence saying so', async () => {
    // The connection fails however often the gateway retries.
    h.msw.use(http.post(`https://${h.portal.domain}/rest//batch`, () => HttpResponse.error()));
    let answer: HealthAnswer;
    try {
      answer = await health();
    } finally {
      h.msw.resetHandlers();
    }
    expect(answer.registration).toBeNull();
    expect(answer.registrationError).toMatch(/^The portal could not be reached to read Sarafan's registration/);
    expect(answer.registrationError).not.toContain(portal.tokens!.accessToken);
  });

  it('without the bizproc scope (robots unreadable) gives registration null with a sentence, and reads nothing', async () => {
    // A write through the repository clears the API's installation cache (withMemberCache).
    const touch = async () => h.store.installations.saveRegistration(portal.id, (await h.store.installations.get(portal.id))!.registration!);
    await store.rawQuery(`UPDATE installations SET scope = 'crm,placement,im,user_brief' WHERE id = $1`, [portal.id]);
    await touch();
    h.portal.resetCalls();
    try {
      const answer = await health();
      expect(answer.registration).toBeNull();
      expect(answer.registrationError).toMatch(/no bizproc permission/);
      expect(h.portal.commands().filter((c) => c.method !== 'profile')).toEqual([]);
    } finally {
      await store.rawQuery(`UPDATE installations SET scope = 'crm,placement,bizproc,im,user_brief' WHERE id = $1`, [portal.id]);
      await touch();
    }
  });

  it("counts this portal's jobs by state and lists its dead jobs newest first, never another portal's, never a token", async () => {
    const token = portal.tokens!.accessToken;
    const first = await deadJob(portal.id, 'deal:1', `crm.deal.get failed: POST https://${h.portal.domain}/rest/crm.deal.get?auth=${token}&id=1`);
    now = new Date(T0.getTime() + 60_000);
    const second = await deadJob(portal.id, 'contact:2', `timeout; body {"auth":"${token}"}; plain ${token}`);
    await deadJob(other.id, 'deal:9', 'other portal');
    await store.jobs.enqueue({ portalId: portal.id, kind: 'crm.change', key: 'deal:3', payload: {}, runAt: new Date(T0.getTime() + 5_000) }, now);
    await store.jobs.enqueue({ portalId: portal.id, kind: 'crm.change', key: 'deal:4', payload: {}, runAt: new Date(T0.getTime() + 9_000) }, now);
    await store.jobs.enqueue({ portalId: other.id, kind: 'crm.change', key: 'deal:5', payload: {}, runAt: new Date(T0.getTime() - 9_000) }, now);

    const answer = await health();
    expect(answer.queue).toEqual({ queued: 2, running: 0, dead: 2, oldestQueuedAt: new Date(T0.getTime() + 5_000).toISOString() });
    expect(answer.deadJobs.map((j) => [j.id, j.kind, j.key, j.attempts, j.updatedAt])).toEqual([
      [second, 'crm.change', 'contact:2', 1, now.toISOString()],
      [first, 'crm.change', 'deal:1', 1, T0.toISOString()],
    ]);
    expect(JSON.stringify(answer)).not.toContain(token);
    expect(answer.deadJobs[1]!.lastError).toBe(`crm.deal.get failed: POST https://${h.portal.domain}/rest/crm.deal.get?auth=[redacted]&id=1`);
    expect(answer.deadJobs[0]!.lastError).toBe('timeout; body {"auth":"[redacted]"}; plain [redacted]');
  });

  it('reports the last completed reconciliation and its lag from the watermarks', async () => {
    const marks = await store.rawQuery<{ n: number }>(`SELECT count(*)::int AS n FROM watermarks WHERE portal_id = $1 AND name LIKE 'reconcile.%'`, [portal.id]);
    expect(marks[0]!.n).toBe(0);
    expect((await health()).reconciliation).toEqual({ lastRunAt: null, lagSeconds: null });
    await h.store.watermarks.save(portal.id, 'reconcile.contact', T0, new Date(T0.getTime() - 300_000));
    await h.store.watermarks.save(portal.id, 'reconcile.lead', T0, new Date(T0.getTime() - 290_000));
    await h.store.watermarks.save(portal.id, 'reconcile.deal', T0, new Date(T0.getTime() - 280_000));
    await h.store.watermarks.save(other.id, 'reconcile.deal', T0, T0);
    expect((await health()).reconciliation).toEqual({ lastRunAt: new Date(T0.getTime() - 300_000).toISOString(), lagSeconds: 300 });
  });
});

describe('POST /api/jobs/:id/retry', () => {
  it("queues a dead job of this portal again, due now with its attempts reset; 409 when it is not dead; 404 for another portal's or an unknown job", async () => {
    const dead = await deadJob(portal.id, 'deal:21', 'boom');
    const foreign = await deadJob(other.id, 'deal:21', 'boom');
    now = new Date(T0.getTime() + 120_000);

    const res = await post(`/api/jobs/${dead}/retry`);
    expect(res.status).toBe(200);
    expect(retryJobAnswerSchema.parse(res.body)).toEqual({ id: dead, status: 'queued' });
    const row = (await jobRow(dead))!;
    expect([row.status, row.attempts, iso(row.run_at)]).toEqual(['queued', 0, now.toISOString()]);

    const again = await post(`/api/jobs/${dead}/retry`);
    expect(again.status).toBe(409);
    expect(again.body.error.reason).toBe('not_dead');

    const theirs = await post(`/api/jobs/${foreign}/retry`);
    expect(theirs.status).toBe(404);
    expect((await jobRow(foreign))!.status).toBe('dead');
    expect((await post('/api/jobs/999999/retry')).status).toBe(404);

    const bad = await post('/api/jobs/abc/retry');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { path: string }) => d.path)).toEqual(['id']);
  });

  it('merges a dead job into the queued job of its key (one queued job per key), which becomes due now', async () => {
    const dead = await deadJob(portal.id, 'deal:31', 'boom');
    await store.jobs.enqueue({ portalId: portal.id, kind: 'crm.change', key: 'deal:31', payload: {}, runAt: new Date(T0.getTime() + 3600_000) }, now);
    const [queued] = await store.rawQuery<JobRow & Record<string, unknown>>(`SELECT * FROM jobs WHERE portal_id = $1 AND key = 'deal:31' AND status = 'queued'`, [portal.id]);

    const res = await post(`/api/jobs/${dead}/retry`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: queued!.id, status: 'queued' });
    expect((await jobRow(dead))!.status).toBe('done');
    const rows = await store.rawQuery<JobRow & Record<string, unknown>>(`SELECT * FROM jobs WHERE portal_id = $1 AND key = 'deal:31' AND status = 'queued'`, [portal.id]);
    expect(rows.map((r) => [r.id, iso(r.run_at)])).toEqual([[queued!.id, T0.toISOString()]]);
    expect((await health()).queue).toMatchObject({ queued: 1, dead: 0 });
  });
});

describe('last event received', () => {
  it('is the time a CRM event was posted to /b24/events, written at most once a minute', async () => {
    await store.rawQuery('UPDATE installations SET last_event_at = NULL WHERE id = $1', [portal.id]);
    expect((await health()).lastEventAt).toBeNull();
    const deal = h.portal.add('deal', { STAGE_ID: 'NEW', OPPORTUNITY: 100 });

    now = new Date(T0.getTime() + 1_000);
    expect((await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal))).status).toBe(200);
    expect((await health()).lastEventAt).toBe(now.toISOString());

    // Within the minute: not written again (the ingest path stays one statement per event).
    const noted = now;
    now = new Date(T0.getTime() + 30_000);
    expect((await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal))).status).toBe(200);
    expect((await health()).lastEventAt).toBe(noted.toISOString());

    now = new Date(T0.getTime() + 62_000);
    expect((await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal))).status).toBe(200);
    expect((await h.store.installations.lastEventAt(portal.id))?.toISOString()).toBe(now.toISOString());
    expect((await h.store.installations.lastEventAt(other.id))).toBeNull();
  });
});

describe('POST /api/health/repair', () => {
  it('adds back what was missing, answers it in `repaired`, queues one CRM reconciliation, and the health after it is complete', async () => {
    h.portal.userFields.deal = h.portal.userFields.deal.filter((f) => f.FIELD_NAME !== 'UF_CRM_SARAFAN_REWARD');
    h.portal.events = h.portal.events.filter((e) => e.event !== 'ONCRMLEADADD');
    h.portal.placements = h.portal.placements.filter((p) => p.placement !== 'CRM_LEAD_DETAIL_TAB');
    h.portal.resetCalls();

    const res = await post('/api/health/repair');
    expect(res.status).toBe(200);
    const answer = repairAnswerSchema.parse(res.body);
    expect(answer.repaired).toEqual([
      { kind: 'field', name: 'UF_CRM_SARAFAN_REWARD (deal)' },
      { kind: 'event', name: 'ONCRMLEADADD' },
      { kind: 'placement', name: 'CRM_LEAD_DETAIL_TAB' },
    ]);
    expect(missing(answer.health)).toEqual([]);
    // The portal has them again, and only they were written.
    expect(h.portal.userFields.deal.map((f) => f.FIELD_NAME)).toContain('UF_CRM_SARAFAN_REWARD');
    expect(h.portal.events.filter((e) => e.event === 'ONCRMLEADADD').map((e) => e.handler)).toEqual([`${APP_BASE_URL}/b24/events`]);
    expect(h.portal.commands().filter((c) => !READS.test(c.method) && c.method !== 'profile').map((c) => c.method)).toEqual([
      'crm.deal.userfield.add',
      'event.bind',
      'placement.bind',
    ]);
    const stored = (await h.store.installations.get(portal.id))!.registration!;
    expect(stored.created).toEqual(['field:deal:UF_CRM_SARAFAN_REWARD', 'event:ONCRMLEADADD', 'placement:CRM_LEAD_DETAIL_TAB']);
    // A CRM reconciliation, deduplicated with the scheduler's.
    const reconcile = async () => store.rawQuery<JobRow & Record<string, unknown>>(`SELECT * FROM jobs WHERE portal_id = $1 AND kind = 'reconcile.crm'`, [portal.id]);
    expect((await reconcile()).map((r) => [r.key, r.status])).toEqual([['reconcile.crm', 'queued']]);
    expect(answer.health.queue.queued).toBe(1);

    const twice = await post('/api/health/repair');
    expect(twice.status).toBe(200);
    expect(twice.body.repaired).toEqual([]);
    expect((await reconcile()).length).toBe(1);
  });
});
