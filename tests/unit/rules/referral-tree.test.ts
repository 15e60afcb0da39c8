import { describe, expect, it } from 'vitest';
import { referralTree, type TreeEntry, type TreeReferral } from '../../../src/rules/referral-tree.js';

const ROOT = 1;
const ref = (id: number, referee: number, referrer: number | null, status: TreeReferral['status'] = 'active'): TreeReferral => ({ id, refereeMemberId: referee, referrerMemberId: referrer, status });
const reward = (memberId: number, dealId: number, level: number, amount: number, shortfall = 0): TreeEntry => ({ memberId, dealId, reason: 'referral', level, amount, shortfall });

/** The tree as [referee, level, qualified, earned, branchEarned, children]. */
type Shape = [number, number, boolean, number, number, Shape[]];
function shape(nodes: ReturnType<typeof referralTree<TreeReferral>>): Shape[] {
  return nodes.map((n) => [n.referral.refereeMemberId, n.level, n.qualified, n.earned, n.branchEarned, shape(n.children)]);
}

describe('referralTree', () => {
  // 1 referred 2 (deal 20) and 3 (rejected); 2 referred 4 (deal 40); 4 referred 5 (deal 50).
  const referrals = [ref(13, 5, 4), ref(10, 2, 1), ref(11, 3, 1, 'rejected'), ref(12, 4, 2)];
  const deals = [
    { dealId: 20, clientMemberId: 2 },
    { dealId: 40, clientMemberId: 4 },
    { dealId: 50, clientMemberId: 5 },
  ];
  const entries = [
    reward(1, 20, 1, 1000),
    reward(1, 40, 2, 200),
    reward(2, 40, 1, 400),
    reward(1, 50, 3, 50),
    reward(4, 50, 1, 300),
    reward(2, 50, 2, 100),
    { memberId: 4, dealId: 40, reason: 'cashback', level: 0, amount: 99, shortfall: 0 },
  ];

  it('goes down to maxLevel through active referrals, oldest first, with what the root earns at each level', () => {
    expect(shape(referralTree({ rootMemberId: ROOT, maxLevel: 3, referrals, deals, entries }))).toEqual([
      [2, 1, true, 1000, 1250, [[4, 2, true, 200, 250, [[5, 3, true, 50, 50, []]]]]],
      [3, 1, false, 0, 0, []],
    ]);
    expect(shape(referralTree({ rootMemberId: ROOT, maxLevel: 1, referrals, deals, entries }))).toEqual([
      [2, 1, true, 1000, 1000, []],
      [3, 1, false, 0, 0, []],
    ]);
  });

  it('a reward reversed (or clamped, its shortfall counted as taken back) neither qualifies nor earns', () => {
    const reversed = [...entries, reward(2, 40, 1, -400), reward(1, 40, 2, -150, 50)];
    expect(shape(referralTree({ rootMemberId: ROOT, maxLevel: 2, referrals, deals, entries: reversed }))).toEqual([
      [2, 1, true, 1000, 1000, [[4, 2, false, 0, 0, []]]],
      [3, 1, false, 0, 0, []],
    ]);
  });

  it('a rejected referral has no children, and a cycle is not followed', () => {
    const cyclic = [ref(10, 2, 1), ref(11, 1, 2), ref(12, 3, 2, 'rejected'), ref(13, 4, 3)];
    expect(shape(referralTree({ rootMemberId: ROOT, maxLevel: 5, referrals: cyclic, deals: [], entries: [] }))).toEqual([
      [2, 1, false, 0, 0, [[1, 2, false, 0, 0, []], [3, 2, false, 0, 0, []]]],
    ]);
  });

  it('no referrals: an empty tree', () => {
    expect(referralTree({ rootMemberId: ROOT, maxLevel: 2, referrals: [], deals: [], entries: [] })).toEqual([]);
  });
});
