/**
 * Analytics formulas (SPEC 8): what is computed over the sums the store's SQL returns. Amounts
 * are integers in minor units of the program currency; the answer turns them into decimals.
 */
import { crossRate, type RateRow } from './convert-currency.js';
import { toMinor } from './money.js';

/** ROI = (referred revenue − reward cost) / reward cost × 100; null when nothing was paid (cost <= 0). */
export function roiPercent(referredRevenue: number, rewardCost: number): number | null {
  if (rewardCost <= 0) return null;
  return Math.round(((referredRevenue - rewardCost) / rewardCost) * 100 * 100) / 100;
}

/** Won amount per client, rounded to a minor unit; 0 without clients. */
export function averageMinor(total: number, clients: number): number {
  return clients > 0 ? Math.round(total / clients) : 0;
}

/** Share (0..1, 4 decimals) of `part` in `whole`; null when `whole` is 0. */
export function share(part: number, whole: number): number | null {
  return whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null;
}

/** Every UTC calendar month `[from, to)` touches, oldest first, as `YYYY-MM`. */
export function monthsOf(from: Date, to: Date): string[] {
  const months: string[] = [];
  let y = from.getUTCFullYear();
  let m = from.getUTCMonth();
  for (;;) {
    const start = Date.UTC(y, m, 1);
    if (start >= to.getTime()) break;
    months.push(`${y}-${String(m + 1).padStart(2, '0')}`);
    m += 1;
    if (m === 12) {
      m = 0;
      y += 1;
    }
  }
  return months;
}

/** The default period: the last 12 calendar months (UTC) up to now — from the 1st of the month 11 months back. */
export function defaultPeriod(now: Date): { from: Date; to: Date } {
  return { from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 11, 1)), to: now };
}

export const MAX_PERIOD_YEARS = 5;

/** Whether [from, to) is at most MAX_PERIOD_YEARS long (calendar years, so leap days do not matter). */
export function periodWithinLimit(from: Date, to: Date): boolean {
  const limit = new Date(from.getTime());
  limit.setUTCFullYear(limit.getUTCFullYear() + MAX_PERIOD_YEARS);
  return to.getTime() <= limit.getTime();
}

/**
 * Today's rate of every listed currency into the program currency (crossRate of the portal's
 * list), for the SQL to convert deals that carry no rate fixed on first win. A currency missing
 * here cannot be converted: its deals are left out of the sums.
 */
export function ratesInto(programCurrency: string, rates: RateRow[] | null): { currency: string; rate: string }[] {
  const result = [{ currency: programCurrency, rate: '1' }];
  for (const r of rates ?? []) {
    if (r.currency === programCurrency) continue;
    const rate = crossRate(rates ?? [], r.currency, programCurrency);
    if (rate !== null) result.push({ currency: r.currency, rate });
  }
  return result;
}

/**
 * Tier thresholds as the member read model compares them (price-deal.ts tierIndex): a deal count,
 * or an amount in minor units; a tier is reached when its threshold <= the member's value.
 */
export function tierThresholds(basis: 'won_amount' | 'won_count', levels: readonly { from: number }[]): number[] {
  return levels.map((l) => (basis === 'won_count' ? l.from : (toMinor(l.from) ?? Number.MAX_SAFE_INTEGER)));
}

/**
 * Members per tier from counts per bucket (bucket = how many thresholds the member reached, as
 * SQL width_bucket gives it over ascending thresholds; 0 = below the first). Every tier is listed,
 * "below the first tier" (name null) first, each with 0 when nobody is in it.
 */
export function tierDistribution(names: readonly string[], buckets: ReadonlyMap<number, number>): { name: string | null; members: number }[] {
  if (!names.length) return [];
  return [{ name: null, members: buckets.get(0) ?? 0 }, ...names.map((name, i) => ({ name, members: buckets.get(i + 1) ?? 0 }))];
}
