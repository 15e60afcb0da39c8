/**
 * The people a member referred, as a tree down to the program's referrer levels (SPEC 7, contact
 * tab: "the people they referred, a tree for multi-level"). Pure: the handler loads one level at
 * a time in a few set-based queries and hands the rows here.
 *
 * Only an active referral has children: a rejected one makes nobody the root's level-2 referee.
 * `qualified` is the REFERRALS field's notion (SPEC 4.1): the referee's won deal pays their direct
 * referrer a level-1 referral reward now (net of reversals; a clamped reversal's shortfall counts
 * as taken back). `earned` is what the root holds now from the person's deals at the person's level.
 */

export interface TreeReferral {
  id: number;
  refereeMemberId: number;
  referrerMemberId: number | null;
  status: 'active' | 'rejected';
}

export interface TreeEntry {
  memberId: number;
  dealId: number | null;
  reason: string;
  level: number;
  /** Signed, minor units. */
  amount: number;
  /** Minor units a clamped reversal could not take back (≥ 0). */
  shortfall: number;
}

export interface TreeDeal {
  dealId: number;
  clientMemberId: number | null;
}

export interface TreeNode<R extends TreeReferral> {
  referral: R;
  /** 1 = referred by the root. */
  level: number;
  qualified: boolean;
  /** Minor units: what the root earns now from this person's own deals. */
  earned: number;
  /** Minor units: `earned` plus everyone below. */
  branchEarned: number;
  children: TreeNode<R>[];
}

/** Net referral reward per (member, deal, level) slot, shortfall counted as taken back. */
function slotNets(entries: readonly TreeEntry[]): Map<string, number> {
  const nets = new Map<string, number>();
  for (const e of entries) {
    if (e.reason !== 'referral' || e.dealId === null) continue;
    const key = `${e.memberId}:${e.dealId}:${e.level}`;
    nets.set(key, (nets.get(key) ?? 0) + e.amount - e.shortfall);
  }
  return nets;
}

/**
 * The tree under `rootMemberId` from every referral loaded (any order), the deals of the active
 * referees and the ledger entries of those deals. Children are oldest referral first; a member
 * met twice on one path (which the referral rules never allow) is not descended into again.
 */
export function referralTree<R extends TreeReferral>(args: {
  rootMemberId: number;
  maxLevel: number;
  referrals: readonly R[];
  deals: readonly TreeDeal[];
  entries: readonly TreeEntry[];
}): TreeNode<R>[] {
  const byReferrer = new Map<number, R[]>();
  for (const r of [...args.referrals].sort((a, b) => a.id - b.id)) {
    if (r.referrerMemberId === null) continue;
    const list = byReferrer.get(r.referrerMemberId);
    if (list) list.push(r);
    else byReferrer.set(r.referrerMemberId, [r]);
  }
  const dealsOf = new Map<number, number[]>();
  for (const d of args.deals) {
    if (d.clientMemberId === null) continue;
    const list = dealsOf.get(d.clientMemberId);
    if (list) list.push(d.dealId);
    else dealsOf.set(d.clientMemberId, [d.dealId]);
  }
  const nets = slotNets(args.entries);
  const net = (memberId: number, dealId: number, level: number): number => nets.get(`${memberId}:${dealId}:${level}`) ?? 0;

  const build = (referrerId: number, level: number, path: Set<number>): TreeNode<R>[] => {
    if (level > args.maxLevel) return [];
    return (byReferrer.get(referrerId) ?? []).map((referral) => {
      const active = referral.status === 'active';
      const deals = active ? (dealsOf.get(referral.refereeMemberId) ?? []) : [];
      const qualified = deals.some((d) => net(referrerId, d, 1) > 0);
      const earned = deals.reduce((sum, d) => sum + net(args.rootMemberId, d, level), 0);
      const descend = active && !path.has(referral.refereeMemberId);
      const children = descend ? build(referral.refereeMemberId, level + 1, new Set([...path, referral.refereeMemberId])) : [];
      return {
        referral,
        level,
        qualified,
        earned,
        branchEarned: earned + children.reduce((sum, c) => sum + c.branchEarned, 0),
        children,
      };
    });
  };
  return build(args.rootMemberId, 1, new Set([args.rootMemberId]));
}
