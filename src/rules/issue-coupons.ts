/**
 * Milestone coupons (SPEC 5.1 `coupons: { everyReferrals: n, value }`): after every n qualified
 * referrals (referees whose won deal pays the referrer a direct reward now — SPEC 4.1 REFERRALS)
 * the referrer gets a coupon worth `value`, credited as bonus (ledger reason 'coupon', level =
 * the milestone). When referrals stop qualifying and the count drops below a milestone, that
 * coupon's credit is reversed and the coupon marked reversed; reaching it again re-issues the same
 * coupon (same code, the value it was issued with).
 *
 * Like settling a deal, this plans from the state loaded, per (member, milestone) slot: the
 * entry that closes the gap between the slot's net and what it should hold, keyed by the slot
 * and its entry count, so a repeated run writes nothing. Coupons follow the program in force;
 * with `coupons: null` nothing changes (coupons already issued stay).
 */
import { slotNet } from './settle-deal.js';

export interface CouponRow {
  id: number;
  milestone: number;
  value: number;
  status: 'issued' | 'reversed';
}

export interface CouponEntry {
  level: number;
  amount: number;
  shortfall?: number;
}

export interface CouponPlan {
  /** Milestones reached for the first time: a coupon row (with a new code) and its credit. */
  issue: { milestone: number; value: number }[];
  status: { id: number; status: 'issued' | 'reversed' }[];
  entries: { milestone: number; amount: number; kind: 'credit' | 'reversal' | 'correction'; idempotencyKey: string }[];
}

export function issueCoupons(args: {
  memberId: number;
  rule: { everyReferrals: number; valueMinor: number } | null;
  qualified: number;
  coupons: CouponRow[];
  entries: CouponEntry[];
}): CouponPlan {
  const { memberId, rule, qualified, coupons, entries } = args;
  const plan: CouponPlan = { issue: [], status: [], entries: [] };
  if (!rule) return plan;
  const reached = Math.floor(Math.max(0, qualified) / rule.everyReferrals);
  const byMilestone = new Map(coupons.map((c) => [c.milestone, c]));
  const milestones = new Set<number>([...coupons.map((c) => c.milestone)]);
  for (let m = 1; m <= reached; m++) milestones.add(m);

  for (const m of [...milestones].sort((a, b) => a - b)) {
    const row = byMilestone.get(m);
    const active = m <= reached;
    const value = row?.value ?? rule.valueMinor;
    if (!row && active) plan.issue.push({ milestone: m, value });
    if (row && active && row.status === 'reversed') plan.status.push({ id: row.id, status: 'issued' });
    if (row && !active && row.status === 'issued') plan.status.push({ id: row.id, status: 'reversed' });

    const slot = entries.filter((e) => e.level === m);
    const want = active ? value : 0;
    const delta = want - slotNet(slot);
    if (delta === 0) continue;
    const kind = slot.length === 0 ? 'credit' : want === 0 ? 'reversal' : 'correction';
    plan.entries.push({ milestone: m, amount: delta, kind, idempotencyKey: `coupon:${memberId}:${m}:${slot.length}` });
  }
  return plan;
}
