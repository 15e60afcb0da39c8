/**
 * What the read API shows of a referral (issue 9): its status and, for a rejection, the reason
 * (SPEC 5: "rejected, with the reason recorded and shown"); an admin's override with who, when
 * and why. People are CRM references, never internal member ids.
 */
import { personOf } from './ledger-view.js';
import type { Referral, ReferralSource, ReferralStatus, Repos, PersonRef, RejectReason } from './ports.js';

export interface ReferralView {
  id: number;
  status: ReferralStatus;
  /** Why it was rejected; kept after an override. */
  rejectReason: RejectReason | null;
  code: string | null;
  referee: PersonRef | null;
  referrer: PersonRef | null;
  source: ReferralSource;
  /** Where the claim came from, e.g. `deal:12`, `contact:7`. */
  sourceRef: string;
  createdAt: string;
  /** The admin's override: Bitrix24 user id, ISO time, comment. */
  override: { by: number; at: string; comment: string } | null;
}

/** Views of the referrals, in the given order (one query for the people they name). */
export async function referralViews(store: Pick<Repos, 'members'>, portalId: number, referrals: Referral[]): Promise<ReferralView[]> {
  const ids = [...new Set(referrals.flatMap((r) => [r.refereeMemberId, ...(r.referrerMemberId !== null ? [r.referrerMemberId] : [])]))];
  const members = new Map((await store.members.getMany(portalId, ids)).map((m) => [m.id, m]));
  return referrals.map((r) => ({
    id: r.id,
    status: r.status,
    rejectReason: r.rejectReason,
    code: r.code,
    referee: personOf(members.get(r.refereeMemberId)),
    referrer: r.referrerMemberId !== null ? personOf(members.get(r.referrerMemberId)) : null,
    source: r.source,
    sourceRef: r.sourceRef,
    createdAt: r.createdAt.toISOString(),
    override: r.override ? { by: r.override.by, at: r.override.at.toISOString(), comment: r.override.comment } : null,
  }));
}
