/**
 * The analytics part of the store contract (SPEC 8, issue 12; called from store-contract.ts, so it
 * runs on PGlite and PostgreSQL): every figure of GET /api/analytics computed by the store's SQL
 * against a fixture whose answer was worked out by hand (the sums are written out below), period
 * boundaries (from inclusive, to exclusive), the pipeline filter, and another portal's rows never
 * counted.
 */
import { describe, expect, it } from 'vitest';
import { analyticsAnswerSchema, RFM_SEGMENTS, type AnalyticsAnswer } from '../../src/contract/admin.js';
import type { Installation, Member, NewLedgerEntry } from '../../src/handlers/ports.js';
import { readAnalytics } from '../../src/handlers/read-analytics.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import type { SqlStore } from '../../src/store/open-store.js';

const NOW = new Date('2026-03-10T12:00:00.000Z');
const FROM = new Date('2026-01-01T00:00:00.000Z');
const TO = new Date('2026-03-01T00:00:00.000Z');
const t = (iso: string) => new Date(iso);

export function describeAnalyticsContract(getStore: () => SqlStore, newPortal: () => Promise<Installation>): void {
  /** Builds the fixture on a fresh portal; returns it. Amounts in minor units. */
  async function fixture(store: SqlStore): Promise<Installation> {
    const p = await newPortal();
    const pid = p.id;
    await store.programs.create(
      pid,
      { ...DEFAULT_PROGRAM, tiers: { basis: 'won_amount', levels: [{ name: 'Silver', from: 10_000, cashbackPercent: 1 }, { name: 'Gold', from: 100_000, cashbackPercent: 2 }] } },
      null,
      t('2025-01-01T00:00:00Z'),
    );
    await store.portalSettings.save(pid, {
      utcOffsetMinutes: 180,
      currencies: [
        { currency: 'RUB', amount: '1', amountCnt: 1, base: true },
        { currency: 'EUR', amount: '100', amountCnt: 1, base: false },
      ],
      readAt: t('2026-01-01T00:00:00Z'),
    });
    const member = async (entity: 'contact' | 'lead', id: number, code?: string): Promise<Member> => {
      const m = await store.members.ensure(pid, entity, id, t('2025-01-01T00:00:00Z'));
      if (!code) return m;
      const enrolled = await store.members.enroll(pid, m.id, code, t('2025-01-01T00:00:00Z'));
      if (enrolled === 'code_taken') throw new Error('code taken');
      return enrolled;
    };
    const r1 = await member('contact', 1, `R1${pid}AAA`);
    const r2 = await member('contact', 2, `R2${pid}BBB`);
    const c1 = await member('contact', 11);
    const c2 = await member('contact', 12);
    const c3 = await member('lead', 13);
    const o1 = await member('contact', 21);
    const referral = (referee: Member, referrer: Member, createdAt: string, status: 'active' | 'rejected' = 'active') =>
      store.referrals.record({
        portalId: pid,
        refereeMemberId: referee.id,
        referrerMemberId: referrer.id,
        code: referrer.code,
        source: 'deal',
        sourceRef: `deal:${referee.id}`,
        status,
        rejectReason: status === 'rejected' ? 'self_referral' : null,
        createdAt: t(createdAt),
      });
    const ref1 = await referral(c1, r1, '2026-01-05T10:00:00Z');
    const ref2 = await referral(c2, r2, '2025-12-20T10:00:00Z'); // before the period
    const ref3 = await referral(c3, r1, '2026-02-10T10:00:00Z');
    await referral(o1, r2, '2026-01-10T10:00:00Z', 'rejected'); // rejected: not a referred lead

    const deal = (dealId: number, client: Member, referralId: number | null, amount: number, seen: string, firstWonAt: string | null, over: Record<string, unknown> = {}) =>
      store.deals.upsert({
        portalId: pid,
        dealId,
        clientMemberId: client.id,
        categoryId: 0,
        stageId: firstWonAt ? 'WON' : 'NEW',
        stageSemantic: firstWonAt ? 'S' : 'P',
        amount,
        currency: 'RUB',
        won: firstWonAt !== null,
        deleted: false,
        firstWonAt: firstWonAt ? t(firstWonAt) : null,
        programVersion: 1,
        referralId,
        updatedAt: t(seen),
        fxCurrency: null,
        fxRate: null,
        ...over,
      });
    await deal(101, c1, ref1.id, 100_000_00, '2026-01-10T00:00:00Z', '2026-01-15T00:00:00Z');
    // 500.00 USD at the rate fixed on first win, 90.5: 45 250.00 RUB; first won exactly at 1 Feb, pipeline 1.
    await deal(102, c1, ref1.id, 500_00, '2026-01-20T00:00:00Z', '2026-02-01T00:00:00Z', { currency: 'USD', fxCurrency: 'USD', fxRate: '90.5000000000', categoryId: 1 });
    // First won exactly at `to`: outside the period (but counts for tiers, which are "now").
    await deal(103, c2, ref2.id, 20_000_00, '2026-02-28T00:00:00Z', '2026-03-01T00:00:00Z');
    // Won, then lost: a referred deal seen in the period, not a won one.
    await deal(104, c3, ref3.id, 30_000_00, '2026-02-06T00:00:00Z', '2026-02-05T00:00:00Z', { won: false, stageId: 'LOSE', stageSemantic: 'F' });
    await deal(105, o1, null, 7_000_00, '2025-11-01T00:00:00Z', '2025-11-01T00:00:00Z');
    await deal(106, o1, null, 3_000_00, '2026-01-03T00:00:00Z', '2026-01-03T00:00:00Z');
    await deal(107, c2, ref2.id, 10_000_00, '2025-12-31T00:00:00Z', '2025-12-31T23:59:59Z');
    await deal(108, c1, ref1.id, 8_000_00, '2026-01-24T00:00:00Z', '2026-01-25T00:00:00Z', { deleted: true });
    await deal(109, c2, ref2.id, 5_000_00, '2026-01-19T00:00:00Z', '2026-01-20T00:00:00Z');
    // A later upsert keeps the first-seen time: 101 stays seen on 10 Jan, not 9 Mar.
    await deal(101, c1, ref1.id, 100_000_00, '2026-03-09T00:00:00Z', '2026-01-15T00:00:00Z');

    await store.history.saveWins(pid, [
      { dealId: 201, contactId: 22, leadId: null, categoryId: 0, amount: 12_000_00, currency: 'RUB', wonAt: t('2025-06-01T00:00:00Z'), createdAt: null },
      // 100.00 EUR at today's stored rate (100 RUB): 10 000.00 RUB, pipeline 1.
      { dealId: 202, contactId: 22, leadId: null, categoryId: 1, amount: 100_00, currency: 'EUR', wonAt: t('2025-07-01T00:00:00Z'), createdAt: null },
      // No rate for XYZ: left out.
      { dealId: 203, contactId: 22, leadId: null, categoryId: 0, amount: 999_00, currency: 'XYZ', wonAt: t('2025-08-01T00:00:00Z'), createdAt: null },
      { dealId: 204, contactId: 23, leadId: null, categoryId: 0, amount: 4_000_00, currency: 'RUB', wonAt: t('2025-05-01T00:00:00Z'), createdAt: null },
      // Also in `deals`: counted once, from there.
      { dealId: 105, contactId: 21, leadId: null, categoryId: 0, amount: 7_000_00, currency: 'RUB', wonAt: t('2025-11-01T00:00:00Z'), createdAt: null },
    ]);

    for (const at of ['2026-01-01T00:00:00Z', '2026-02-15T00:00:00Z', '2026-03-01T00:00:00Z', '2025-12-31T23:59:59Z']) {
      await store.clicks.record({ portalId: pid, memberId: r1.id, code: r1.code!, clickedAt: t(at), visitorHash: `v-${at}`, agentClass: 'desktop' });
    }

    let key = 0;
    const e = (m: Member, amount: number, reason: NewLedgerEntry['reason'], dealId: number | null, created: string, over: Partial<NewLedgerEntry> = {}): NewLedgerEntry => ({
      portalId: pid,
      memberId: m.id,
      amount,
      reason,
      kind: amount < 0 && reason !== 'redemption' ? 'reversal' : amount < 0 ? 'correction' : 'credit',
      dealId,
      level: reason === 'referral' || reason === 'coupon' ? 1 : 0,
      programVersion: 1,
      idempotencyKey: `k${++key}`,
      availableAt: t(created),
      expiresAt: null,
      causedBy: dealId === null ? 'system:test' : `deal:${dealId}`,
      comment: null,
      createdAt: t(created),
      ...over,
    });
    await store.ledger.append([
      e(r1, 10_000_00, 'referral', 101, '2026-01-15T00:00:00Z'),
      e(c1, 1_000_00, 'welcome', 101, '2026-01-15T00:00:00Z', { expiresAt: t('2026-03-20T00:00:00Z') }),
      // Held until April: pending now.
      e(r1, 4_525_00, 'referral', 102, '2026-02-01T00:00:00Z', { availableAt: t('2026-04-01T00:00:00Z') }),
      e(r1, 3_000_00, 'referral', 104, '2026-02-05T00:00:00Z'),
      e(r1, -3_000_00, 'referral', 104, '2026-02-20T00:00:00Z'),
      e(o1, 90_00, 'cashback', 106, '2026-01-03T00:00:00Z', { expiresAt: t('2026-06-01T00:00:00Z') }),
      e(r1, 500_00, 'coupon', null, '2026-02-10T00:00:00Z'),
      // Spends the oldest lot of C1 first: 700.00 of the welcome bonus is left to expire.
      e(c1, -300_00, 'redemption', 102, '2026-02-02T00:00:00Z'),
      e(r2, 1_000_00, 'referral', 107, '2025-12-31T00:00:00Z', { expiresAt: t('2026-03-05T00:00:00Z') }),
      e(r2, 2_000_00, 'referral', 103, '2026-03-01T00:00:00Z'),
      e(r2, 100_00, 'promo', null, '2026-01-07T00:00:00Z', { expiresAt: t('2026-04-01T00:00:00Z') }),
    ]);
    return p;
  }

  /** Another portal with rows of every kind in the same period: never counted in the first. */
  async function otherPortal(store: SqlStore): Promise<void> {
    const p = await newPortal();
    const m = await store.members.ensure(p.id, 'contact', 11, t('2025-01-01T00:00:00Z'));
    const r = await store.members.ensure(p.id, 'contact', 1, t('2025-01-01T00:00:00Z'));
    const ref = await store.referrals.record({ portalId: p.id, refereeMemberId: m.id, referrerMemberId: r.id, code: null, source: 'deal', sourceRef: 'x', status: 'active', rejectReason: null, createdAt: t('2026-01-05T00:00:00Z') });
    await store.deals.upsert({ portalId: p.id, dealId: 101, clientMemberId: m.id, categoryId: 0, stageId: 'WON', stageSemantic: 'S', amount: 999_999_00, currency: 'RUB', won: true, deleted: false, firstWonAt: t('2026-01-15T00:00:00Z'), programVersion: 1, referralId: ref.id, updatedAt: t('2026-01-10T00:00:00Z') });
    await store.clicks.record({ portalId: p.id, memberId: r.id, code: 'OTHER', clickedAt: t('2026-01-02T00:00:00Z'), visitorHash: 'x', agentClass: 'mobile' });
    await store.history.saveWins(p.id, [{ dealId: 201, contactId: 22, leadId: null, categoryId: 0, amount: 50_000_00, currency: 'RUB', wonAt: t('2025-06-01T00:00:00Z'), createdAt: null }]);
    await store.ledger.append([
      { portalId: p.id, memberId: r.id, amount: 77_777_00, reason: 'referral', kind: 'credit', dealId: 101, level: 1, programVersion: 1, idempotencyKey: 'o1', availableAt: t('2026-01-15T00:00:00Z'), expiresAt: t('2026-03-15T00:00:00Z'), causedBy: 'deal:101', comment: null, createdAt: t('2026-01-15T00:00:00Z') },
    ]);
  }

  describe('analytics', () => {
    let portal: Installation;
    const read = (q: { from?: Date; to?: Date; category?: number | null } = {}): Promise<AnalyticsAnswer> =>
      readAnalytics({ store: getStore(), clock: { now: () => NOW } }, portal.id, { from: q.from ?? FROM, to: q.to ?? TO, category: q.category ?? null });

    it("answers the segments of the last nightly run of this portal's clients", async () => {
      const store = getStore();
      const mine = await fixture(store);
      const other = await newPortal();
      portal = mine;
      const c = (id: number) => ({ entity: 'contact' as const, id });
      await store.segments.saveComputed(mine.id, [{ client: c(1), segment: 'loyal' }, { client: c(2), segment: 'loyal' }, { client: c(3), segment: 'sleeping' }], NOW);
      await store.segments.saveComputed(other.id, [{ client: c(1), segment: 'lost' }], NOW);
      const a = analyticsAnswerSchema.parse(await read());
      expect(a.segments.computedAt).toBe(NOW.toISOString());
      expect(a.segments.counts).toEqual(RFM_SEGMENTS.map((segment) => ({ segment, members: segment === 'loyal' ? 2 : segment === 'sleeping' ? 1 : 0 })));
    });

    it('computes every figure of a period from the stored rows, as worked out by hand', async () => {
      const store = getStore();
      await otherPortal(store);
      portal = await fixture(store);
      await otherPortal(store);
      const a = analyticsAnswerSchema.parse(await read());
      expect(a.currency).toBe('RUB');
      expect(a.period).toEqual({ from: FROM.toISOString(), to: TO.toISOString() });
      expect(a.category).toBeNull();
      // Clicks 1 Jan 00:00 and 15 Feb (1 Mar 00:00 and 31 Dec are outside); referrals of C1 and C3
      // (C2's is from December, O1's was rejected); deals 101 102 104 108 109 103 seen in the
      // period (107 in December; 101 re-upserted in March keeps 10 Jan); won: 101 109 102.
      expect(a.funnel).toEqual({ clicks: 2, referredLeads: 2, referredDeals: 6, wonReferredDeals: 3 });
      // 100 000 + 5 000 + 500 USD × 90.5.
      expect(a.referredRevenue).toBe(150_250);
      // referral 10 000 + 4 525 + 3 000 − 3 000; welcome 1 000; cashback 90; coupon 500 (the
      // December and 1 March credits are outside; promo is not a reward cost).
      expect(a.rewardCostByReason).toEqual({ referral: 14_525, welcome: 1_000, cashback: 90, coupon: 500 });
      expect(a.rewardCost).toBe(16_115);
      // (150 250 − 16 115) / 16 115 × 100.
      expect(a.roiPercent).toBe(832.36);
      // Referred: C1 (101 + 102 = 145 250, 108 deleted), C2 (107 + 109 = 15 000; 103 won at `to`).
      // Others: O1 (105 + 106 = 10 000, 105 also in history counts once), contact 22 (12 000 +
      // 100 EUR = 10 000; XYZ left out), contact 23 (4 000).
      expect(a.ltv).toEqual({
        referred: { clients: 2, averageLtv: 80_125, repeatShare: 1 },
        others: { clients: 3, averageLtv: 12_000, repeatShare: 0.6667 },
      });
      // Now: everything available by 10 Mar (14 390) and the held 4 525. Expiring by 9 Apr: C1's
      // welcome less the 300 spent from it (700), R2's promo (100); R2's 5 Mar lot is gone already.
      expect(a.liability).toEqual({ available: 14_390, pending: 4_525, expiring30d: 800 });
      expect(a.topReferrers).toEqual([
        { member: { entity: 'contact', id: 1 }, code: `R1${portal.id}AAA`, wonReferredDeals: 2, referredRevenue: 145_250, earned: 14_525 },
        { member: { entity: 'contact', id: 2 }, code: `R2${portal.id}BBB`, wonReferredDeals: 1, referredRevenue: 5_000, earned: 0 },
      ]);
      // C1 145 250 (Gold), C2 35 000 and O1 10 000 (Silver), R1 R2 C3 nothing.
      expect(a.tiers).toEqual([
        { name: null, members: 3 },
        { name: 'Silver', members: 2 },
        { name: 'Gold', members: 1 },
      ]);
      // No nightly run yet: every segment at 0, never computed.
      expect(a.segments).toEqual({ computedAt: null, counts: RFM_SEGMENTS.map((segment) => ({ segment, members: 0 })) });
      expect(a.monthly).toEqual([
        { month: '2026-01', clicks: 1, referredDeals: 4, wonReferredDeals: 2, referredRevenue: 105_000, rewardCost: 11_090 },
        { month: '2026-02', clicks: 1, referredDeals: 2, wonReferredDeals: 1, referredRevenue: 45_250, rewardCost: 5_025 },
      ]);
      // Stored: 101 kept its first-seen time through the later upsert.
      const [seen] = await store.rawQuery<{ seen_at: Date | string }>('SELECT seen_at FROM deals WHERE portal_id = $1 AND deal_id = 101', [portal.id]);
      expect(new Date(seen!.seen_at).toISOString()).toBe('2026-01-10T00:00:00.000Z');
    });

    it('limits deal figures, reward cost and LTV to one pipeline (coupons and clicks have none)', async () => {
      const a = await read({ category: 1 });
      expect(a.category).toBe(1);
      // Clicks and referred leads are not per pipeline; only deal 102 is in pipeline 1.
      expect(a.funnel).toEqual({ clicks: 2, referredLeads: 2, referredDeals: 1, wonReferredDeals: 1 });
      expect(a.referredRevenue).toBe(45_250);
      expect(a.rewardCostByReason).toEqual({ referral: 4_525, welcome: 0, cashback: 0, coupon: 0 });
      expect(a.roiPercent).toBe(900);
      expect(a.ltv).toEqual({
        referred: { clients: 1, averageLtv: 45_250, repeatShare: 0 },
        others: { clients: 1, averageLtv: 10_000, repeatShare: 0 },
      });
      expect(a.topReferrers).toEqual([{ member: { entity: 'contact', id: 1 }, code: `R1${portal.id}AAA`, wonReferredDeals: 1, referredRevenue: 45_250, earned: 4_525 }]);
      // Liability and tiers are "now", whatever the filter.
      expect(a.liability).toEqual({ available: 14_390, pending: 4_525, expiring30d: 800 });
      expect(a.monthly.map((m) => m.month)).toEqual(['2026-01', '2026-02']);
    });

    it('takes `from` inclusively and `to` exclusively, and lists every month the period touches', async () => {
      // [1 Feb, 1 Mar]: 102 won at 1 Feb 00:00 is in; 103 won at 1 Mar 00:00 is in only once `to` passes it.
      const feb = await read({ from: t('2026-02-01T00:00:00Z'), to: t('2026-03-01T00:00:00Z') });
      expect(feb.funnel.wonReferredDeals).toBe(1);
      expect(feb.referredRevenue).toBe(45_250);
      const withMarch = await read({ from: t('2026-02-01T00:00:00Z'), to: t('2026-03-01T00:00:01Z') });
      expect(withMarch.funnel).toEqual({ clicks: 2, referredLeads: 1, referredDeals: 2, wonReferredDeals: 2 });
      expect(withMarch.referredRevenue).toBe(65_250);
      expect(withMarch.rewardCostByReason.referral).toBe(4_525 + 2_000);
      expect(withMarch.monthly.map((m) => [m.month, m.wonReferredDeals])).toEqual([
        ['2026-02', 1],
        ['2026-03', 1],
      ]);
      // A period with nothing in it: zeros, no ROI, every month listed.
      const empty = await read({ from: t('2024-11-15T00:00:00Z'), to: t('2025-01-10T00:00:00Z') });
      expect(empty.funnel).toEqual({ clicks: 0, referredLeads: 0, referredDeals: 0, wonReferredDeals: 0 });
      expect(empty.roiPercent).toBeNull();
      expect(empty.topReferrers).toEqual([]);
      expect(empty.monthly.map((m) => m.month)).toEqual(['2024-11', '2024-12', '2025-01']);
      // LTV counts wins before `to` only: none of the fixture's by 10 Jan 2025.
      expect(empty.ltv.referred).toEqual({ clients: 0, averageLtv: 0, repeatShare: null });
    });
  });

  // Migrations 0015/0016: tiers and LTV read member_won_scoped, kept by triggers on `deals`; it
  // must stay what a recount of `deals` gives through inserts, upserts, un-wins, deletions,
  // reassignments and pipeline moves (per pipeline and for all), and the figures read from it must
  // be the definitions' over `deals` (per-deal rounding at today's rate for open currencies).
  describe('analytics: member_won_scoped', () => {
    const at = t('2026-01-01T00:00:00Z');
    const dealOf = (pid: number) => (dealId: number, client: Member, amount: number, currency: string, over: Record<string, unknown> = {}) => ({
      portalId: pid,
      dealId,
      clientMemberId: client.id,
      categoryId: 0,
      stageId: 'WON',
      stageSemantic: 'S' as const,
      amount,
      currency,
      won: true,
      deleted: false,
      firstWonAt: at,
      programVersion: 1,
      referralId: null,
      updatedAt: at,
      fxCurrency: null,
      fxRate: null,
      ...over,
    });
    const kept = (store: SqlStore, pid: number) =>
      store.rawQuery<Record<string, string | null>>(
        `SELECT member_id::text, scope::text, won_count::text, currency, amount::text, fixed_count::text, fixed_converted::text, first_won_at, last_won_at
         FROM member_won_scoped WHERE portal_id = $1 ORDER BY 2, 1`,
        [pid],
      );
    // The definition: the counted deals per pipeline and for all (-1); `currency` the one they are in.
    const recount = (store: SqlStore, pid: number) =>
      store.rawQuery<Record<string, string | null>>(
        `SELECT client_member_id::text AS member_id, coalesce(category_id, -1)::text AS scope, count(*)::text AS won_count,
                CASE WHEN count(DISTINCT currency) = 1 THEN min(currency) END AS currency, sum(amount)::text AS amount,
                count(*) FILTER (WHERE fx_currency = currency AND fx_rate IS NOT NULL)::text AS fixed_count,
                coalesce(sum(round(amount * fx_rate::numeric)) FILTER (WHERE fx_currency = currency AND fx_rate IS NOT NULL), 0)::text AS fixed_converted,
                min(coalesce(first_won_at, 'infinity')) AS first_won_at, max(coalesce(first_won_at, 'infinity')) AS last_won_at
         FROM deals WHERE portal_id = $1 AND won AND NOT deleted AND client_member_id IS NOT NULL
         GROUP BY GROUPING SETS ((client_member_id, category_id), (client_member_id)) ORDER BY 2, 1`,
        [pid],
      );

    it('keeps member_won_scoped equal to a recount of deals, and tier buckets equal to the member basis', async () => {
      const store = getStore();
      const p = await newPortal();
      const pid = p.id;
      const deal = dealOf(pid);
      const m = await Promise.all([1, 2, 3, 4, 5].map((id) => store.members.ensure(pid, 'contact', 300 + id, at)));
      const [m1, m2, m3, m4, m5] = m as [Member, Member, Member, Member, Member];
      await store.deals.upsertMany([
        deal(1, m1, 50, 'RUB'),
        deal(2, m1, 30, 'RUB', { categoryId: 1, firstWonAt: t('2026-02-01T00:00:00Z') }),
        deal(3, m2, 10, 'USD', { fxCurrency: 'USD', fxRate: '90.5' }),
        deal(4, m2, 200, 'RUB'),
        // 1 EUR minor at 92.5 is 93 per deal: 186 for two (185 if the sum were rounded).
        deal(5, m3, 1, 'EUR'),
        deal(6, m3, 1, 'EUR'),
        deal(7, m4, 500, 'XYZ'),
        deal(8, m4, 190, 'RUB'),
      ]);
      await store.deals.upsert(deal(9, m1, 40, 'RUB', { firstWonAt: t('2026-03-01T00:00:00Z') }));
      // Un-won: m1's bound stays at 1 Mar although its latest counted win is now 1 Feb.
      await store.deals.upsert(deal(9, m1, 40, 'RUB', { won: false, stageId: 'LOSE', stageSemantic: 'F', firstWonAt: t('2026-03-01T00:00:00Z') }));
      await store.deals.upsert(deal(4, m2, 300, 'RUB'));
      // Reassigned: m2 keeps only its USD deal, but stays "mixed" (NULL) until it counts none.
      await store.deals.upsert(deal(4, m5, 300, 'RUB'));
      await store.deals.upsert(deal(1, m1, 50, 'RUB', { deleted: true }));
      // Moved to pipeline 2: leaves pipeline 0's row (which goes), the all-pipelines row stays.
      await store.deals.upsert(deal(8, m4, 190, 'RUB', { categoryId: 2 }));
      await store.rawQuery('DELETE FROM deals WHERE portal_id = $1 AND deal_id = 7', [pid]);
      await otherPortal(store);

      const rows = await kept(store, pid);
      const expected = (await recount(store, pid)).map((r) => {
        if (r.member_id === String(m2.id) && (r.scope === '-1' || r.scope === '0')) return { ...r, currency: null };
        // m4 had an XYZ and a RUB deal: mixed until its row counts none (the XYZ deal's row went).
        if (r.member_id === String(m4.id) && r.scope === '-1') return { ...r, currency: null };
        // m1's bounds stay as wide as its deals ever were: 1 Jan (deal 1, deleted) to 1 Mar (deal 9, un-won).
        if (r.member_id === String(m1.id) && r.scope === '-1') return { ...r, first_won_at: at, last_won_at: t('2026-03-01T00:00:00Z') };
        return r;
      });
      const iso = (v: unknown) => new Date(v as string).toISOString();
      const asTime = (rs: Record<string, unknown>[]) => rs.map((r) => ({ ...r, first_won_at: iso(r.first_won_at), last_won_at: iso(r.last_won_at) }));
      expect(asTime(rows)).toEqual(asTime(expected));
      expect(rows.filter((r) => r.scope === '-1')).toHaveLength(5);

      // Bases now: M1 30, M2 905 (10 USD at the fixed 90.5), M3 186, M4 190, M5 300.
      const rates = [{ currency: 'RUB', rate: '1' }, { currency: 'EUR', rate: '92.5' }];
      const amounts = await store.analytics.tierBuckets(pid, { basis: 'won_amount', thresholds: [186, 1000], currency: 'RUB', rates });
      expect(Object.fromEntries(amounts)).toEqual({ 0: 1, 1: 4 });
      // Counts: M3 has two won deals, the others one.
      const counts = await store.analytics.tierBuckets(pid, { basis: 'won_count', thresholds: [2], currency: 'RUB', rates });
      expect(Object.fromEntries(counts)).toEqual({ 0: 4, 1: 1 });
      // In EUR: M3's deals are in the program currency (2), the rest are converted at 1/92.5 or
      // have no rate (0) — M2's USD deal is fixed at 90.5 (905 counted as is).
      const inEur = await store.analytics.tierBuckets(pid, { basis: 'won_amount', thresholds: [2, 906], currency: 'EUR', rates: [{ currency: 'EUR', rate: '1' }] });
      expect(Object.fromEntries(inEur)).toEqual({ 0: 3, 1: 2 });
    });

    it('answers LTV as the definition over every won deal does, for any period end, pipeline and currency', async () => {
      const store = getStore();
      const p = await newPortal();
      const pid = p.id;
      const deal = dealOf(pid);
      const contact = (id: number) => store.members.ensure(pid, 'contact', id, at);
      const [a, b, c, d, e, f, g] = (await Promise.all([401, 402, 403, 404, 405, 406, 407].map(contact))) as [Member, Member, Member, Member, Member, Member, Member];
      const lead = await store.members.ensure(pid, 'lead', 77, at);
      for (const [referee, n] of [[a, 1], [c, 2], [lead, 3]] as const) {
        await store.referrals.record({
          portalId: pid, refereeMemberId: referee.id, referrerMemberId: f.id, code: null, source: 'deal', sourceRef: `deal:ltv${n}`,
          status: 'active', rejectReason: null, createdAt: at,
        });
      }
      await store.referrals.record({
        portalId: pid, refereeMemberId: e.id, referrerMemberId: f.id, code: null, source: 'deal', sourceRef: 'deal:ltv4',
        status: 'rejected', rejectReason: 'self_referral', createdAt: at,
      });
      await store.deals.upsertMany([
        deal(1, a, 100_00, 'RUB', { firstWonAt: t('2026-01-10T00:00:00Z') }),
        deal(2, a, 50_00, 'RUB', { firstWonAt: t('2026-02-10T00:00:00Z'), categoryId: 1 }),
        deal(3, b, 10_00, 'USD', { fxCurrency: 'USD', fxRate: '90.5', firstWonAt: t('2026-01-20T00:00:00Z') }),
        deal(4, b, 7_00, 'EUR', { firstWonAt: t('2026-03-01T00:00:00Z') }), // today's rate, exactly at one `to`
        deal(5, c, 3_00, 'XYZ', { firstWonAt: t('2026-01-05T00:00:00Z') }), // no rate: left out
        deal(6, c, 20_00, 'RUB', { firstWonAt: t('2026-02-20T00:00:00Z') }),
        deal(7, d, 30_00, 'RUB', { firstWonAt: null }), // won without a first-win time: never in a period
        deal(8, e, 40_00, 'RUB', { firstWonAt: t('2026-01-15T00:00:00Z'), categoryId: 1 }),
        deal(9, lead, 60_00, 'RUB', { firstWonAt: t('2026-02-01T00:00:00Z') }),
        deal(10, e, 15_00, 'RUB', { firstWonAt: t('2026-02-25T00:00:00Z') }),
      ]);
      // Un-won late deal: e's bound stays at 2 Mar.
      await store.deals.upsert(deal(11, e, 5_00, 'RUB', { firstWonAt: t('2026-03-02T00:00:00Z') }));
      await store.deals.upsert(deal(11, e, 5_00, 'RUB', { won: false, stageId: 'LOSE', stageSemantic: 'F', firstWonAt: t('2026-03-02T00:00:00Z') }));
      // Un-won early deal: g's lower bound stays at 1 Dec 2025, its one counted win is 15 Feb.
      await store.deals.upsert(deal(12, g, 2_00, 'RUB', { firstWonAt: t('2025-12-01T00:00:00Z') }));
      await store.deals.upsert(deal(13, g, 6_00, 'RUB', { firstWonAt: t('2026-02-15T00:00:00Z') }));
      await store.deals.upsert(deal(12, g, 2_00, 'RUB', { won: false, stageId: 'LOSE', stageSemantic: 'F', firstWonAt: t('2025-12-01T00:00:00Z') }));
      await store.history.saveWins(pid, [
        { dealId: 301, contactId: 401, leadId: null, categoryId: 0, amount: 9_00, currency: 'RUB', wonAt: t('2025-06-01T00:00:00Z'), createdAt: null },
        { dealId: 302, contactId: 499, leadId: null, categoryId: 1, amount: 8_00, currency: 'EUR', wonAt: t('2025-07-01T00:00:00Z'), createdAt: null },
        { dealId: 303, contactId: 499, leadId: null, categoryId: 0, amount: 1_00, currency: 'RUB', wonAt: t('2026-02-15T00:00:00Z'), createdAt: null },
        { dealId: 304, contactId: null, leadId: 77, categoryId: 0, amount: 2_00, currency: 'RUB', wonAt: t('2025-08-01T00:00:00Z'), createdAt: null },
        { dealId: 305, contactId: null, leadId: 88, categoryId: 0, amount: 3_00, currency: 'RUB', wonAt: t('2025-09-01T00:00:00Z'), createdAt: null },
        { dealId: 306, contactId: 406, leadId: null, categoryId: 0, amount: 4_00, currency: 'RUB', wonAt: t('2025-10-01T00:00:00Z'), createdAt: null },
        { dealId: 6, contactId: 403, leadId: null, categoryId: 0, amount: 20_00, currency: 'RUB', wonAt: t('2026-02-20T00:00:00Z'), createdAt: null },
      ]);
      await otherPortal(store);

      // The definition (0015's query): every won deal and history deal converted one by one.
      const definition = async (q: { to: Date; category: number | null; currency: string; rates: { currency: string; rate: string }[] }) => {
        const values = q.rates.map((r, i) => `($${5 + 2 * i}::text, $${6 + 2 * i}::numeric)`).join(', ');
        const category = (alias: string) => `AND ($4::integer = -1 OR ${alias}.category_id = $4::integer)`; // -1: every pipeline
        const rows = await store.rawQuery<{ referred: boolean; clients: string; total: string | null; repeat: string }>(
          `WITH rates(currency, rate) AS (VALUES ${values}),
           won AS (
             SELECT coalesce(m.contact_id, -m.lead_id) AS person,
                    CASE WHEN d.currency = $3 THEN d.amount::numeric WHEN d.fx_currency = d.currency AND d.fx_rate IS NOT NULL THEN round(d.amount * d.fx_rate::numeric) ELSE round(d.amount * r.rate) END AS amount
             FROM deals d JOIN members m ON m.portal_id = d.portal_id AND m.id = d.client_member_id LEFT JOIN rates r ON r.currency = d.currency
             WHERE d.portal_id = $1 AND d.won AND NOT d.deleted AND d.first_won_at < $2 ${category('d')}
             UNION ALL
             SELECT coalesce(h.contact_id, ml.contact_id, -h.lead_id), CASE WHEN h.currency = $3 THEN h.amount::numeric ELSE round(h.amount * r.rate) END
             FROM history_deals h LEFT JOIN members ml ON h.contact_id IS NULL AND ml.portal_id = h.portal_id AND ml.lead_id = h.lead_id
             LEFT JOIN rates r ON r.currency = h.currency
             WHERE h.portal_id = $1 AND h.won_at < $2 ${category('h')} AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.portal_id = h.portal_id AND d.deal_id = h.deal_id)
           ),
           people AS (SELECT person, count(*) AS deals, sum(amount) AS total FROM won WHERE amount IS NOT NULL AND person IS NOT NULL GROUP BY person),
           referred AS (
             SELECT DISTINCT coalesce(m.contact_id, -m.lead_id) AS person FROM referrals rf JOIN members m ON m.portal_id = rf.portal_id AND m.id = rf.referee_member_id
             WHERE rf.portal_id = $1 AND rf.status = 'active'
           )
           SELECT (rp.person IS NOT NULL) AS referred, count(*) AS clients, sum(p.total) AS total, count(*) FILTER (WHERE p.deals >= 2) AS repeat
           FROM people p LEFT JOIN referred rp ON rp.person = p.person GROUP BY 1`,
          [pid, q.to.toISOString(), q.currency, q.category ?? -1, ...q.rates.flatMap((r) => [r.currency, r.rate])],
        );
        const group = (referred: boolean) => {
          const row = rows.find((r) => r.referred === referred);
          return { clients: Number(row?.clients ?? 0), total: Number(row?.total ?? 0), repeat: Number(row?.repeat ?? 0) };
        };
        return { referred: group(true), others: group(false) };
      };

      const rub = [{ currency: 'RUB', rate: '1' }, { currency: 'EUR', rate: '92.5' }];
      const eur = [{ currency: 'EUR', rate: '1' }, { currency: 'RUB', rate: '0.0108' }];
      let compared = 0;
      for (const to of ['2025-01-01T00:00:00Z', '2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z', '2026-03-02T00:00:01Z', '2030-01-01T00:00:00Z']) {
        for (const category of [null, 0, 1, 5]) {
          for (const [currency, rates] of [['RUB', rub], ['EUR', eur]] as const) {
            const q = { from: t('2020-01-01T00:00:00Z'), to: t(to), category, currency, rates: [...rates] };
            expect(await store.analytics.clientValue(pid, q), `to ${to}, pipeline ${category}, ${currency}`).toEqual(await definition(q));
            compared++;
          }
        }
      }
      expect(compared).toBe(48);
      // Worked out by hand for all pipelines in RUB, far in the future — referred: a (100 + 50 + 9
      // history) = 159.00, c (20 only: XYZ has no rate, history 6 is the same deal), the lead
      // (60 + 2 history) = 62.00; others: b (905 + 7 EUR at 92.5 = 647.50 → 1 552.50), e (40 + 15),
      // contact 499 (8 EUR = 740 + 1), lead 88 (3), f (4 from history), g (6). d's deal has no
      // first-win time.
      const all = await store.analytics.clientValue(pid, { from: t('2020-01-01T00:00:00Z'), to: t('2030-01-01T00:00:00Z'), category: null, currency: 'RUB', rates: rub });
      expect(all).toEqual({
        referred: { clients: 3, total: 159_00 + 20_00 + 62_00, repeat: 2 },
        others: { clients: 6, total: 1552_50 + 55_00 + 741_00 + 3_00 + 4_00 + 6_00, repeat: 3 },
      });
    });
  });
}
