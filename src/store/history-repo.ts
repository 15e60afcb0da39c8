/** Deals won before the install (history_deals), keyed (portal_id, deal_id). */
import { and, eq, inArray, min, sql } from 'drizzle-orm';
import { personKey, type HistoricalWin, type HistoryRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { historyDeals } from './schema.js';

/** 9 parameters a row: far below PostgreSQL's 65 535 per statement. */
const CHUNK = 1_000;

export function createHistoryRepo(db: Db): HistoryRepo {
  return {
    async saveWins(portalId, wins) {
      // One statement may not touch a row twice (ON CONFLICT DO UPDATE): the last reading of a deal wins.
      const unique = [...new Map(wins.map((w) => [w.dealId, w])).values()];
      for (let from = 0; from < unique.length; from += CHUNK) {
        const rows = unique.slice(from, from + CHUNK).map((w: HistoricalWin) => ({ portalId, ...w }));
        await db
          .insert(historyDeals)
          .values(rows)
          .onConflictDoUpdate({
            target: [historyDeals.portalId, historyDeals.dealId],
            set: {
              contactId: sql`excluded.contact_id`,
              leadId: sql`excluded.lead_id`,
              categoryId: sql`excluded.category_id`,
              amount: sql`excluded.amount`,
              currency: sql`excluded.currency`,
              wonAt: sql`excluded.won_at`,
              createdAt: sql`excluded.created_at`,
            },
          });
      }
    },

    async firstWonAt(portalId, people) {
      const result = new Map<string, Date>();
      const contacts = [...new Set(people.filter((p) => p.entity === 'contact').map((p) => p.id))];
      const leads = [...new Set(people.filter((p) => p.entity === 'lead').map((p) => p.id))];
      if (contacts.length) {
        const rows = await db
          .select({ id: historyDeals.contactId, first: min(historyDeals.wonAt) })
          .from(historyDeals)
          .where(and(eq(historyDeals.portalId, portalId), inArray(historyDeals.contactId, contacts)))
          .groupBy(historyDeals.contactId);
        for (const r of rows) if (r.id !== null && r.first) result.set(personKey({ entity: 'contact', id: r.id }), new Date(r.first));
      }
      if (leads.length) {
        const rows = await db
          .select({ id: historyDeals.leadId, first: min(historyDeals.wonAt) })
          .from(historyDeals)
          .where(and(eq(historyDeals.portalId, portalId), inArray(historyDeals.leadId, leads)))
          .groupBy(historyDeals.leadId);
        for (const r of rows) if (r.id !== null && r.first) result.set(personKey({ entity: 'lead', id: r.id }), new Date(r.first));
      }
      return result;
    },
  };
}
