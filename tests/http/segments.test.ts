/**
 * The nightly RFM job (issue 12) with an injected clock, msw playing the portal (any request it
 * does not expect fails the test): a `segments.rfm` tick queues one job per active portal; the
 * job writes UF_CRM_SARAFAN_SEGMENT to every client the first night, 50 commands per batch
 * request and nothing else; a night with nothing changed costs no request; a changed client is
 * written, a former client cleared once; a failed write fails the job, and its retry writes only
 * what is still pending.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler } from '../../server/jobs/scheduler.js';
import { createWorker, type Worker } from '../../server/jobs/worker.js';
import { F } from '../../src/bitrix/crm-fields.js';
import type { DealState, Deps, PersonRef } from '../../src/handlers/ports.js';
import type { RfmSegment } from '../../src/rules/segment-clients.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM } from '../support/scenario.js';

const DAY = 86_400_000;
let h: Harness;
let pid: number;
let deps: Deps;
let worker: Worker;
/**
 * Noon, a day or two ahead of the wall clock (what the install queued at wall-clock time is due
 * from the start); wins are whole days before it, so moving the clock by hours changes no one's recency.
 */
const T0 = Math.floor(Date.now() / DAY) * DAY + DAY + 12 * 3600_000;
let now = T0;
const daysAgo = (n: number) => new Date(T0 - n * DAY);

/** Client i's deals: [days ago, amount in kopecks][]; the segment the default boundaries give. */
function plan(i: number): { wins: [number, number][]; segment: RfmSegment } {
  switch (i % 4) {
    case 0:
      return { wins: [[5, 1000_00]], segment: 'new' };
    case 1:
      return { wins: [[10, 50_000_00], [20, 50_000_00], [30, 50_000_00]], segment: 'champion' };
    case 2:
      return { wins: [[100, 1000_00]], segment: 'sleeping' };
    default:
      return { wins: [[40, 1000_00], [60, 1000_00]], segment: 'promising' };
  }
}

const CLIENTS = 120;
const contacts: number[] = [];
const expected = new Map<string, RfmSegment>();
let lostLead = 0;
let nextDeal = 1000;
let dealsOf = new Map<number, DealState[]>();

const raw = <T extends Record<string, unknown>>(text: string, params: unknown[]) => (h.store as SqlStore).rawQuery<T>(text, params);
const segmentShown = (entity: 'contact' | 'lead', id: number) => h.portal.get(entity, id)[F.SEGMENT] ?? null;
const updates = () => h.portal.commands().filter((c) => /^crm\.(contact|lead)\.update$/.test(c.method));
const batches = () => h.portal.calls.filter((c) => c.method === 'batch');
const tick = () => createScheduler(deps, {}).tick('segments.rfm', new Date(now));
const job = async () => (await raw<{ status: string; attempts: number; last_error: string | null }>("SELECT status, attempts, last_error FROM jobs WHERE portal_id = $1 AND kind = 'segments.rfm' ORDER BY id DESC LIMIT 1", [pid]))[0];

beforeAll(async () => {
  h = await createHarness();
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  deps = { ...h.deps, clock: { now: () => new Date(now) } };
  worker = createWorker(deps, { workerId: 'segments' });
  await worker.drain();

  for (let i = 0; i < CLIENTS; i++) contacts.push(h.portal.add('contact', { NAME: `Клиент ${i}` }));
  const members = await h.store.members.ensureMany(pid, contacts.map((id): PersonRef => ({ entity: 'contact', id })), new Date(now));
  const memberOf = new Map(members.map((m) => [m.contactId!, m.id]));
  dealsOf = new Map();
  contacts.forEach((id, i) => {
    const { wins, segment } = plan(i);
    expected.set(`contact:${id}`, segment);
    dealsOf.set(
      id,
      wins.map(([ago, amount]) => ({
        portalId: pid, dealId: nextDeal++, clientMemberId: memberOf.get(id)!, categoryId: 0, stageId: 'WON', stageSemantic: 'S', amount, currency: 'RUB',
        won: true, deleted: false, firstWonAt: daysAgo(ago), programVersion: 1, referralId: null, updatedAt: new Date(now),
      })),
    );
  });
  await h.store.deals.upsertMany([...dealsOf.values()].flat());
  // A lead known only from the install's history, won long ago.
  lostLead = h.portal.add('lead', { TITLE: 'Давний клиент' });
  await h.store.history.saveWins(pid, [{ dealId: 1, contactId: null, leadId: lostLead, categoryId: 0, amount: 500_00, currency: 'RUB', wonAt: daysAgo(400), createdAt: null }]);
  expected.set(`lead:${lostLead}`, 'lost');
});

afterAll(async () => {
  await h?.close();
});

describe('the nightly segments.rfm job', () => {
  it('a tick queues one job per active portal; the first night writes every client, 50 per batch request, nothing else', async () => {
    h.portal.resetCalls();
    expect(await tick()).toEqual({ claimed: true, enqueued: 1 });
    expect(await worker.drain()).toBe(1);
    expect((await job())?.status).toBe('done');

    const total = CLIENTS + 1;
    expect(h.portal.calls.map((c) => c.method)).toEqual(Array(Math.ceil(total / 50)).fill('batch'));
    expect(batches().map((b) => b.commands?.length)).toEqual([50, 50, 21]);
    expect(updates()).toHaveLength(total);
    for (const u of updates()) expect(Object.keys(u.params.fields as object)).toEqual([F.SEGMENT]);
    for (const [key, segment] of expected) {
      const [entity, id] = key.split(':') as ['contact' | 'lead', string];
      expect(segmentShown(entity, Number(id)), key).toBe(segment);
    }
    const dist = await h.store.segments.distribution(pid);
    expect(dist.computedAt?.getTime()).toBe(now);
    expect(dist.counts).toEqual([
      { segment: 'champion', members: 30 },
      { segment: 'loyal', members: 0 },
      { segment: 'promising', members: 30 },
      { segment: 'new', members: 30 },
      { segment: 'at_risk', members: 0 },
      { segment: 'sleeping', members: 30 },
      { segment: 'lost', members: 1 },
    ]);
    expect(await h.store.segments.pendingWrites(pid)).toEqual([]);
  });

  it('a night with nothing changed makes no request', async () => {
    now = T0 + 3 * 3600_000;
    h.portal.resetCalls();
    expect(await tick()).toEqual({ claimed: true, enqueued: 1 });
    expect(await worker.drain()).toBe(1);
    expect(h.portal.calls).toEqual([]);
    expect((await h.store.segments.distribution(pid)).computedAt?.getTime()).toBe(now);
  });

  it('writes only the changed clients, and clears a former client once', async () => {
    now = T0 + 4 * 3600_000;
    const [gone, grown] = [contacts[0]!, contacts[4]!]; // both "new"
    // The gone client's only deal was deleted; the grown one won twice more.
    await h.store.deals.upsert({ ...dealsOf.get(gone)![0]!, deleted: true, updatedAt: new Date(now) });
    const base = dealsOf.get(grown)![0]!;
    await h.store.deals.upsertMany([{ ...base, dealId: nextDeal++, firstWonAt: daysAgo(2) }, { ...base, dealId: nextDeal++, firstWonAt: daysAgo(1) }]);
    h.portal.resetCalls();
    await tick();
    expect(await worker.drain()).toBe(1);
    expect(batches()).toHaveLength(1);
    expect(updates().map((u) => [u.method, Number(u.params.id)])).toEqual([
      ['crm.contact.update', gone],
      ['crm.contact.update', grown],
    ]);
    expect([null, '']).toContain(segmentShown('contact', gone));
    expect(segmentShown('contact', grown)).toBe('loyal');

    now = T0 + 5 * 3600_000;
    h.portal.resetCalls();
    await tick();
    expect(await worker.drain()).toBe(1);
    expect(h.portal.calls).toEqual([]);
    expect(await raw('SELECT 1 FROM crm_segments WHERE portal_id = $1 AND entity_id = $2', [pid, gone])).toEqual([]);
  });

  it('a failed write fails the job; the retry writes only what is still pending', async () => {
    // 100 days on, the 29 "new" clients left (and the loyal one) sleep; the champions and promising ones do not move yet.
    now = T0 + 100 * DAY;
    h.portal.resetCalls();
    h.portal.failCommands('crm.contact.update', 3);
    await tick();
    expect(await worker.drain()).toBe(1);
    const failed = await job();
    expect(failed).toMatchObject({ status: 'queued', attempts: 1 });
    expect(failed?.last_error).toMatch(/3 of \d+ segment writes failed/);
    const firstTry = updates().map((u) => Number(u.params.id));
    const pending = await h.store.segments.pendingWrites(pid);
    expect(pending.map((p) => p.client.id)).toEqual(firstTry.slice(0, 3));

    // The queue's backoff passes; the retry writes the three, and only them.
    now += 3600_000;
    h.portal.resetCalls();
    expect(await worker.drain()).toBe(1);
    expect((await job())?.status).toBe('done');
    expect(updates().map((u) => Number(u.params.id))).toEqual(firstTry.slice(0, 3));
    expect(batches()).toHaveLength(1);
    expect(await h.store.segments.pendingWrites(pid)).toEqual([]);
    for (const id of firstTry) expect(segmentShown('contact', id)).toBe((await raw<{ segment: string }>('SELECT segment FROM crm_segments WHERE portal_id = $1 AND entity = $2 AND entity_id = $3', [pid, 'contact', id]))[0]?.segment);
  });

  it('a batch request the portal refuses is retried from there; the batches before it are not rewritten', async () => {
    // A year on, everyone is lost or at risk: more than two batches to write.
    now = T0 + 400 * DAY;
    h.portal.resetCalls();
    h.portal.failWriteBatches(50, 1); // the first batch goes through; the portal is down from the second on
    await tick();
    expect(await worker.drain()).toBe(1);
    expect((await job())?.status).toBe('queued');
    const done = batches()[0]!.commands!.map((c) => Number(c.params.id));
    expect(done).toHaveLength(50);
    const stillPending = (await h.store.segments.pendingWrites(pid)).map((p) => p.client.id);
    expect(stillPending.length).toBeGreaterThan(50);
    expect(stillPending.filter((id) => done.includes(id))).toEqual([]);
    h.portal.failWriteBatches(0);

    now += 3600_000;
    h.portal.resetCalls();
    expect(await worker.drain()).toBe(1);
    expect((await job())?.status).toBe('done');
    expect(updates().map((u) => Number(u.params.id)).sort((a, b) => a - b)).toEqual([...stillPending].sort((a, b) => a - b));
    expect(batches()).toHaveLength(Math.ceil(stillPending.length / 50));
    expect(await h.store.segments.pendingWrites(pid)).toEqual([]);
    for (const id of done) expect(['lost', 'at_risk']).toContain(segmentShown('contact', id));
  });
});
