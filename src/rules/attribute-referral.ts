/**
 * Whether a referral may be recorded (SPEC 5 "Referral"). Rejections are recorded with their
 * reason and shown to managers, so the order of checks decides which reason a person sees.
 */

/** A person in the CRM: a contact, or a lead not (yet) converted. */
export interface PersonRef {
  entity: 'contact' | 'lead';
  id: number;
}

export type RejectReason = 'self_referral' | 'cycle' | 'already_customer' | 'unknown_code';

export function checkReferral(a: {
  refereeMemberId: number;
  referrerMemberId: number | null;
  /** The referrer's own referrers, nearest first. */
  referrerAncestors: number[];
  /** Same phone or e-mail: one person with two CRM records. */
  sameIdentity: boolean;
  refereeFirstWonAt: Date | null;
  referralAt: Date;
}): { ok: true } | { ok: false; reason: RejectReason } {
  if (a.referrerMemberId === null) return { ok: false, reason: 'unknown_code' };
  if (a.referrerMemberId === a.refereeMemberId || a.sameIdentity) return { ok: false, reason: 'self_referral' };
  // The referee already sits above the referrer: the new link would close a loop, and multi-level
  // rewards would then pay people for their own deals.
  if (a.referrerAncestors.includes(a.refereeMemberId)) return { ok: false, reason: 'cycle' };
  // Winning at the very moment of the referral is the referral's own deal, not an earlier purchase.
  if (a.refereeFirstWonAt !== null && a.refereeFirstWonAt.getTime() < a.referralAt.getTime()) {
    return { ok: false, reason: 'already_customer' };
  }
  return { ok: true };
}
