/**
 * GET /api/members/:entity/:id (SPEC 3, 7 contact/lead tab): what Sarafan knows of a CRM contact
 * or lead — code, link, balance, pending, tier, referrals, referrer and the ledger, newest first,
 * paged by entry id. Everything is read within the caller's portal. A person Sarafan has never
 * seen is a normal card: `enrolled: false` and zeros, not an error.
 *
 * Limits: the tier is computed from the deals Sarafan has seen for the client (as the CRM
 * projection is); names of people are the portal's to show, so only CRM references are answered.
 */
import { decideExpiry } from '../rules/expiry.js';
import { fromMinor } from '../rules/money.js';
import { referralLink } from '../rules/referral-link.js';
import { loadMemberSummaries } from './member-summaries.js';
import { couponItems, ledgerItems, personOf, type CouponItem, type LedgerItem } from './ledger-view.js';
import { currentProgram } from './program-versions.js';
import type { Deps, Installation, PersonEntity, PersonRef } from './ports.js';
import { referralViews, type ReferralView } from './referral-view.js';

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

export interface MemberAnswer {
  entity: PersonEntity;
  id: number;
  /** Has a referral code (SPEC 5: given on enrolment). */
  enrolled: boolean;
  code: string | null;
  link: string | null;
  joinedAt: string | null;
  /** The program currency all amounts are in. */
  currency: string;
  balance: number;
  pending: number;
  tier: string | null;
  nextTier: { name: string; from: number } | null;
  /** Qualified referrals this person made: referees whose won deal pays them now (SPEC 4.1). */
  referrals: number;
  referrer: PersonRef | null;
  /**
   * Bonus that expires within the next 30 days unless spent first (SPEC 5 expiry, oldest first):
   * the total and each date (ISO) with its amount, soonest first.
   */
  expiring: { total: number; dates: { at: string; amount: number }[] };
  /** How this person came: the active referral, else the latest rejection (with its reason). */
  referral: ReferralView | null;
  /** Every referral recorded for this person as referee, newest first (rejections included). */
  referralHistory: ReferralView[];
  ledger: LedgerItem[];
  /** Milestone coupons this person earned, oldest milestone first (reversed ones too). */
  coupons: CouponItem[];
  /** Cursor for the next (older) page; null when this page is the last. */
  nextBefore: number | null;
}

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
  const { balance, referrals, referrer, tier } = summaries.get(member.id)!;
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
