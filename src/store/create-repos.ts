/** All repositories over one `Db` (a pool, PGlite, or a transaction). */
import { sql } from 'drizzle-orm';
import type { Repos, TxRepos } from '../handlers/ports.js';
import type { TokenCipher } from './crypto.js';
import { createAnalyticsRepo } from './analytics-repo.js';
import { createClickRepo } from './click-repo.js';
import type { Db } from './db.js';
import { createCouponRepo } from './coupon-repo.js';
import { createDealRepo } from './deal-repo.js';
import { createFeedbackRepo } from './feedback-repo.js';
import { createHistoryRepo } from './history-repo.js';
import { createInstallationRepo, withMemberCache } from './installation-repo.js';
import { createJobQueue } from './job-queue.js';
import { createLedgerRepo } from './ledger-repo.js';
import { createMemberRepo } from './member-repo.js';
import { createPortalSettingsRepo } from './portal-settings-repo.js';
import { createProgramRepo } from './program-repo.js';
import { createProjectionRepo } from './projection-repo.js';
import { createPromoRepo } from './promo-repo.js';
import { createReferralRepo } from './referral-repo.js';
import { createRobotCallRepo } from './robot-call-repo.js';
import { createScheduleRepo } from './schedule-repo.js';
import { createWatermarkRepo } from './watermark-repo.js';
import { createSegmentRepo } from './segment-repo.js';

/**
 * `root` repositories (not bound to a transaction) also cache installation look-ups and
 * group-commit enqueues — both for the event hot path; inside a transaction neither applies.
 */
export function createRepos(db: Db, cipher: TokenCipher, root = false): Repos {
  const installations = createInstallationRepo(db, cipher);
  return {
    installations: root ? withMemberCache(installations) : installations,
    clicks: createClickRepo(db),
    members: createMemberRepo(db),
    referrals: createReferralRepo(db),
    programs: createProgramRepo(db),
    ledger: createLedgerRepo(db),
    deals: createDealRepo(db),
    projections: createProjectionRepo(db),
    history: createHistoryRepo(db),
    feedback: createFeedbackRepo(db),
    jobs: createJobQueue(db, { groupCommit: root }),
    schedule: createScheduleRepo(db),
    watermarks: createWatermarkRepo(db),
    portalSettings: createPortalSettingsRepo(db),
    coupons: createCouponRepo(db),
    promo: createPromoRepo(db),
    robotCalls: createRobotCallRepo(db),
    analytics: createAnalyticsRepo(db),
    segments: createSegmentRepo(db),
  };
}

/** Repositories bound to an open transaction, plus its advisory lock. */
export function createTxRepos(tx: Db, cipher: TokenCipher): TxRepos {
  return {
    ...createRepos(tx, cipher),
    async lock(portalId, key) {
      // The (int4, int4) form: its lock space never meets the single-bigint one used for migrations.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${portalId}::int4, hashtext(${key}))`);
    },
    async lockMany(portalId, keys) {
      const unique = [...new Set(keys)];
      if (!unique.length) return;
      // One statement; the ORDER BY makes every caller take the locks in the same order.
      const list = sql.join(unique.map((k) => sql`(hashtext(${k}))`), sql`, `);
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${portalId}::int4, h) FROM (SELECT DISTINCT h FROM (VALUES ${list}) AS v(h) ORDER BY h) AS s`);
    },
  };
}
