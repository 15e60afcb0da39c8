/**
 * GET /api/members/:entity/:id (SPEC 3, 7 contact/lead tab): what Sarafan knows of a CRM contact
 * or lead — code, link, balance, pending, tier, referrals, referrer and the ledger, newest first,
 * paged by entry id. Everything is read within the caller's portal. A person Sarafan has never
 * seen is a normal card: `enrolled: false` and zeros, not an error.
 *
 * Limits: the tier is computed from the deals Sarafan has seen for the client (as the CRM
 * projection is); names of people are the portal's to show, so only CRM references are answered.
 */
import type { MemberAnswer, TierProgress } from '../contract/api.js';
import { decideExpiry } from '../rules/expiry.js';
import { fromMinor } from '../rules/money.js';
import { tierProgressFor } from '../rules/price-deal.js';
import { referralLink } from '../rules/referral-link.js';
import { loadMemberSummaries } from './member-summaries.js';
import { couponItems, ledgerItems, personOf } from './ledger-view.js';
import { currentProgram } from './program-versions.js';
import type { Deps, Installation, PersonEntity } from './ports.js';
import type { MemberSummary } from './member-summaries.js';
import { referralViews } from './referral-view.js';

export const DEFAULT_LEDGER_PAGE = 20;
export const MAX_LEDGER_PAGE = 100;

export interface ReadMemberQuery {
  entity: PersonEntity;
  id: number;
  /** Page size, 1..MAX_LEDGER_PAGE. */
  limit: number;
  /** Only entries older than this entry id (the previous page's `nextBefore`). */
  before?: number;
}

/** The answer is the API contract's type (src/contract/api.ts). */
export type { MemberAnswer };

export async function readMember(deps: Deps, installation: Installation, q: ReadMemberQuery): Promise<MemberAnswer> {
  const { store } = deps;
  const portalId = installation.id;
  const now = deps.clock.now();
  const { program } = await currentProgram(store.programs, portalId, now);
  const member = await store.members.findByEntity(portalId, q.entity, q.id);
  const answer: MemberAnswer = {
    entity: q.entity,
    id: q.id,
    enrolled: false,
    code: null,
    link: null,
    joinedAt: null,
    currency: program.currency,
    balance: 0,
    pending: 0,
    tier: null,
    nextTier: null,
    // A person Sarafan has not seen has won nothing yet.
    tierProgress: tierProgressView(tierProgressFor(program, [])),
    referrals: 0,
    referrer: null,
    expiring: { total: 0, dates: [] },
    referral: null,
    referralHistory: [],
    ledger: [],
    coupons: [],
    nextBefore: null,
  };
  if (!member) return answer;

  const [summaries, entries, coupons, all, history] = await Promise.all([
    loadMemberSummaries(store, portalId, [member.id], program, now),
    store.ledger.forMember(portalId, member.id, { limit: q.limit, ...(q.before === undefined ? {} : { beforeId: q.before }) }),
    store.coupons.forMembers(portalId, [member.id]),
    store.ledger.forMembers(portalId, [member.id]),
    store.referrals.ofReferees(portalId, [member.id]).then((rows) => referralViews(store, portalId, rows)),
  ]);
  const upcoming = decideExpiry(all, now).upcoming;
  const { balance, referrals, referrer, tier, tierProgress } = summaries.get(member.id)!;
  return {
    ...answer,
    enrolled: member.code !== null,
    code: member.code,
    link: member.code === null ? null : referralLink(deps.appBaseUrl, installation, member.code),
    joinedAt: member.joinedAt?.toISOString() ?? null,
    balance: fromMinor(balance.available),
    pending: fromMinor(balance.pending),
    tier: tier?.name ?? null,
    nextTier: tier?.next ?? null,
    tierProgress: tierProgressView(tierProgress),
    referrals,
    referrer: personOf(referrer),
    expiring: {
      total: fromMinor(upcoming.reduce((sum, u) => sum + u.amount, 0)),
      dates: upcoming.map((u) => ({ at: u.at.toISOString(), amount: fromMinor(u.amount) })),
    },
    referral: history.find((r) => r.status === 'active') ?? history[0] ?? null,
    referralHistory: history,
    ledger: await ledgerItems(store, portalId, entries, now),
    coupons: couponItems(coupons),
    nextBefore: entries.length === q.limit ? (entries.at(-1)?.id ?? null) : null,
  };
}

/** Amounts as decimals (SPEC 3); counts as they are. */
function tierProgressView(p: MemberSummary['tierProgress']): TierProgress | null {
  if (!p) return null;
  return { basis: p.basis, value: p.basis === 'won_amount' ? fromMinor(p.value) : p.value, nextFrom: p.nextFrom };
}
