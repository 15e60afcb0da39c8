/**
 * The demo with the shop's history (what a fresh `npm start` runs): a year of imported sales
 * before the install, read by the install's backfill, and half a year of referral activity run
 * through the real loop on the clock the portal and Sarafan share, which starts half a year back
 * and only moves forward. Asserts what the admin dashboard reads: Sarafan's own tables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_WORKER_LINGER_MS, demoClock, startDemoPortal, type DemoPortal } from '../../server/demo/sandbox-demo.js';
import { WHOLESALE } from '../../server/demo/shop-history.js';
import type { SteppedClock } from '../../sandbox/clock.js';
import { F } from '../../src/bitrix/crm-fields.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { toMinor } from '../../src/rules/money.js';
import { composeDemoSarafan, type DemoSarafan } from '../support/demo-sarafan.js';

let sarafan: DemoSarafan;
let store: SqlStore;
let clock: SteppedClock;
let demo: DemoPortal;
let startedMs: number;

const month = (d: unknown): string => new Date(d as string | Date).toISOString().slice(0, 7);

beforeAll(async () => {
  // Half a year back, as npm start on a fresh data directory; the portal and Sarafan read the same clock.
  clock = demoClock(true);
  const installAt = clock.now();
  sarafan = await composeDemoSarafan({
    secretKey: 'demo-history-secret-key-0123456789abcdef',
    workerId: 'demo-history-worker',
    clock,
    lingerMs: DEMO_WORKER_LINGER_MS,
  });
  store = sarafan.store;
  sarafan.worker.start();
  const t = Date.now();
  const { portalServer, portalPort, appBaseUrl, log } = sarafan;
  demo = await startDemoPortal({ server: portalServer, port: portalPort, dataDir: null, appBaseUrl, store, log, clock, history: { seed: 12 } });
  startedMs = Date.now() - t;
  expect(demo.history!.installedAt.getTime()).toBeGreaterThanOrEqual(installAt);
}, 240_000);

afterAll(async () => {
  await demo?.sandbox.close();
  await sarafan?.close();
});

describe('the demo with history', () => {
  it('records the sales before the install in history_deals, in both pipelines, all in the past', async () => {
    const installation = (await store.installations.findByMemberId(demo.sandbox.portal.memberId))!;
    const wholesale = demo.sandbox.portal.categories().find((c) => c.name === WHOLESALE)!.id;
    const imported = demo.history!.imported.wonDeals;
    const importedIds = [...imported.values()].flat();
    expect(importedIds.length).toBeGreaterThanOrEqual(120);
    expect(importedIds.length).toBeLessThanOrEqual(200);
    expect(imported.get(wholesale)!.length).toBeGreaterThanOrEqual(4);

    const rows = await store.rawQuery('SELECT deal_id, category_id, won_at FROM history_deals WHERE portal_id = $1 AND deal_id = ANY($2::int[]) ORDER BY deal_id', [installation.id, importedIds]);
    expect(rows.map((r) => Number(r.deal_id))).toEqual([...importedIds].sort((a, b) => a - b));
    const installedAt = demo.history!.installedAt.getTime();
    for (const r of rows) expect(new Date(r.won_at as string).getTime()).toBeLessThan(installedAt);
    expect(new Set(rows.map((r) => Number(r.category_id)))).toEqual(new Set([0, wholesale]));
    // The year before the install: at least ten distinct months of sales.
    expect(new Set(rows.map((r) => month(r.won_at))).size).toBeGreaterThanOrEqual(10);
    // Some clients bought several times.
    const perClient = new Map<number, number>();
    for (const id of importedIds) {
      const contact = Number(demo.sandbox.portal.getEntity('deal', id)!.CONTACT_ID);
      perClient.set(contact, (perClient.get(contact) ?? 0) + 1);
    }
    expect([...perClient.values()].filter((n) => n >= 2).length).toBeGreaterThanOrEqual(10);
  });

  it('has months of ledger entries and clicks made by the loop, one reversal, nothing in the future', async () => {
    const installation = (await store.installations.findByMemberId(demo.sandbox.portal.memberId))!;
    const now = Date.now();
    const entries = await store.rawQuery('SELECT reason, kind, created_at, available_at FROM ledger_entries WHERE portal_id = $1', [installation.id]);
    const past = entries.filter((e) => new Date(e.created_at as string).getTime() < now - 7 * 86_400_000);
    expect(new Set(past.filter((e) => e.reason === 'referral').map((e) => month(e.created_at))).size).toBeGreaterThanOrEqual(5);
    for (const e of entries) expect(new Date(e.created_at as string).getTime()).toBeLessThanOrEqual(now);
    expect(entries.some((e) => e.kind === 'reversal' && e.reason === 'referral')).toBe(true);
    const refunded = demo.history!.activity.refunded!;
    expect(demo.sandbox.portal.getEntity('deal', refunded)!.STAGE_SEMANTIC_ID).toBe('F');
    const refundedNet = await store.rawQuery('SELECT coalesce(sum(amount), 0) AS net, count(*) AS n FROM ledger_entries WHERE portal_id = $1 AND deal_id = $2', [installation.id, refunded]);
    expect(Number(refundedNet[0]!.n)).toBeGreaterThanOrEqual(2);
    expect(Number(refundedNet[0]!.net)).toBe(0);

    const clicks = await store.rawQuery('SELECT clicked_at FROM referral_clicks WHERE portal_id = $1', [installation.id]);
    expect(clicks.length).toBe(demo.history!.activity.clicks);
    expect(new Set(clicks.map((c) => month(c.clicked_at))).size).toBeGreaterThanOrEqual(4);
    for (const c of clicks) expect(new Date(c.clicked_at as string).getTime()).toBeLessThanOrEqual(now);
    // Won referred deals of the replay are spread over the months too, and so are the deals Sarafan saw won.
    const won = await store.rawQuery('SELECT first_won_at FROM deals WHERE portal_id = $1 AND first_won_at IS NOT NULL', [installation.id]);
    expect(new Set(won.map((d) => month(d.first_won_at))).size).toBeGreaterThanOrEqual(5);
  });

  it('shows each referrer the balance the ledger gives, and keeps the shop demo as it was', async () => {
    const { portal } = demo.sandbox;
    const installation = (await store.installations.findByMemberId(portal.memberId))!;
    const credited = await store.rawQuery("SELECT DISTINCT member_id FROM ledger_entries WHERE portal_id = $1 AND reason = 'referral'", [installation.id]);
    const memberIds = credited.map((r) => Number(r.member_id));
    expect(memberIds.length).toBeGreaterThanOrEqual(5);
    const balances = await store.ledger.balances(installation.id, memberIds, new Date());
    for (const member of await store.members.getMany(installation.id, memberIds)) {
      const shown = toMinor(String(portal.getEntity('contact', member.contactId!)?.[F.BALANCE] ?? '')) ?? 0;
      expect(shown, `contact ${member.contactId}`).toBe(balances.get(member.id)?.available ?? 0);
    }
    // The shop's own demo, seeded at the wall clock after the history: the same figures as without it.
    const [olga, dmitry] = demo.seeded!.referrers;
    expect(Number(portal.getEntity('contact', olga!)?.[F.BALANCE])).toBe(7_200);
    expect(Number(portal.getEntity('contact', dmitry!)?.[F.BALANCE])).toBe(15_000);
    expect(portal.stageRobots().map((r) => r.code)).toEqual(['sarafan_status', 'sarafan_redeem']);
    expect(clock.released).toBe(true);
    console.info(`demo with history ready in ${(startedMs / 1000).toFixed(1)} s`);
  });
});
