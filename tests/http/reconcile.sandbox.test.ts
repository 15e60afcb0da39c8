/**
 * The periodic reconciliation (SPEC 6) against the sandbox portal over real HTTP: the portal
 * drops the events of a referred client and her won deal (Bitrix24 never retries), a
 * reconciliation tick lists what changed since the watermark and queues it like events, and the
 * loop credits the deal exactly once — in the ledger and on the referrer's CRM balance. A second
 * tick adds nothing. Listing N changed entities costs ceil(N / 2 500) list requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler } from '../../server/jobs/scheduler.js';
import { reconcileCrm } from '../../src/handlers/reconcile-crm.js';
import { F } from '../../src/rules/crm-fields.js';
import type { Actor, EntityKind, Row } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

let live: Live;
const manager: Actor = { userId: 2 };

beforeAll(async () => {
  live = await startLive({ limits: { drainPerSec: 2, burst: 50 } });
});

afterAll(async () => {
  await live?.close();
});

const portal = () => live.sandbox.portal;
const get = (kind: EntityKind, id: number): Row => {
  const row = portal().getEntity(kind, id);
  if (!row) throw new Error(`no ${kind} ${id}`);
  return row;
};
const add = (kind: EntityKind, fields: Row) => portal().addEntity(kind, fields, manager);
const update = (kind: EntityKind, id: number, fields: Row) => portal().updateEntity(kind, id, fields, manager);
const ledgerFor = async (dealId: number) => live.deps.store.ledger.forDeal((await live.installation()).id, dealId);

/** Requests whose batch listed this entity kind, so far. */
const listRequests = (entity: EntityKind) =>
  Object.entries(live.sandbox.stats.byMethod)
    .filter(([key]) => key.startsWith('batch:') && key.includes(`crm.${entity}.list`))
    .reduce((n, [, count]) => n + count, 0);

describe('reconciliation catches what the portal never delivered', () => {
  let referrer: number;
  let referee: number;
  let deal: number;

  it('a referred deal whose events were all dropped is not credited by the events alone', async () => {
    referrer = add('contact', { NAME: 'Анна', LAST_NAME: 'Иванова' });
    const first = add('deal', { CONTACT_ID: referrer, STAGE_ID: 'NEW', OPPORTUNITY: 5000 });
    update('deal', first, { STAGE_ID: 'WON' });
    await live.settle();
    const code = String(get('contact', referrer)[F.CODE]);
    expect(code).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);

    const dropped = live.sandbox.outbound.deliveries.filter((d) => d.dropped).length;
    live.sandbox.outbound.setFaults({ drop: 3 });
    referee = add('contact', { NAME: 'Борис', [F.REF_CODE]: code });
    deal = add('deal', { TITLE: 'Кухня', CONTACT_ID: referee, STAGE_ID: 'NEW', OPPORTUNITY: 100000 });
    update('deal', deal, { STAGE_ID: 'WON' });
    await live.settle();
    expect(live.sandbox.outbound.deliveries.filter((d) => d.dropped).length - dropped).toBe(3);
    expect(live.sandbox.outbound.getFaults().drop).toBe(0);
    expect(await ledgerFor(deal)).toEqual([]);
    expect(Number(get('contact', referrer)[F.BALANCE] ?? 0)).toBe(0);
    expect(get('contact', referee)[F.REFERRER] ?? '').toBe('');
  });

  it('a reconciliation tick credits it once: ledger, the referrer’s balance, the deal and the referee', async () => {
    const scheduler = createScheduler(live.deps, {});
    expect(await scheduler.tick('reconcile.crm', new Date())).toEqual({ claimed: true, enqueued: 1 });
    await live.settle();
    expect((await ledgerFor(deal)).map((e) => [e.kind, e.amount, e.reason])).toEqual([['credit', 10000_00, 'referral']]);
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10000);
    expect(Number(get('contact', referrer)[F.REFERRALS])).toBe(1);
    expect(Number(get('deal', deal)[F.REWARD])).toBe(10000);
    expect(get('contact', referee)[F.REFERRER]).toBe(`C_${referrer}`);
    const marks = await live.deps.store.watermarks.get((await live.installation()).id, ['reconcile.deal', 'reconcile.contact', 'reconcile.lead']);
    expect([...marks.keys()].sort()).toEqual(['reconcile.contact', 'reconcile.deal', 'reconcile.lead']);
  });

  it('a second tick adds nothing: no ledger entry, no CRM write', async () => {
    const deliveries = live.sandbox.outbound.deliveries.length;
    const modified = [String(get('contact', referrer).DATE_MODIFY), String(get('deal', deal).DATE_MODIFY)];
    const scheduler = createScheduler(live.deps, {});
    expect((await scheduler.tick('reconcile.crm', new Date(Date.now() + 1000))).claimed).toBe(true);
    await live.settle();
    expect(await ledgerFor(deal)).toHaveLength(1);
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10000);
    // Sarafan wrote nothing (every write would change DATE_MODIFY and send an event).
    expect([String(get('contact', referrer).DATE_MODIFY), String(get('deal', deal).DATE_MODIFY)]).toEqual(modified);
    expect(live.sandbox.outbound.deliveries.length).toBe(deliveries);
  });

  it('reports the reconciliation lag of the portal', async () => {
    const lag = await live.deps.store.watermarks.reconcileLag(new Date());
    const seconds = lag.get((await live.installation()).id);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThan(600);
  });
});

describe('the cost of a reconciliation', () => {
  // CPU-bound set-up (thousands of deals in the sandbox): a generous timeout, no timing asserted.
  it('N changed deals cost ceil(N / 2 500) list requests, and each is queued once', { timeout: 180_000 }, async () => {
    const n = 2_600;
    live.sandbox.outbound.setFaults({ drop: n });
    for (let i = 0; i < n; i++) add('deal', { TITLE: `Сделка ${i}`, STAGE_ID: 'NEW', OPPORTUNITY: 1 });
    live.sandbox.outbound.setFaults({ drop: 0 });
    const portalId = (await live.installation()).id;
    const before = { deal: listRequests('deal'), contact: listRequests('contact') };
    const outcomes = await reconcileCrm(live.deps, portalId);
    const deals = outcomes.find((o) => o.entity === 'deal')!;
    // Everything since the last listing's start (less the overlap): these deals and a few recent ones.
    expect(deals.listed).toBeGreaterThanOrEqual(n);
    expect(deals.listed).toBeLessThan(n + 20);
    expect(listRequests('deal') - before.deal).toBe(Math.ceil(deals.listed / 2_500));
    expect(deals.requests).toBe(Math.ceil(deals.listed / 2_500));
    expect(listRequests('contact') - before.contact).toBe(1);
    // The queue was empty: one job per entity listed.
    expect((await live.deps.store.jobs.depth(portalId)).queued).toBe(outcomes.reduce((sum, o) => sum + o.listed, 0));
    expect(outcomes.reduce((sum, o) => sum + o.queued, 0)).toBe(outcomes.reduce((sum, o) => sum + o.listed, 0));
  });
});
