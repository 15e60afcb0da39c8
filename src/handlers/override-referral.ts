/**
 * POST /api/referrals/:id/override (admin, issue 9): an admin accepts a rejected referral — a
 * false positive of the fraud checks (say, spouses sharing a phone, or a lapsed customer the
 * portal wants to count). In one transaction: the referral becomes active with who, when and why
 * recorded (the reject reason stays for the record), the referee's deals and CRM records are
 * queued as CRM changes, and a timeline comment on the referee is queued. Money then moves only
 * through the loop (load → decide → write): the queued changes re-settle the referee's deals with
 * the referral in force, exactly as if it had been accepted from the start.
 *
 * Refused (409) when the referral is not a rejection, has no referrer (an unknown code), or the
 * referee already has an active referral (first attribution wins); 404 when the portal has no
 * such referral.
 */
import { crmChangeJob } from './crm-change-job.js';
import { enqueueFeedback, type FeedbackItem } from './enqueue-feedback.js';
import { AppError } from './errors.js';
import { personOf } from './ledger-view.js';
import type { Deps, OverrideRefusal } from './ports.js';
import { referralViews, type ReferralView } from './referral-view.js';

const REFUSALS: Record<OverrideRefusal, string> = {
  not_rejected: 'Only a rejected referral can be overridden',
  no_referrer: 'The referral has no referrer (its code is unknown): there is nobody to accept',
  referee_has_referral: 'The referee already has an active referral (first attribution wins)',
};

export async function overrideReferral(deps: Deps, portalId: number, referralId: number, by: { userId: number; comment: string }): Promise<ReferralView> {
  const now = deps.clock.now();
  const referral = await deps.store.transaction(async (tx) => {
    const found = await tx.referrals.get(portalId, referralId);
    if (!found) throw new AppError('not_found', `No referral ${referralId}`);
    // The loop settles a client's deals under this lock: the override and a settling run do not interleave.
    await tx.lock(portalId, `client:${found.refereeMemberId}`);
    const result = await tx.referrals.override(portalId, referralId, { by: by.userId, at: now, comment: by.comment });
    if (result === null) throw new AppError('not_found', `No referral ${referralId}`);
    if (typeof result === 'string') throw new AppError('conflict', REFUSALS[result], [{ path: 'status', message: result }]);

    // An overridden referral always has a referrer (the repo refuses one without).
    const people = new Map((await tx.members.getMany(portalId, [result.refereeMemberId, result.referrerMemberId!])).map((m) => [m.id, m]));
    const referee = people.get(result.refereeMemberId) ?? null;
    const referrer = people.get(result.referrerMemberId!) ?? null;
    const deals = await tx.deals.forClients(portalId, [result.refereeMemberId]);
    const jobs = [
      ...deals.filter((d) => !d.deleted).map((d) => crmChangeJob(portalId, 'deal', d.dealId)),
      ...(referee?.contactId ? [crmChangeJob(portalId, 'contact', referee.contactId)] : []),
      ...(referee?.leadId ? [crmChangeJob(portalId, 'lead', referee.leadId)] : []),
    ];
    for (const job of jobs) await tx.jobs.enqueue(job, now);

    const refereeRef = personOf(referee);
    const event = { type: 'referral_overridden', referrer: personOf(referrer), userId: by.userId, comment: by.comment } as const;
    const items: FeedbackItem[] = [];
    if (refereeRef) items.push({ key: `referral:${result.id}:overridden:${refereeRef.entity}:${refereeRef.id}`, to: refereeRef, event });
    const dealId = /^deal:(\d+)$/.exec(result.sourceRef)?.[1];
    if (dealId) items.push({ key: `referral:${result.id}:overridden:deal:${dealId}`, to: { entity: 'deal', id: Number(dealId) }, event });
    await enqueueFeedback(tx, portalId, items, now);
    return result;
  });
  deps.log.info({ portalId, referral: referral.id, userId: by.userId }, 'referral.overridden');
  const [view] = await referralViews(deps.store, portalId, [referral]);
  return view!;
}
