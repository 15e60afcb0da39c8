/**
 * The net invariant of SPEC 5 "Reversal": per slot (member, reason, level) of a deal, the ledger's
 * net must equal what pricing says the deal pays now. Settling plans the one entry that closes the
 * gap, so events may repeat, arrive out of order or revert each other and the deal still pays once.
 */
import type { DesiredEntry, RewardReason } from './price-deal.js';

export interface ExistingEntry {
  memberId: number;
  reason: string;
  level: number;
  amount: number;
  availableAt: Date;
  idempotencyKey: string;
  /** Clamp policy: what this negative entry did not take back; counted as taken back. */
  shortfall?: number;
  /** Monthly cap: what the slot's desired amount was held back by when this entry was written. */
  capped?: number;
}

export interface PlannedEntry {
  memberId: number;
  reason: RewardReason;
  level: number;
  amount: number;
  kind: 'credit' | 'reversal' | 'correction';
  availableAt: Date;
  idempotencyKey: string;
  /** The slot's amount held back by the referrer's monthly cap (src/rules/cap-referrer-month.ts). */
  capped: number;
}

// A deal's ledger also holds entries pricing does not own (a redemption against the deal); those
// are never reversed by settling.
const PRICED_REASONS: ReadonlySet<string> = new Set<RewardReason>(['referral', 'welcome', 'cashback']);

interface Slot {
  memberId: number;
  reason: RewardReason;
  level: number;
  desired: (DesiredEntry & { capped?: number }) | null;
  existing: ExistingEntry[];
}

/**
 * A slot's net as the invariant counts it: Σ(amount − shortfall). A shortfall (clamp policy) is
 * bonus the reversal could not take back because it was spent; it counts as taken back, so the
 * slot is settled and the reversal is not retried.
 */
export function slotNet(entries: Pick<ExistingEntry, 'amount' | 'shortfall'>[]): number {
  return entries.reduce((sum, e) => sum + e.amount - (e.shortfall ?? 0), 0);
}

export function settleDeal(args: { dealId: number; desired: (DesiredEntry & { capped?: number })[]; existing: ExistingEntry[]; now: Date }): PlannedEntry[] {
  const { dealId, desired, existing, now } = args;
  const slots = new Map<string, Slot>();
  const slotOf = (memberId: number, reason: RewardReason, level: number): Slot => {
    const key = `${reason}:${level}:${memberId}`;
    let slot = slots.get(key);
    if (!slot) {
      slot = { memberId, reason, level, desired: null, existing: [] };
      slots.set(key, slot);
    }
    return slot;
  };

  for (const d of desired) {
    const slot = slotOf(d.memberId, d.reason, d.level);
    slot.desired = slot.desired ? { ...slot.desired, amount: slot.desired.amount + d.amount, capped: (slot.desired.capped ?? 0) + (d.capped ?? 0) } : d;
  }
  for (const e of existing) {
    if (PRICED_REASONS.has(e.reason)) slotOf(e.memberId, e.reason as RewardReason, e.level).existing.push(e);
  }

  const planned: PlannedEntry[] = [];
  for (const slot of slots.values()) {
    const net = slotNet(slot.existing);
    const want = slot.desired?.amount ?? 0;
    const delta = want - net;
    // The cap's hold-back is recorded too: a change of it alone is written as a zero entry, so
    // the part over the cap is always visible on the ledger, never silently lost.
    const capped = slot.desired?.capped ?? 0;
    const lastCapped = slot.existing.length ? (slot.existing[slot.existing.length - 1]!.capped ?? 0) : 0;
    if (delta === 0 && capped === lastCapped) continue;
    const kind = slot.existing.length === 0 && net === 0 ? 'credit' : want === 0 && delta !== 0 ? 'reversal' : 'correction';
    // A change to an entry still on hold stays on hold: reversing a pending credit must take back
    // pending bonus, not bonus the member can already spend.
    const latestExisting = Math.max(now.getTime(), ...slot.existing.map((e) => e.availableAt.getTime()));
    const availableAt = kind === 'credit' && slot.desired ? slot.desired.availableAt : new Date(latestExisting);
    planned.push({
      memberId: slot.memberId,
      reason: slot.reason,
      level: slot.level,
      amount: delta,
      kind,
      availableAt,
      capped,
      // Derived from the snapshot only, so two workers planning from the same snapshot write the
      // same keys and the ledger's unique key keeps one of them.
      idempotencyKey: `deal:${dealId}:${slot.reason}:${slot.level}:${slot.memberId}:${slot.existing.length}`,
    });
  }
  return planned.sort((a, b) => (a.idempotencyKey < b.idempotencyKey ? -1 : a.idempotencyKey > b.idempotencyKey ? 1 : 0));
}
