/**
 * The member read model: everything Sarafan shows of a member — balance, pending, qualified
 * referrals, referrer, tier — loaded for many members at once in a fixed handful of queries.
 * Used by the CRM projections, the read API and (later) robots, so they never disagree.
 */
import type { Program } from '../rules/program.js';
import { tierFor, type ClientDeal } from '../rules/price-deal.js';
import type { Balance, DealState, Member, Referral, Repos } from './ports.js';

export interface MemberSummary {
  member: Member;
  balance: Balance;
  /** Qualified referrals (SPEC 4.1 REFERRALS): referees whose won deal pays this member now. */
  referrals: number;
  /** The member's own active referral, and who made it. */
  referral: Referral | null;
  referrer: Member | null;
  tier: ReturnType<typeof tierFor>;
}

/** A client's deals as pricing and tiers see them: a deleted deal is not won. */
export function clientDealsOf(deals: DealState[]): ClientDeal[] {
  return deals.map((d) => ({ dealId: d.dealId, won: d.won && !d.deleted, firstWonAt: d.firstWonAt, amount: d.amount }));
}

export async function loadMemberSummaries(
  store: Pick<Repos, 'members' | 'ledger' | 'referrals' | 'deals'>,
  portalId: number,
  memberIds: number[],
  program: Program,
  now: Date,
): Promise<Map<number, MemberSummary>> {
  const ids = [...new Set(memberIds)];
  const result = new Map<number, MemberSummary>();
  if (!ids.length) return result;
  const [members, balances, counts, referrals, deals] = await Promise.all([
    store.members.getMany(portalId, ids),
    store.ledger.balances(portalId, ids, now),
    store.referrals.qualifiedCount(portalId, ids),
    store.referrals.activeForMany(portalId, ids),
    // Tiers are the only reason to read every deal of every member.
    program.tiers.levels.length ? store.deals.forClients(portalId, ids) : Promise.resolve([] as DealState[]),
  ]);
  const byId = new Map(members.map((m) => [m.id, m]));
  const referrerIds = [...referrals.values()].map((r) => r.referrerMemberId).filter((id): id is number => id !== null && !byId.has(id));
  for (const m of await store.members.getMany(portalId, [...new Set(referrerIds)])) byId.set(m.id, m);
  const dealsOf = new Map<number, DealState[]>();
  for (const d of deals) {
    if (d.clientMemberId === null) continue;
    const list = dealsOf.get(d.clientMemberId);
    if (list) list.push(d);
    else dealsOf.set(d.clientMemberId, [d]);
  }
  for (const id of ids) {
    const member = byId.get(id);
    if (!member) continue;
    const referral = referrals.get(id) ?? null;
    result.set(id, {
      member,
      balance: balances.get(id) ?? { available: 0, pending: 0 },
      referrals: counts.get(id) ?? 0,
      referral,
      referrer: referral?.referrerMemberId ? (byId.get(referral.referrerMemberId) ?? null) : null,
      tier: tierFor(program, clientDealsOf(dealsOf.get(id) ?? [])),
    });
  }
  return result;
}
