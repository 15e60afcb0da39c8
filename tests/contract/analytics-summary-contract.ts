/**
 * The analytics summaries (migration 0014; part of the store contract, so it runs on PGlite and
 * PostgreSQL): after a series of writes — credits, reversals, redemptions, expiries, promo codes,
 * entries written before their deal is stored, a deal moved to another pipeline, a deal un-won —
 * `ledger_daily` equals the same aggregate computed from the ledger itself, and the figures read
 * from it (reward cost for periods with partial edge days, one pipeline, liability) equal the
 * raw computation. The uninstall purge leaves no summary rows behind. Likewise clicks_daily
 * (migration 0018) and the clicks by month read from it.
 */
import { describe, expect, it } from 'vitest';
import type { Installation, Member, NewLedgerEntry } from '../../src/handlers/ports.js';
import { refreshExpiryOutlook } from '../../src/handlers/refresh-expiry-outlook.js';
import { DAY_MS, decideExpiry } from '../../src/rules/expiry.js';
import type { SqlStore } from '../../src/store/open-store.js';

const t = (iso: string) => new Date(iso);

export function describeAnalyticsSummaryContract(getStore: () => SqlStore, newPortal: () => Promise<Installation>): void {
  describe('analytics summaries (ledger_daily)', () => {
    /** ledger_daily of a portal, and the same aggregate from the ledger and the deals as they are now. */
    async function summaryAndRaw(store: SqlStore, pid: number) {
      const summary = await store.rawQuery<{ day: string; reason: string; category_id: number; amount: string; entries: string }>(
        `SELECT to_char(day, 'YYYY-MM-DD') AS day, reason, category_id, amount::text, entries::text FROM ledger_daily
         WHERE portal_id = $1 ORDER BY 1, 2, 3`,
        [pid],
      );
      const raw = await store.rawQuery<{ day: string; reason: string; category_id: number; amount: string; entries: string }>(
        `SELECT to_char((l.created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, l.reason, coalesce(d.category_id, -1) AS category_id,
                sum(l.amount)::text AS amount, count(*)::text AS entries
         FROM ledger_entries l LEFT JOIN deals d ON d.portal_id = l.portal_id AND d.deal_id = l.deal_id
         WHERE l.portal_id = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        [pid],
      );
      return { summary, raw };
    }

    /** Reward cost by month and reason straight from the entries (the pre-0014 statement). */
    async function rawRewardCost(store: SqlStore, pid: number, from: Date, to: Date, category: number | null) {
      const rows = await store.rawQuery<{ month: string; reason: string; amount: string }>(
        `SELECT to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, l.reason, sum(l.amount)::text AS amount
         FROM ledger_entries l
         WHERE l.portal_id = $1 AND l.created_at >= $2 AND l.created_at < $3
           AND l.reason IN ('referral', 'welcome', 'cashback', 'coupon')
           AND ($4::integer IS NULL OR EXISTS (SELECT 1 FROM deals d WHERE d.portal_id = l.portal_id AND d.deal_id = l.deal_id AND d.category_id = $4))
         GROUP BY 1, 2`,
        [pid, from.toISOString(), to.toISOString(), category],
      );
      return rows.map((r) => ({ month: r.month, reason: r.reason, amount: Number(r.amount) })).sort(byKey);
    }
    const byKey = (a: { month: string; reason: string }, b: { month: string; reason: string }) => `${a.month}${a.reason}`.localeCompare(`${b.month}${b.reason}`);

    async function rawLiability(store: SqlStore, pid: number, now: Date) {
      const [row] = await store.rawQuery<{ available: string | null; pending: string | null }>(
        `SELECT sum(amount) FILTER (WHERE available_at <= $2)::text AS available, sum(amount) FILTER (WHERE available_at > $2)::text AS pending
         FROM ledger_entries WHERE portal_id = $1`,
        [pid, now.toISOString()],
      );
      return { available: Number(row?.available ?? 0), pending: Number(row?.pending ?? 0) };
    }

    it('equals the raw aggregate after credits, reversals, redemptions, expiries, a late deal, a pipeline move and an un-win; figures match', async () => {
      const store = getStore();
      const p = await newPortal();
      const other = await newPortal();
      const pid = p.id;
      const a = await store.members.ensure(pid, 'contact', 1, t('2025-01-01T00:00:00Z'));
      const b = await store.members.ensure(pid, 'contact', 2, t('2025-01-01T00:00:00Z'));
      const x = await store.members.ensure(other.id, 'contact', 1, t('2025-01-01T00:00:00Z'));
      const deal = (portalId: number, dealId: number, client: Member, categoryId: number, won: boolean, at: string) =>
        store.deals.upsert({
          portalId,
          dealId,
          clientMemberId: client.id,
          categoryId,
          stageId: won ? 'WON' : 'LOSE',
          stageSemantic: won ? 'S' : 'F',
          amount: 10_000_00,
          currency: 'RUB',
          won,
          deleted: false,
          firstWonAt: t('2026-01-10T00:00:00Z'),
          programVersion: 1,
          referralId: null,
          updatedAt: t(at),
        });
      let key = 0;
      const e = (m: Member, amount: number, reason: NewLedgerEntry['reason'], dealId: number | null, created: string, over: Partial<NewLedgerEntry> = {}): NewLedgerEntry => ({
        portalId: m.portalId,
        memberId: m.id,
        amount,
        reason,
        kind: amount < 0 && reason !== 'redemption' && reason !== 'expiry' ? 'reversal' : amount < 0 ? 'correction' : 'credit',
        dealId,
        level: reason === 'referral' ? 1 : 0,
        programVersion: 1,
        idempotencyKey: `s${++key}`,
        availableAt: t(created),
        expiresAt: null,
        causedBy: dealId === null ? 'system:test' : `deal:${dealId}`,
        comment: null,
        createdAt: t(created),
        ...over,
      });

      await deal(pid, 1, b, 0, true, '2026-01-10T00:00:00Z');
      await deal(pid, 2, b, 1, true, '2026-01-10T00:00:00Z');
      await deal(other.id, 1, x, 1, true, '2026-01-10T00:00:00Z');
      await store.ledger.append([
        e(a, 1_000_00, 'referral', 1, '2026-01-10T10:00:00Z', { expiresAt: t('2026-02-10T10:00:00Z') }),
        e(b, 100_00, 'welcome', 1, '2026-01-10T10:00:00Z'),
        e(b, 300_00, 'cashback', 2, '2026-01-31T23:59:59.999Z'),
        // Held: pending until 20 Feb.
        e(a, 700_00, 'referral', 2, '2026-02-01T00:00:00Z', { availableAt: t('2026-02-20T00:00:00Z') }),
        e(a, 50_00, 'coupon', null, '2026-02-03T08:00:00Z'),
        e(b, 40_00, 'promo', null, '2026-02-03T09:00:00Z'),
        e(x, 9_999_00, 'referral', 1, '2026-01-10T10:00:00Z'),
      ]);
      // Entries of a deal Sarafan stores only afterwards (pipeline 2), in two statements.
      await store.ledger.append([e(a, 200_00, 'referral', 3, '2026-01-20T12:00:00Z')]);
      await store.ledger.append([e(b, 20_00, 'cashback', 3, '2026-01-20T13:00:00Z')]);
      await deal(pid, 3, b, 2, true, '2026-01-21T00:00:00Z');
      // Redemption, expiry, and deal 1 un-won: its entries reversed.
      await store.ledger.append([
        e(b, -80_00, 'redemption', 2, '2026-02-05T00:00:00Z'),
        e(a, -500_00, 'expiry', null, '2026-02-10T10:00:00Z'),
      ]);
      await deal(pid, 1, b, 0, false, '2026-02-12T00:00:00Z');
      await store.ledger.append([
        e(a, -1_000_00, 'referral', 1, '2026-02-12T06:00:00Z'),
        e(b, -100_00, 'welcome', 1, '2026-02-12T06:00:00Z'),
      ]);
      // A repeated append (same keys) changes nothing.
      key -= 2;
      await store.ledger.append([
        e(a, -1_000_00, 'referral', 1, '2026-02-12T06:00:00Z'),
        e(b, -100_00, 'welcome', 1, '2026-02-12T06:00:00Z'),
      ]);
      // Deal 2 moves from pipeline 1 to pipeline 0, then deal 3 to 1 in a batch upsert.
      await deal(pid, 2, b, 0, true, '2026-02-13T00:00:00Z');
      await store.deals.upsertMany([
        { portalId: pid, dealId: 3, clientMemberId: b.id, categoryId: 1, stageId: 'WON', stageSemantic: 'S', amount: 10_000_00, currency: 'RUB', won: true, deleted: false, firstWonAt: t('2026-01-10T00:00:00Z'), programVersion: 1, referralId: null, updatedAt: t('2026-02-14T00:00:00Z') },
      ]);

      const { summary, raw } = await summaryAndRaw(store, pid);
      expect(summary).toEqual(raw);
      // Deal 2's entries are under pipeline 0 now, deal 3's under 1, coupon and promo under -1.
      expect(summary.filter((r) => r.day === '2026-01-20').map((r) => [r.reason, r.category_id, r.amount])).toEqual([
        ['cashback', 1, '2000'],
        ['referral', 1, '20000'],
      ]);
      expect((await summaryAndRaw(store, other.id)).summary).toEqual((await summaryAndRaw(store, other.id)).raw);

      // Periods with partial days at either edge, a period inside one day, whole months, one pipeline.
      const periods: [string, string][] = [
        ['2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z'],
        ['2026-01-10T10:00:00Z', '2026-02-12T06:00:00Z'],
        ['2026-01-10T10:00:00.001Z', '2026-02-12T06:00:00.001Z'],
        ['2026-01-31T23:00:00Z', '2026-02-01T00:00:00.001Z'],
        ['2026-01-20T12:30:00Z', '2026-01-20T14:00:00Z'],
        ['2025-12-31T12:00:00Z', '2026-02-03T08:00:00Z'],
      ];
      for (const [from, to] of periods) {
        for (const category of [null, 0, 1, 2]) {
          const viaSummary = (await store.analytics.rewardCostByMonth(pid, { from: t(from), to: t(to), category, currency: 'RUB', rates: [] })).sort(byKey);
          const expected = await rawRewardCost(store, pid, t(from), t(to), category);
          expect(viaSummary, `${from} … ${to}, category ${category}`).toEqual(expected);
        }
      }
      for (const now of ['2026-01-15T00:00:00Z', '2026-02-19T23:59:59.999Z', '2026-02-20T00:00:00Z', '2026-03-01T00:00:00Z']) {
        expect(await store.analytics.liability(pid, t(now)), now).toEqual(await rawLiability(store, pid, t(now)));
      }
      expect(await store.analytics.liability(pid, t('2026-02-15T00:00:00Z'))).toEqual({ available: 1_000_00 + 100_00 + 300_00 + 50_00 + 40_00 + 200_00 + 20_00 - 80_00 - 500_00 - 1_000_00 - 100_00, pending: 700_00 });

      // The uninstall purge removes the portal's summary with its ledger; the other portal keeps its own.
      await store.installations.markUninstalled(pid, t('2026-03-01T00:00:00Z'), true);
      expect(await store.rawQuery('SELECT * FROM ledger_daily WHERE portal_id = $1', [pid])).toEqual([]);
      expect(await store.rawQuery('SELECT amount::text FROM ledger_daily WHERE portal_id = $1', [other.id])).toEqual([{ amount: '999900' }]);
    });

    it('clicks_daily equals the clicks per UTC day, clicks by month read from it equal a count of the clicks, and the purge leaves none', async () => {
      const store = getStore();
      const p = await newPortal();
      const other = await newPortal();
      const pid = p.id;
      const m = await store.members.ensure(pid, 'contact', 501, t('2026-01-01T00:00:00Z'));
      const om = await store.members.ensure(other.id, 'contact', 501, t('2026-01-01T00:00:00Z'));
      const times = [
        '2025-12-31T23:59:59.999Z', '2026-01-01T00:00:00Z', '2026-01-01T12:00:00Z', '2026-01-15T08:00:00Z', '2026-01-31T23:59:59Z',
        '2026-02-01T00:00:00Z', '2026-02-10T10:00:00Z', '2026-02-10T10:00:00Z', '2026-02-28T23:00:00Z', '2026-03-01T00:00:01Z',
      ];
      for (const [i, at] of times.entries()) {
        await store.clicks.record({ portalId: pid, memberId: m.id, code: 'C1', clickedAt: t(at), visitorHash: `v${i}`, agentClass: 'desktop' });
      }
      await store.clicks.record({ portalId: other.id, memberId: om.id, code: 'C2', clickedAt: t('2026-01-15T08:00:00Z'), visitorHash: 'o', agentClass: 'desktop' });

      const summary = await store.rawQuery(`SELECT to_char(day, 'YYYY-MM-DD') AS day, clicks::text FROM clicks_daily WHERE portal_id = $1 ORDER BY 1`, [pid]);
      const raw = await store.rawQuery(
        `SELECT to_char((clicked_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, count(*)::text AS clicks FROM referral_clicks WHERE portal_id = $1 GROUP BY 1 ORDER BY 1`,
        [pid],
      );
      expect(summary).toEqual(raw);
      expect(summary).toHaveLength(8);

      const counted = (from: string, to: string) =>
        Object.fromEntries(
          [...times.filter((x) => t(x) >= t(from) && t(x) < t(to)).reduce((acc, x) => acc.set(x.slice(0, 7), (acc.get(x.slice(0, 7)) ?? 0) + 1), new Map<string, number>())],
        );
      for (const [from, to] of [
        ['2025-12-01T00:00:00Z', '2026-04-01T00:00:00Z'],
        ['2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z'],
        ['2026-01-01T00:00:00.001Z', '2026-02-28T23:30:00Z'],
        ['2026-01-01T06:00:00Z', '2026-01-01T18:00:00Z'],
        ['2026-02-10T10:00:00Z', '2026-02-10T10:00:00.001Z'],
        ['2025-12-31T23:59:59.999Z', '2026-03-01T00:00:01Z'],
      ] as const) {
        expect(Object.fromEntries(await store.analytics.clicksByMonth(pid, t(from), t(to))), `${from} … ${to}`).toEqual(counted(from, to));
      }

      await store.installations.markUninstalled(pid, t('2026-03-02T00:00:00Z'), true);
      expect(await store.rawQuery('SELECT * FROM clicks_daily WHERE portal_id = $1', [pid])).toEqual([]);
      expect(await store.rawQuery('SELECT clicks::text FROM clicks_daily WHERE portal_id = $1', [other.id])).toEqual([{ clicks: '1' }]);
    });

    it('expiring in 30 days: stored outlooks plus a replay of the members written since equal a replay of everyone', async () => {
      const store = getStore();
      const p = await newPortal();
      const pid = p.id;
      const people = [
        await store.members.ensure(pid, 'contact', 1, t('2025-01-01T00:00:00Z')),
        await store.members.ensure(pid, 'contact', 2, t('2025-01-01T00:00:00Z')),
        await store.members.ensure(pid, 'lead', 3, t('2025-01-01T00:00:00Z')),
      ];
      const [a, b, c] = people as [Member, Member, Member];
      let key = 0;
      const e = (m: Member, amount: number, reason: NewLedgerEntry['reason'], dealId: number | null, created: string, expires: string | null, over: Partial<NewLedgerEntry> = {}): NewLedgerEntry => ({
        portalId: pid,
        memberId: m.id,
        amount,
        reason,
        kind: amount < 0 && reason !== 'redemption' ? 'reversal' : amount < 0 ? 'correction' : 'credit',
        dealId,
        level: reason === 'referral' ? 1 : 0,
        programVersion: 1,
        idempotencyKey: `x${++key}`,
        availableAt: t(created),
        expiresAt: expires === null ? null : t(expires),
        causedBy: 'system:test',
        comment: null,
        createdAt: t(created),
        ...over,
      });
      await store.ledger.append([
        e(a, 1_000_00, 'referral', 1, '2025-03-01T00:00:00Z', '2026-03-05T00:00:00Z'),
        e(a, 500_00, 'cashback', 2, '2025-03-10T00:00:00Z', '2026-03-20T00:00:00Z'),
        e(a, -300_00, 'redemption', 3, '2025-04-01T00:00:00Z', null),
        e(b, 2_000_00, 'welcome', 4, '2025-03-02T00:00:00Z', '2026-03-15T00:00:00Z'),
        // Reversal of b's deal-4 welcome: takes back its own lot first.
        e(b, -1_500_00, 'welcome', 4, '2025-05-01T00:00:00Z', null),
        e(b, 700_00, 'promo', null, '2025-06-01T00:00:00Z', '2026-06-01T00:00:00Z'),
        // Held: available later, expiring in the window.
        e(c, 400_00, 'referral', 5, '2025-03-01T00:00:00Z', '2026-03-25T00:00:00Z', { availableAt: t('2025-03-25T00:00:00Z') }),
      ]);
      const horizon = 30 * DAY_MS;
      const replayAll = async (now: Date) => {
        let total = 0;
        for (const m of people) for (const u of decideExpiry(await store.ledger.forMembers(pid, [m.id]), now, horizon).upcoming) total += u.amount;
        return total;
      };
      const viaOutlook = async (now: Date) => {
        const [candidates, stored] = await Promise.all([store.analytics.expiryCandidates(pid, now, horizon), store.analytics.expiringFromOutlook(pid, now, horizon)]);
        let total = stored;
        for (const entries of candidates.values()) for (const u of decideExpiry(entries, now, horizon).upcoming) total += u.amount;
        return { total, stored, replayed: candidates.size };
      };
      const at1 = t('2026-03-01T00:00:00Z');
      // Nothing stored yet: everyone is replayed.
      expect(await viaOutlook(at1)).toEqual({ total: await replayAll(at1), stored: 0, replayed: 3 });
      expect(await replayAll(at1)).toBe(700_00 + 500_00 + 500_00 + 400_00);

      expect(await refreshExpiryOutlook({ store, clock: { now: () => at1 } }, pid)).toBe(3);
      expect(await refreshExpiryOutlook({ store, clock: { now: () => at1 } }, pid)).toBe(0);
      // Later windows are sums of what was stored (no replay), equal to a replay at that time.
      for (const now of [at1, t('2026-03-05T00:00:00Z'), t('2026-03-12T00:00:00Z'), t('2026-05-10T00:00:00Z')]) {
        const got = await viaOutlook(now);
        expect(got.replayed, now.toISOString()).toBe(0);
        expect(got.total, now.toISOString()).toBe(await replayAll(now));
      }
      // A spend of a's makes a stale: a is replayed, b and c come from the store.
      await store.ledger.append([e(a, -900_00, 'redemption', 6, '2026-03-02T00:00:00Z', null)]);
      const at2 = t('2026-03-03T00:00:00Z');
      const got = await viaOutlook(at2);
      expect(got.replayed).toBe(1);
      expect(got.total).toBe(await replayAll(at2));
      // a: the 900.00 spend empties the 5 March lot (700.00 left) and takes 200.00 of the 20 March one.
      expect(got.total).toBe(300_00 + 500_00 + 400_00);
      // The job's refresh catches a up; only a is recomputed.
      expect(await refreshExpiryOutlook({ store, clock: { now: () => at2 } }, pid)).toBe(1);
      expect(await viaOutlook(at2)).toEqual({ total: await replayAll(at2), stored: await replayAll(at2), replayed: 0 });
      // An outlook computed after `now` (a clock set back) is not trusted: replayed instead.
      const before = t('2026-02-20T00:00:00Z');
      expect((await viaOutlook(before)).total).toBe(await replayAll(before));
    });
  });
}
