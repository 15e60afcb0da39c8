/**
 * GET /api/analytics (SPEC 8; admins): the referral funnel, referred revenue, reward cost, ROI,
 * LTV of referred clients against the others, liability and what expires in 30 days, top
 * referrers, tiers and monthly rows — for a period [from, to) and optionally one pipeline.
 *
 * Every figure is read from Sarafan's own tables (ledger, clicks, referrals, deals, the install's
 * history, members) in a fixed handful of set-based queries; the portal is never asked at view
 * time. Definitions: src/store/analytics-repo.ts and README "Analytics: how each figure is computed".
 *
 * Limits: clicks and referred leads have no pipeline, so the category filter leaves them as they
 * are; coupons have no deal, so they count in reward cost only without a category; deals that
 * cannot be converted into the program currency (no fixed rate, no stored rate today) are left
 * out of amounts. Liability, tiers and expiry are "now", whatever the period.
 */
import type { AnalyticsAnswer } from '../contract/admin.js';
import { averageMinor, monthsOf, ratesInto, roiPercent, share, tierDistribution, tierThresholds } from '../rules/analytics.js';
import { DAY_MS, decideExpiry } from '../rules/expiry.js';
import { fromMinor } from '../rules/money.js';
import { currentProgram } from './program-versions.js';
import type { AnalyticsQuery, ClientGroupSums, Deps } from './ports.js';

export const TOP_REFERRERS = 10;
const EXPIRY_HORIZON_MS = 30 * DAY_MS;
const REWARD_REASONS = ['referral', 'welcome', 'cashback', 'coupon'] as const;

/**
 * Queries of one view in flight at once: the pool (10 connections) also serves every other
 * request, and a small database server only queues more on its CPUs (SPEC 11 measures on 2 cores).
 */
const QUERY_PARALLELISM = 3;

/** Runs `tasks` with at most `limit` in flight, answering their results in order. */
async function bounded<T extends readonly (() => Promise<unknown>)[]>(limit: number, tasks: T): Promise<{ -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> }> {
  const results: unknown[] = new Array(tasks.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  return results as { -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> };
}

export interface AnalyticsRequest {
  from: Date;
  to: Date;
  category: number | null;
}

export async function readAnalytics(deps: Pick<Deps, 'store' | 'clock'>, portalId: number, req: AnalyticsRequest): Promise<AnalyticsAnswer> {
  const { store } = deps;
  const now = deps.clock.now();
  const { program } = await currentProgram(store.programs, portalId, now);
  const settings = await store.portalSettings.get(portalId);
  const q: AnalyticsQuery = { ...req, currency: program.currency, rates: ratesInto(program.currency, settings?.currencies ?? null) };
  const a = store.analytics;
  const levels = program.tiers.levels;
  // The slowest first, so the short ones fill in behind them.
  const [ltv, buckets, cost, top, candidates, clicks, liability, fromOutlook, won, referredDeals, referredLeads, segments] = await bounded(QUERY_PARALLELISM, [
    () => a.clientValue(portalId, q),
    () =>
      levels.length
        ? a.tierBuckets(portalId, { basis: program.tiers.basis, thresholds: tierThresholds(program.tiers.basis, levels), currency: q.currency, rates: q.rates })
        : Promise.resolve(new Map<number, number>()),
    () => a.rewardCostByMonth(portalId, q),
    () => a.topReferrers(portalId, q, TOP_REFERRERS),
    () => a.expiryCandidates(portalId, now, EXPIRY_HORIZON_MS),
    () => a.clicksByMonth(portalId, q.from, q.to),
    () => a.liability(portalId, now),
    () => a.expiringFromOutlook(portalId, now, EXPIRY_HORIZON_MS),
    () => a.wonReferredByMonth(portalId, q),
    () => a.referredDealsByMonth(portalId, q),
    () => a.referredLeads(portalId, q.from, q.to),
    () => store.segments.distribution(portalId),
  ] as const);

  // The read model's `expiring.total` of each member (read-member.ts), summed: stored outlooks
  // (refresh-expiry-outlook.ts) plus a replay of the members written since.
  let expiring = fromOutlook;
  for (const entries of candidates.values()) for (const u of decideExpiry(entries, now, EXPIRY_HORIZON_MS).upcoming) expiring += u.amount;

  const sum = <T>(values: Iterable<T>, of: (v: T) => number): number => {
    let total = 0;
    for (const v of values) total += of(v);
    return total;
  };
  const byReason = Object.fromEntries(REWARD_REASONS.map((r) => [r, sum(cost.filter((c) => c.reason === r), (c) => c.amount)])) as Record<(typeof REWARD_REASONS)[number], number>;
  const rewardCost = sum(cost, (c) => c.amount);
  const referredRevenue = sum(won.values(), (w) => w.revenue);
  const group = (g: ClientGroupSums) => ({ clients: g.clients, averageLtv: fromMinor(averageMinor(g.total, g.clients)), repeatShare: share(g.repeat, g.clients) });

  return {
    currency: program.currency,
    period: { from: q.from.toISOString(), to: q.to.toISOString() },
    category: q.category,
    funnel: {
      clicks: sum(clicks.values(), (c) => c),
      referredLeads,
      referredDeals: sum(referredDeals.values(), (c) => c),
      wonReferredDeals: sum(won.values(), (w) => w.deals),
    },
    referredRevenue: fromMinor(referredRevenue),
    rewardCost: fromMinor(rewardCost),
    rewardCostByReason: {
      referral: fromMinor(byReason.referral),
      welcome: fromMinor(byReason.welcome),
      cashback: fromMinor(byReason.cashback),
      coupon: fromMinor(byReason.coupon),
    },
    roiPercent: roiPercent(referredRevenue, rewardCost),
    ltv: { referred: group(ltv.referred), others: group(ltv.others) },
    liability: { available: fromMinor(liability.available), pending: fromMinor(liability.pending), expiring30d: fromMinor(expiring) },
    topReferrers: top.map((t) => ({
      member: t.contactId !== null ? { entity: 'contact' as const, id: t.contactId } : t.leadId !== null ? { entity: 'lead' as const, id: t.leadId } : null,
      code: t.code,
      wonReferredDeals: t.wonReferredDeals,
      referredRevenue: fromMinor(t.referredRevenue),
      earned: fromMinor(t.earned),
    })),
    tiers: tierDistribution(
      levels.map((l) => l.name),
      buckets,
    ),
    // As of the last nightly `segments.rfm` run (src/handlers/segment-clients.ts).
    segments: { computedAt: segments.computedAt?.toISOString() ?? null, counts: segments.counts },
    monthly: monthsOf(q.from, q.to).map((month) => ({
      month,
      clicks: clicks.get(month) ?? 0,
      referredDeals: referredDeals.get(month) ?? 0,
      wonReferredDeals: won.get(month)?.deals ?? 0,
      referredRevenue: fromMinor(won.get(month)?.revenue ?? 0),
      rewardCost: fromMinor(sum(cost.filter((c) => c.month === month), (c) => c.amount)),
    })),
  };
}
