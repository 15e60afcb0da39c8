/**
 * Milestone coupons: the code and status of each (member, milestone). The money they carry is in
 * the ledger (reason 'coupon', level = milestone); a status change here is bookkeeping only.
 */
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Coupon, CouponRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { coupons } from './schema.js';

type Row = typeof coupons.$inferSelect;

const toCoupon = (row: Row): Coupon => ({ ...row });

export function createCouponRepo(db: Db): CouponRepo {
  return {
    async forMembers(portalId, memberIds) {
      if (!memberIds.length) return [];
      const rows = await db
        .select()
        .from(coupons)
        .where(and(eq(coupons.portalId, portalId), inArray(coupons.memberId, [...new Set(memberIds)])))
        .orderBy(asc(coupons.memberId), asc(coupons.milestone));
      return rows.map(toCoupon);
    },

    async issueMany(portalId, proposals, now) {
      if (!proposals.length) return { issued: [], taken: [] };
      // Either unique index (code, or member milestone) may refuse a row: it is then reported.
      const rows = await db
        .insert(coupons)
        .values(proposals.map((p) => ({ portalId, ...p, status: 'issued' as const, createdAt: now, updatedAt: now })))
        .onConflictDoNothing()
        .returning();
      const issued = rows.map(toCoupon);
      const done = new Set(issued.map((c) => `${c.memberId}:${c.milestone}`));
      const taken = proposals.filter((p) => !done.has(`${p.memberId}:${p.milestone}`)).map((p) => ({ memberId: p.memberId, milestone: p.milestone }));
      return { issued, taken };
    },

    async setStatus(portalId, ids, status, now) {
      if (!ids.length) return;
      await db
        .update(coupons)
        .set({ status, updatedAt: now })
        .where(and(eq(coupons.portalId, portalId), inArray(coupons.id, ids)));
    },
  };
}
