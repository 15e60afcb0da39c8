/**
 * Manual adjustment by an admin (SPEC 3, 7): a signed amount with a mandatory comment.
 *
 * A negative adjustment may not take the available balance below zero, whatever `overspend`
 * says: `overspend` is the policy for bonus the program itself takes back (a reversed reward
 * already spent), while an adjustment is a deliberate act — an admin writing off more than the
 * member has would create a debt nobody decided on. Pending bonus is not touched.
 */
export type AdjustmentVerdict = { ok: true; kind: 'credit' | 'correction' } | { ok: false; reason: 'insufficient_balance' };

export function checkAdjustment(a: { amount: number; available: number }): AdjustmentVerdict {
  if (!Number.isSafeInteger(a.amount) || a.amount === 0) throw new RangeError(`adjustment amount must be a non-zero integer, got ${a.amount}`);
  if (a.amount > 0) return { ok: true, kind: 'credit' };
  if (a.available + a.amount < 0) return { ok: false, reason: 'insufficient_balance' };
  return { ok: true, kind: 'correction' };
}
