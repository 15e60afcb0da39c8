/**
 * GET /api/referrals?status=rejected (admin, issue 9): the portal's referrals in one status,
 * newest first, paged by id — where an admin finds the rejections to review and override.
 */
import type { Deps, ReferralStatus } from './ports.js';
import { referralViews, type ReferralView } from './referral-view.js';

export const DEFAULT_REFERRAL_PAGE = 50;
export const MAX_REFERRAL_PAGE = 200;

export interface ReferralPage {
  items: ReferralView[];
  /** Cursor for the next (older) page; null when this page is the last. */
  nextBefore: number | null;
}

export async function listReferrals(deps: Deps, portalId: number, q: { status: ReferralStatus; limit: number; before?: number }): Promise<ReferralPage> {
  const rows = await deps.store.referrals.list(portalId, { status: q.status, limit: q.limit, ...(q.before === undefined ? {} : { beforeId: q.before }) });
  return {
    items: await referralViews(deps.store, portalId, rows),
    nextBefore: rows.length === q.limit ? (rows.at(-1)?.id ?? null) : null,
  };
}
