/**
 * The status of a ledger entry as SPEC 5 names it (pending / available / reversed / expired),
 * derived from the append-only ledger: nothing is ever updated in place, so "reversed" is read
 * from the entries of the same deal slot (deal, member, reason, level — the unit settling keeps
 * at its net): a slot whose net is zero was taken back, and a reversal entry is itself shown as
 * reversed.
 */

export type EntryStatus = 'pending' | 'available' | 'reversed' | 'expired';

export interface StatusEntry {
  id: number;
  memberId: number;
  dealId: number | null;
  reason: string;
  level: number;
  kind: string;
  amount: number;
  availableAt: Date;
  expiresAt: Date | null;
}

// A coupon's slot is (member, milestone): its credit and its reversal may name different deals.
const slotKey = (e: StatusEntry): string | null =>
  e.reason === 'coupon' ? `coupon:${e.memberId}:${e.level}` : e.dealId === null ? null : `${e.dealId}:${e.memberId}:${e.reason}:${e.level}`;

/**
 * Statuses of `entries` at `now`. `slotEntries` must hold every entry of the deal slots the
 * entries belong to (it may hold more, and may include `entries` themselves).
 */
export function entryStatuses(entries: readonly StatusEntry[], slotEntries: readonly StatusEntry[], now: Date): Map<number, EntryStatus> {
  const nets = new Map<string, number>();
  const seen = new Set<number>();
  for (const e of [...slotEntries, ...entries]) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    const key = slotKey(e);
    if (key !== null) nets.set(key, (nets.get(key) ?? 0) + e.amount);
  }
  const statuses = new Map<number, EntryStatus>();
  for (const e of entries) {
    const key = slotKey(e);
    const reversed = e.kind === 'reversal' || (key !== null && nets.get(key) === 0 && e.amount !== 0);
    statuses.set(
      e.id,
      reversed
        ? 'reversed'
        : e.expiresAt !== null && e.expiresAt.getTime() <= now.getTime()
          ? 'expired'
          : e.availableAt.getTime() > now.getTime()
            ? 'pending'
            : 'available',
    );
  }
  return statuses;
}
