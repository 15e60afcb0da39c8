/**
 * The member read model: everything Sarafan shows of a member — balance, pending, qualified
 * referrals, referrer, tier — loaded for many members at once in a fixed handful of queries.
 * Used by the CRM projections, the read API and (later) robots, so they never disagree.
 */
import { convertDealAmount } from '../rules/convert-currency.js';
import type { Program } from '../rules/program.js';
import { tierFor, tierProgressFor, type ClientDeal } from '../rules/price-deal.js';
import type { Balance, DealState, Member, PortalSettings, Referral, Repos } from './ports.js';

export interface MemberSummary {
  member: Member;
  balance: Balance;
  /** Qualified referrals (SPEC 4.1 REFERRALS): referees whose won deal pays this member now. */
  referrals: number;
  /** The member's own active referral, and who made it. */
  referral: Referral | null;
  referrer: Member | null;
  tier: ReturnType<typeof tierFor>;
  /** Progress to the next tier, counted from the same deals as `tier` (null without tiers). */
  tierProgress: ReturnType<typeof tierProgressFor>;
}

/** A client's deals as pricing and tiers see them: a deleted deal is not won. */
export function clientDealsOf(deals: DealState[]): ClientDeal[] {
  return deals.map((d) => ({ dealId: d.dealId, won: d.won && !d.deleted, firstWonAt: d.firstWonAt, amount: d.amount }));
}

/**
 * A client's deal with its amount in the program currency, for tiers by won amount: converted
 * with its fixed rate, else today's; a deal that cannot be converted counts as nothing.
 */
export function inProgramCurrency(d: DealState, currency: string, settings: PortalSettings | null): DealState {
  if (d.currency === currency) return d;
  const fixed = d.fxCurrency && d.fxRate ? { currency: d.fxCurrency, rate: d.fxRate } : null;
  const converted = convertDealAmount({ amount: d.amount, from: d.currency, to: currency, rates: settings?.currencies ?? null, fixed });
  return { ...d, amount: converted.ok ? converted.amount : 0 };
}

export async function loadMemberSummaries(
  store: Pick<Repos, 'members' | 'ledger' | 'referrals' | 'deals' | 'portalSettings'>,
  portalId: number,
  memberIds: number[],
  program: Program,
  now: Date,
): Promise<Map<number, MemberSummary>> {
  const ids = [...new Set(memberIds)];
  const result = new Map<number, MemberSummary>();
  if (!ids.length) return result;
  const tiered = program.tiers.levels.length > 0;
  const [members, balances, counts, referrals, deals, settings] = await Promise.all([
    store.members.getMany(portalId, ids),
    store.ledger.balances(portalId, ids, now),
    store.referrals.qualifiedCount(portalId, ids),
    store.referrals.activeForMany(portalId, ids),
    // Tiers are the only reason to read every deal of every member.
    tiered ? store.deals.forClients(portalId, ids) : Promise.resolve([] as DealState[]),
    // Deals in another currency count at their converted amounts, as pricing counts them.
    tiered ? store.portalSettings.get(portalId) : Promise.resolve(null),
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
    const clientDeals = clientDealsOf((dealsOf.get(id) ?? []).map((d) => inProgramCurrency(d, program.currency, settings)));
    result.set(id, {
      member,
      balance: balances.get(id) ?? { available: 0, pending: 0 },
      referrals: counts.get(id) ?? 0,
      referral,
      referrer: referral?.referrerMemberId ? (byId.get(referral.referrerMemberId) ?? null) : null,
      tier: tierFor(program, clientDeals),
      tierProgress: tierProgressFor(program, clientDeals),
    });
  }
  return result;
}
