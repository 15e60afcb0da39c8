/**
 * Promo-code campaigns and their codes. Codes are generated in bulk (100 000 per campaign), so
 * they go in with one statement over an unnested list, skipping codes the portal already has;
 * a code is used once, ever, by a conditional UPDATE that exactly one concurrent caller wins.
 */
import { and, asc, desc, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Member, PromoCampaign, PromoCampaignSummary, PromoRepo } from '../handlers/ports.js';
import { rowsOf, type Db } from './db.js';
import { members, promoCampaigns, promoCodes } from './schema.js';

type CampaignRow = typeof promoCampaigns.$inferSelect;

const toMember = (m: typeof members.$inferSelect): Member => ({ id: m.id, portalId: m.portalId, contactId: m.contactId, leadId: m.leadId, code: m.code, joinedAt: m.joinedAt, createdAt: m.createdAt });

const toCampaign = (row: CampaignRow): PromoCampaign => ({
  id: row.id,
  portalId: row.portalId,
  name: row.name,
  value: row.value,
  codeCount: row.codeCount,
  expiresAt: row.expiresAt,
  createdBy: row.createdBy,
  createdAt: row.createdAt,
});

// Codes are alphabet characters only (src/rules/codes.ts), so a comma-joined text is an exact,
// driver-independent way to pass a list of any length as one parameter.
const CODE_TEXT = /^[A-Z0-9]+$/;

export function createPromoRepo(db: Db): PromoRepo {
  async function summaries(portalId: number, campaignId?: number): Promise<PromoCampaignSummary[]> {
    const used = db
      .select({ campaignId: promoCodes.campaignId, used: sql<number>`count(*)`.mapWith(Number).as('used') })
      .from(promoCodes)
      .where(and(eq(promoCodes.portalId, portalId), sql`${promoCodes.usedAt} IS NOT NULL`, campaignId === undefined ? undefined : eq(promoCodes.campaignId, campaignId)))
      .groupBy(promoCodes.campaignId)
      .as('u');
    const rows = await db
      .select({ campaign: promoCampaigns, used: used.used })
      .from(promoCampaigns)
      .leftJoin(used, eq(used.campaignId, promoCampaigns.id))
      .where(and(eq(promoCampaigns.portalId, portalId), campaignId === undefined ? undefined : eq(promoCampaigns.id, campaignId)))
      .orderBy(desc(promoCampaigns.id));
    return rows.map((r) => ({ ...toCampaign(r.campaign), used: Number(r.used ?? 0) }));
  }

  return {
    async createCampaign(input) {
      const [row] = await db.insert(promoCampaigns).values(input).returning();
      return toCampaign(row!);
    },

    async addCodes(portalId, campaignId, codes) {
      if (codes.length === 0) return [];
      for (const code of codes) if (!CODE_TEXT.test(code)) throw new RangeError(`not a stored promo code: ${JSON.stringify(code)}`);
      const result = await db.execute(sql`
        INSERT INTO promo_codes (portal_id, code, campaign_id)
        SELECT ${portalId}::int4, c, ${campaignId}::int8 FROM unnest(string_to_array(${codes.join(',')}::text, ',')) AS c
        ON CONFLICT (portal_id, code) DO NOTHING
        RETURNING code`);
      return rowsOf<{ code: string }>(result).map((r) => r.code);
    },

    campaigns: (portalId) => summaries(portalId),

    async campaign(portalId, campaignId) {
      return (await summaries(portalId, campaignId))[0] ?? null;
    },

    async findCode(portalId, code) {
      const [row] = await db
        .select({ code: promoCodes, campaign: promoCampaigns })
        .from(promoCodes)
        .innerJoin(promoCampaigns, and(eq(promoCampaigns.portalId, promoCodes.portalId), eq(promoCampaigns.id, promoCodes.campaignId)))
        .where(and(eq(promoCodes.portalId, portalId), eq(promoCodes.code, code.toUpperCase())))
        .limit(1);
      return row ? { code: row.code.code, campaign: toCampaign(row.campaign), usedAt: row.code.usedAt, usedByMemberId: row.code.usedByMemberId } : null;
    },

    async claim(portalId, code, memberId, now) {
      // A concurrent claimer waits for the row lock, re-reads used_at and updates nothing.
      const rows = await db
        .update(promoCodes)
        .set({ usedByMemberId: memberId, usedAt: now })
        .where(and(eq(promoCodes.portalId, portalId), eq(promoCodes.code, code.toUpperCase()), isNull(promoCodes.usedAt)))
        .returning({ code: promoCodes.code });
      return rows.length === 1;
    },

    async codes(portalId, campaignId, opts) {
      const rows = await db
        .select({ code: promoCodes.code, usedAt: promoCodes.usedAt, member: members })
        .from(promoCodes)
        .leftJoin(members, and(eq(members.portalId, promoCodes.portalId), eq(members.id, promoCodes.usedByMemberId)))
        .where(and(eq(promoCodes.portalId, portalId), eq(promoCodes.campaignId, campaignId), opts.afterCode === undefined ? undefined : gt(promoCodes.code, opts.afterCode)))
        .orderBy(asc(promoCodes.code))
        .limit(opts.limit);
      return rows.map((r) => ({ code: r.code, usedAt: r.usedAt, usedBy: r.member ? toMember(r.member) : null }));
    },
  };
}
