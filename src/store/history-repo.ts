/** Deals won before the install (history_deals), keyed (portal_id, deal_id). */
import { and, eq, inArray, min, sql } from 'drizzle-orm';
import { personKey, type HistoricalWin, type HistoryRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { historyDeals } from './schema.js';

/** Rows per statement: a page of the portal's history (2 500) and then some. */
const CHUNK = 5_000;

export function createHistoryRepo(db: Db): HistoryRepo {
  return {
    async saveWins(portalId, wins) {
      // One statement may not touch a row twice (ON CONFLICT DO UPDATE): the last reading of a deal wins.
      const unique = [...new Map(wins.map((w) => [w.dealId, w])).values()];
      for (let from = 0; from < unique.length; from += CHUNK) {
        // One JSON parameter per chunk: binding 9 scalars a row costs more than the insert itself.
        const rows = unique.slice(from, from + CHUNK).map((w: HistoricalWin) => ({
          deal_id: w.dealId,
          contact_id: w.contactId,
          lead_id: w.leadId,
          category_id: w.categoryId,
          amount: w.amount,
          currency: w.currency,
          won_at: w.wonAt.toISOString(),
          created_at: w.createdAt?.toISOString() ?? null,
        }));
        await db.execute(sql`
          INSERT INTO history_deals (portal_id, deal_id, contact_id, lead_id, category_id, amount, currency, won_at, created_at)
          SELECT ${portalId}::integer, r.deal_id, r.contact_id, r.lead_id, r.category_id, r.amount, r.currency, r.won_at, r.created_at
          FROM json_to_recordset(${JSON.stringify(rows)}::json) AS r(
            deal_id integer, contact_id integer, lead_id integer, category_id integer, amount bigint, currency text,
            won_at timestamptz, created_at timestamptz)
          ON CONFLICT (portal_id, deal_id) DO UPDATE SET
            contact_id = excluded.contact_id, lead_id = excluded.lead_id, category_id = excluded.category_id,
            amount = excluded.amount, currency = excluded.currency, won_at = excluded.won_at, created_at = excluded.created_at`);
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
