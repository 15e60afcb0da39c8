/**
 * Exactly-once under concurrency, on a real PostgreSQL server (PGlite serializes everything,
 * so only a server shows races): the same deal processed by several workers at once credits
 * once and reverses once; two won deals of one client processed at once pay the first-won-deal
 * reward once. Fails (never skips) when the server is unreachable, unless
 * SARAFAN_SKIP_POSTGRES=1 says to skip.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processCrmChanges } from '../../src/handlers/process-crm-changes.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { enrolledReferrer } from '../support/scenario.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';

const skip = process.env.SARAFAN_SKIP_POSTGRES === '1';
const FORM = 'application/x-www-form-urlencoded';
const WORKERS = 8;

describe.skipIf(skip)(`exactly once under concurrent workers (PostgreSQL)${skip ? ' — skipped: SARAFAN_SKIP_POSTGRES=1 is set' : ''}`, () => {
  let h: Harness;
  let database: string;
  let pid: number;

  beforeAll(async () => {
    database = await createDatabase();
    h = await createHarness({ databaseUrl: withDatabase(serverUrl, database) });
    const { query, body } = installRequest(h.portal);
    expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
    pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  });

  afterAll(async () => {
    await h?.close();
    if (database) await dropDatabase(database);
  });

  const parallel = (dealIds: number[]) =>
    Promise.all(Array.from({ length: WORKERS }, (_, i) => processCrmChanges(h.deps, pid, [{ entity: 'deal', id: dealIds[i % dealIds.length]!, deleted: false }])));

  it('the same won deal processed by 8 workers at once credits once; lost, reverses once', async () => {
    const { code } = await enrolledReferrer(h, pid);
    const referee = h.portal.add('contact', { NAME: 'Клиент', UF_CRM_SARAFAN_REF_CODE: code });
    const deal = h.portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 5000 });
    const outcomes = await parallel([deal]);
    expect(outcomes.flat().every((o) => o.ok)).toBe(true);
    let entries = await h.store.ledger.forDeal(pid, deal);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([['credit', 500_00]]);

    h.portal.update('deal', deal, { STAGE_ID: 'LOSE' });
    await parallel([deal]);
    entries = await h.store.ledger.forDeal(pid, deal);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['credit', 500_00],
      ['reversal', -500_00],
    ]);
  });

  it('two won deals of one client processed at once pay the first-won-deal reward once', async () => {
    const { code } = await enrolledReferrer(h, pid);
    const referee = h.portal.add('contact', { NAME: 'Клиент 2', UF_CRM_SARAFAN_REF_CODE: code });
    const a = h.portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 1000 });
    const b = h.portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 3000 });
    await parallel([a, b]);
    const net = async (id: number) => (await h.store.ledger.forDeal(pid, id)).reduce((s, e) => s + e.amount, 0);
    const paid = [await net(a), await net(b)];
    expect(paid.filter((x) => x !== 0)).toHaveLength(1);
    expect([100_00, 300_00]).toContain(paid[0]! + paid[1]!);
  });

  it('eight referees of one referrer won at once: the monthly cap and the coupon milestones hold exactly', async () => {
    await h.store.programs.create(pid, { ...DEFAULT_PROGRAM, referral: { ...DEFAULT_PROGRAM.referral, capPerReferrerMonth: 250 }, coupons: { everyReferrals: 2, value: 10 } }, null, new Date());
    const { contact, code } = await enrolledReferrer(h, pid, 'Реферер с лимитом');
    const clients = Array.from({ length: WORKERS }, (_, i) => h.portal.add('contact', { NAME: `Клиент ${i}`, UF_CRM_SARAFAN_REF_CODE: code }));
    await processCrmChanges(h.deps, pid, clients.map((id) => ({ entity: 'contact' as const, id, deleted: false })));
    const deals = clients.map((c) => h.portal.add('deal', { CONTACT_ID: c, STAGE_ID: 'WON', OPPORTUNITY: 1000 }));
    const outcomes = await Promise.all(deals.map((id) => processCrmChanges(h.deps, pid, [{ entity: 'deal', id, deleted: false }])));
    expect(outcomes.flat().every((o) => o.ok)).toBe(true);

    const referrer = (await h.store.members.findByEntity(pid, 'contact', contact))!;
    const entries = (await h.store.ledger.forDeals(pid, deals)).filter((e) => e.memberId === referrer.id);
    const referral = entries.filter((e) => e.reason === 'referral');
    // 8 × 100 wanted, 250 allowed: exactly 250 paid, the rest recorded as held back.
    expect(referral.reduce((s, e) => s + e.amount, 0)).toBe(250_00);
    expect(referral.reduce((s, e) => s + e.capped, 0)).toBe(800_00 - 250_00);
    // Three deals pay something (100, 100, 50), so three referrals qualify: one coupon, once.
    const coupons = await h.store.coupons.forMembers(pid, [referrer.id]);
    expect(coupons.map((c) => [c.milestone, c.status])).toEqual([[1, 'issued']]);
    expect((await h.store.ledger.couponEntries(pid, [referrer.id])).map((e) => e.amount)).toEqual([10_00]);
  });
});
