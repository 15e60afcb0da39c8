/** Referral link clicks: append-only rows of the SPEC 8 funnel, always filtered by portal. */
import { and, asc, eq, gte, lt } from 'drizzle-orm';
import type { Click, ClickRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { referralClicks } from './schema.js';

export function createClickRepo(db: Db): ClickRepo {
  return {
    async record(click) {
      const [row] = await db.insert(referralClicks).values(click).returning();
      if (!row) throw new Error('referral_clicks insert returned no row');
      return row satisfies Click;
    },

    async between(portalId, from, to) {
      return db
        .select()
        .from(referralClicks)
        .where(and(eq(referralClicks.portalId, portalId), gte(referralClicks.clickedAt, from), lt(referralClicks.clickedAt, to)))
        .orderBy(asc(referralClicks.clickedAt), asc(referralClicks.id));
    },
  };
}
