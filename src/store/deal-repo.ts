/** Deals as Sarafan last saw them, keyed (portal_id, deal_id). */
import { and, asc, eq, sql } from 'drizzle-orm';
import type { DealRepo, DealState } from '../handlers/ports.js';
import { anyId, type Db } from './db.js';
import { deals } from './schema.js';

type Row = typeof deals.$inferSelect;

const toDeal = (row: Row): DealState => ({
  portalId: row.portalId,
  dealId: row.dealId,
  clientMemberId: row.clientMemberId,
  categoryId: row.categoryId,
  stageId: row.stageId,
  stageSemantic: row.stageSemantic,
  amount: row.amount,
  currency: row.currency,
  won: row.won,
  deleted: row.deleted,
  firstWonAt: row.firstWonAt,
  programVersion: row.programVersion,
  referralId: row.referralId,
  updatedAt: row.updatedAt,
  fxCurrency: row.fxCurrency,
  fxRate: row.fxRate,
});

export function createDealRepo(db: Db): DealRepo {
  return {
    async get(portalId, dealId) {
      const [row] = await db
        .select()
        .from(deals)
        .where(and(eq(deals.portalId, portalId), eq(deals.dealId, dealId)))
        .limit(1);
      return row ? toDeal(row) : null;
    },

    async getMany(portalId, dealIds) {
      if (dealIds.length === 0) return [];
      const rows = await db
        .select()
        .from(deals)
        .where(and(eq(deals.portalId, portalId), anyId(deals.dealId, dealIds)))
        .orderBy(asc(deals.dealId));
      return rows.map(toDeal);
    },

    async upsert(state) {
      const { portalId, dealId, ...fields } = state;
      await db
        .insert(deals)
        // seen_at: the first insert's time; the update below leaves it (analytics funnel).
        .values({ portalId, dealId, ...fields, seenAt: state.updatedAt })
        .onConflictDoUpdate({ target: [deals.portalId, deals.dealId], set: fields });
    },

    async upsertMany(states) {
      if (!states.length) return;
      await db
        .insert(deals)
        .values(states.map((s) => ({ ...s, seenAt: s.updatedAt })))
        // seen_at is not in the update set: it stays the first time Sarafan recorded the deal.
        .onConflictDoUpdate({
          target: [deals.portalId, deals.dealId],
          set: {
            clientMemberId: sql`excluded.client_member_id`,
            categoryId: sql`excluded.category_id`,
            stageId: sql`excluded.stage_id`,
            stageSemantic: sql`excluded.stage_semantic`,
            amount: sql`excluded.amount`,
            currency: sql`excluded.currency`,
            won: sql`excluded.won`,
            deleted: sql`excluded.deleted`,
            firstWonAt: sql`excluded.first_won_at`,
            programVersion: sql`excluded.program_version`,
            referralId: sql`excluded.referral_id`,
            updatedAt: sql`excluded.updated_at`,
            fxCurrency: sql`excluded.fx_currency`,
            fxRate: sql`excluded.fx_rate`,
          },
        });
    },

    async forClients(portalId, clientMemberIds) {
      if (!clientMemberIds.length) return [];
      const rows = await db
        .select()
        .from(deals)
        .where(and(eq(deals.portalId, portalId), anyId(deals.clientMemberId, [...new Set(clientMemberIds)])))
        .orderBy(asc(deals.dealId));
      return rows.map(toDeal);
    },

    async forClient(portalId, clientMemberId) {
      const rows = await db
        .select()
        .from(deals)
        .where(and(eq(deals.portalId, portalId), eq(deals.clientMemberId, clientMemberId)))
        .orderBy(asc(deals.dealId));
      return rows.map(toDeal);
    },
  };
}
