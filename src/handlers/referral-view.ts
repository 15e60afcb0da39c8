/**
 * What the read API shows of a referral (issue 9): its status and, for a rejection, the reason
 * (SPEC 5: "rejected, with the reason recorded and shown"); an admin's override with who, when
 * and why. People are CRM references, never internal member ids.
 */
import type { ReferralView } from '../contract/api.js';
import { personOf } from './ledger-view.js';
import type { Referral, Repos } from './ports.js';

/** A referral as the API answers it: the contract's type. */
export type { ReferralView };

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
