/**
 * `overspend` (SPEC 5 Reversal): what happens when a reversal meets bonus already spent.
 * `allow_negative` writes the whole negative amount (the balance may go below zero);
 * `clamp` takes back at most what the member still holds (available + pending, after the other
 * entries of the same run) and records the rest as the entry's `shortfall`.
 *
 * The net invariant counts a shortfall as taken back: a slot's net is Σ(amount − shortfall), so
 * a clamped reversal settles the slot at zero and is not retried; winning the deal again credits
 * the full reward again (the shortfall is written off, not recovered).
 */
export interface ClampInput {
  memberId: number;
  amount: number;
}

export function clampOverspend<T extends ClampInput>(policy: 'allow_negative' | 'clamp', entries: T[], balances: ReadonlyMap<number, number>): (T & { shortfall: number })[] {
  if (policy === 'allow_negative') return entries.map((e) => ({ ...e, shortfall: 0 }));
  const held = new Map(balances);
  // Credits of the run first, so a reversal and a credit of one run meet the member's full holding.
  const order = entries.map((e, i) => i).sort((a, b) => Math.sign(entries[b]!.amount) - Math.sign(entries[a]!.amount) || a - b);
  const out: (T & { shortfall: number })[] = new Array(entries.length);
  for (const i of order) {
    const e = entries[i]!;
    const balance = held.get(e.memberId) ?? 0;
    if (e.amount >= 0) {
      held.set(e.memberId, balance + e.amount);
      out[i] = { ...e, shortfall: 0 };
      continue;
    }
    const take = Math.min(-e.amount, Math.max(0, balance));
    held.set(e.memberId, balance - take);
    out[i] = { ...e, amount: take === 0 ? 0 : -take, shortfall: -e.amount - take };
  }
  return out;
}
