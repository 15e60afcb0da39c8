/**
 * GET /api/members/:entity/:id/referrals (SPEC 7 contact/lead tab: "the people they referred, a
 * tree for multi-level"): the referrals this person made, and theirs, down to the program's
 * referrer levels, each with its status (a rejection with its reason), whether it qualified and
 * what the person earns from it now. Read within the caller's portal.
 *
 * Loaded level by level, a few set-based queries per level (referrals by referrer, the referees'
 * members, their deals, those deals' ledger entries) — never a query per person; the tree is built
 * by src/rules/referral-tree.ts. At most MAX_REFERRAL_TREE_NODES people are answered, oldest
 * referrals first level by level; `truncated` says more were left out. A person Sarafan has not
 * seen answers an empty tree, not 404.
 */
import { MAX_REFERRAL_TREE_NODES, type ReferralNode, type ReferralTreeAnswer } from '../contract/api.js';
import { fromMinor } from '../rules/money.js';
import { referralTree, type TreeNode } from '../rules/referral-tree.js';
import { personOf } from './ledger-view.js';
import type { DealState, Deps, Installation, LedgerEntry, Member, PersonRef, Referral } from './ports.js';
import { currentProgram } from './program-versions.js';

export async function readReferralTree(deps: Deps, installation: Installation, person: PersonRef, maxNodes = MAX_REFERRAL_TREE_NODES): Promise<ReferralTreeAnswer> {
  const { store } = deps;
  const portalId = installation.id;
  const { program } = await currentProgram(store.programs, portalId, deps.clock.now());
  const maxLevel = program.referral.levels.length;
  const answer: ReferralTreeAnswer = { entity: person.entity, id: person.id, currency: program.currency, levels: maxLevel, referrals: [], total: 0, truncated: false, earned: 0 };
  const root = await store.members.findByEntity(portalId, person.entity, person.id);
  if (!root) return answer;

  const referrals: Referral[] = [];
  const deals: DealState[] = [];
  const entries: LedgerEntry[] = [];
  const members = new Map<number, Member>();
  const seen = new Set([root.id]);
  let frontier = [root.id];
  let truncated = false;
  for (let level = 1; level <= maxLevel && frontier.length > 0; level++) {
    const room = maxNodes - referrals.length;
    // One more than there is room for tells whether anything was left out.
    const rows = await store.referrals.ofReferrers(portalId, frontier, room + 1);
    if (rows.length > room) truncated = true;
    const taken = rows.slice(0, room);
    if (!taken.length) break;
    referrals.push(...taken);
    const next = [...new Set(taken.filter((r) => r.status === 'active' && !seen.has(r.refereeMemberId)).map((r) => r.refereeMemberId))];
    const [people, levelDeals] = await Promise.all([
      store.members.getMany(portalId, [...new Set(taken.map((r) => r.refereeMemberId))]),
      next.length ? store.deals.forClients(portalId, next) : Promise.resolve([] as DealState[]),
    ]);
    for (const m of people) members.set(m.id, m);
    deals.push(...levelDeals);
    if (levelDeals.length) entries.push(...(await store.ledger.forDeals(portalId, levelDeals.map((d) => d.dealId))));
    for (const id of next) seen.add(id);
    frontier = next;
  }

  const tree = referralTree({ rootMemberId: root.id, maxLevel, referrals, deals, entries });
  const view = (node: TreeNode<Referral>): ReferralNode => ({
    id: node.referral.id,
    person: personOf(members.get(node.referral.refereeMemberId)),
    level: node.level,
    status: node.referral.status,
    rejectReason: node.referral.rejectReason,
    createdAt: node.referral.createdAt.toISOString(),
    qualified: node.qualified,
    earned: fromMinor(node.earned),
    branchEarned: fromMinor(node.branchEarned),
    children: node.children.map(view),
  });
  const count = (nodes: TreeNode<Referral>[]): number => nodes.reduce((sum, n) => sum + 1 + count(n.children), 0);
  return {
    ...answer,
    referrals: tree.map(view),
    total: count(tree),
    truncated,
    earned: fromMinor(tree.reduce((sum, n) => sum + n.branchEarned, 0)),
  };
}
