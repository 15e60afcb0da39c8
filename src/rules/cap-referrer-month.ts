/**
 * `referral.capPerReferrerMonth` (SPEC 5): the most referral reward one referrer earns from the
 * deals first won in one calendar month of the PORTAL's time zone (a deal won at 23:30 Moscow
 * time on 31 January counts for January, though it is 20:30 UTC; 00:30 on 1 February counts for
 * February). The month of a deal is the month of its first win, fixed like its program version,
 * so re-winning or reversing it later moves nothing between months.
 *
 * Room is first come, first served: a deal gets what the referrer's other deals of that month
 * leave (their net ledger credits as loaded), and the part over the cap is recorded as capped
 * on the ledger entry, never dropped silently. A reversal lowers the other deals' net, so the
 * next settling of a capped deal of that month gets the freed room; the loop re-queues those
 * deals (see process-crm-changes.ts), so the outcome does not depend on which event comes next.
 */
import type { DesiredEntry } from './price-deal.js';

const MINUTE_MS = 60_000;

/** [from, to) of the calendar month containing `at` in a zone `utcOffsetMinutes` from UTC. */
export function monthOf(at: Date, utcOffsetMinutes: number): { from: Date; to: Date } {
  const local = new Date(at.getTime() + utcOffsetMinutes * MINUTE_MS);
  const y = local.getUTCFullYear();
  const m = local.getUTCMonth();
  return {
    from: new Date(Date.UTC(y, m, 1) - utcOffsetMinutes * MINUTE_MS),
    to: new Date(Date.UTC(y, m + 1, 1) - utcOffsetMinutes * MINUTE_MS),
  };
}

export interface CappedEntry extends DesiredEntry {
  /** What the cap held back (0 when the whole reward fits). */
  capped: number;
}

/**
 * Applies the cap to a deal's desired entries: `usedByOthers` is, per referrer, the net referral
 * credit of the referrer's other deals first won in the same month. Only 'referral' entries are
 * capped (welcome bonus and cashback pay the client, not a referrer).
 */
export function capReferrerMonth(desired: DesiredEntry[], capMinor: number | null, usedByOthers: ReadonlyMap<number, number>): CappedEntry[] {
  if (capMinor === null) return desired.map((d) => ({ ...d, capped: 0 }));
  const used = new Map(usedByOthers);
  return desired.map((d) => {
    if (d.reason !== 'referral') return { ...d, capped: 0 };
    const room = Math.max(0, capMinor - (used.get(d.memberId) ?? 0));
    const paid = Math.min(d.amount, room);
    used.set(d.memberId, (used.get(d.memberId) ?? 0) + paid);
    return { ...d, amount: paid, capped: d.amount - paid };
  });
}
