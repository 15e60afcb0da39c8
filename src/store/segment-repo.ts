/**
 * RFM segments (issue 12): the R/F/M facts of a portal's clients, computed set-based from the
 * deals Sarafan keeps and the install's history, and per person the segment computed last and
 * the one last written to the CRM (crm_segments, migration 0011).
 */
import { sql } from 'drizzle-orm';
import type { ClientRfmFacts, PersonEntity, RfmSegment, SegmentRepo, SegmentRow } from '../handlers/ports.js';
import { RFM_SEGMENTS } from '../rules/segment-clients.js';
import { rowsOf, tsParam, type Db } from './db.js';

/** Rows per statement when many people are saved: one jsonb parameter each, well under any limit. */
const CHUNK = 5_000;

function chunks<T>(rows: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += CHUNK) out.push(rows.slice(i, i + CHUNK));
  return out;
}

const isSegment = (v: unknown): v is RfmSegment => typeof v === 'string' && (RFM_SEGMENTS as readonly string[]).includes(v);

export function createSegmentRepo(db: Db): SegmentRepo {
  return {
    async clientFacts(portalId, money) {
      const rates = JSON.stringify(money.rates.map((r) => ({ currency: r.currency, rate: r.rate })));
      // A person is the deal's contact, else its lead; a lead that became a member's lead next to a
      // contact counts as that contact, so a converted client's history and new deals meet. A deal
      // both in `deals` and in `history_deals` counts as `deals` has it (the newer view: deleted or
      // lost since the backfill means not won). Amounts: the program currency as is; else the rate
      // fixed at the deal's first win; else today's rate; else NULL (left out of M, counted in F).
      const result = await db.execute(sql`
        WITH rates AS (
          SELECT r.currency, r.rate FROM jsonb_to_recordset(${rates}::jsonb) AS r(currency text, rate numeric)
        ),
        won AS (
          SELECT CASE WHEN m.contact_id IS NOT NULL THEN 'contact' ELSE 'lead' END AS entity,
                 COALESCE(m.contact_id, m.lead_id) AS entity_id,
                 COALESCE(d.first_won_at, d.updated_at) AS won_at,
                 CASE WHEN d.currency = ${money.currency} THEN d.amount::numeric
                      WHEN d.fx_rate IS NOT NULL AND d.fx_currency = d.currency THEN round(d.amount * d.fx_rate::numeric)
                      ELSE round(d.amount * r.rate) END AS amount
            FROM deals d
            JOIN members m ON m.portal_id = d.portal_id AND m.id = d.client_member_id
            LEFT JOIN rates r ON r.currency = d.currency
           WHERE d.portal_id = ${portalId} AND d.won AND NOT d.deleted
          UNION ALL
          SELECT CASE WHEN h.contact_id IS NOT NULL OR ml.contact_id IS NOT NULL THEN 'contact' ELSE 'lead' END,
                 COALESCE(h.contact_id, ml.contact_id, h.lead_id),
                 h.won_at,
                 CASE WHEN h.currency = ${money.currency} THEN h.amount::numeric ELSE round(h.amount * r.rate) END
            FROM history_deals h
            LEFT JOIN members ml ON h.contact_id IS NULL AND ml.portal_id = h.portal_id AND ml.lead_id = h.lead_id
            LEFT JOIN rates r ON r.currency = h.currency
           WHERE h.portal_id = ${portalId}
             AND (h.contact_id IS NOT NULL OR h.lead_id IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.portal_id = h.portal_id AND d.deal_id = h.deal_id)
        )
        SELECT entity, entity_id,
               (extract(epoch FROM max(won_at)) * 1000)::float8 AS last_won_ms,
               count(*)::int AS won_deals,
               COALESCE(sum(amount), 0)::text AS won_amount,
               (count(*) - count(amount))::int AS unconverted
          FROM won
         GROUP BY entity, entity_id
         ORDER BY entity, entity_id`);
      return rowsOf<{ entity: PersonEntity; entity_id: number; last_won_ms: number; won_deals: number; won_amount: string; unconverted: number }>(result).map(
        (r): ClientRfmFacts => ({
          client: { entity: r.entity, id: Number(r.entity_id) },
          lastWonAt: new Date(Number(r.last_won_ms)),
          wonDeals: Number(r.won_deals),
          wonAmount: Number(r.won_amount),
          unconvertedDeals: Number(r.unconverted),
        }),
      );
    },

    async saveComputed(portalId, rows, now) {
      // One transaction, so the distribution never shows a half-replaced run.
      await db.transaction(async (tx) => {
        // Everyone is "no longer a client" until this run says otherwise.
        await tx.execute(sql`UPDATE crm_segments SET segment = NULL WHERE portal_id = ${portalId} AND segment IS NOT NULL`);
        for (const part of chunks(rows)) {
          const json = JSON.stringify(part.map((r) => ({ entity: r.client.entity, entity_id: r.client.id, segment: r.segment })));
          await tx.execute(sql`
            INSERT INTO crm_segments (portal_id, entity, entity_id, segment, computed_at)
            SELECT ${portalId}, v.entity, v.entity_id, v.segment, ${tsParam(now)}
              FROM jsonb_to_recordset(${json}::jsonb) AS v(entity text, entity_id int, segment text)
            ON CONFLICT (portal_id, entity, entity_id) DO UPDATE SET segment = excluded.segment, computed_at = excluded.computed_at`);
        }
        await tx.execute(sql`UPDATE crm_segments SET computed_at = ${tsParam(now)} WHERE portal_id = ${portalId} AND segment IS NULL`);
        // Nothing was ever written for them: nothing to clear, nothing to remember.
        await tx.execute(sql`DELETE FROM crm_segments WHERE portal_id = ${portalId} AND segment IS NULL AND written_segment IS NULL`);
      });
    },

    async pendingWrites(portalId) {
      const result = await db.execute(sql`
        SELECT entity, entity_id, segment, written_segment
          FROM crm_segments
         WHERE portal_id = ${portalId} AND segment IS DISTINCT FROM written_segment
         ORDER BY entity, entity_id`);
      return rowsOf<{ entity: PersonEntity; entity_id: number; segment: string | null; written_segment: string | null }>(result).map(
        (r): SegmentRow => ({
          client: { entity: r.entity, id: Number(r.entity_id) },
          segment: isSegment(r.segment) ? r.segment : null,
          written: isSegment(r.written_segment) ? r.written_segment : null,
        }),
      );
    },

    async markWritten(portalId, rows, now) {
      for (const part of chunks(rows)) {
        const json = JSON.stringify(part.map((r) => ({ entity: r.client.entity, entity_id: r.client.id, segment: r.segment })));
        await db.execute(sql`
          UPDATE crm_segments s SET written_segment = v.segment, written_at = ${tsParam(now)}
            FROM jsonb_to_recordset(${json}::jsonb) AS v(entity text, entity_id int, segment text)
           WHERE s.portal_id = ${portalId} AND s.entity = v.entity AND s.entity_id = v.entity_id`);
      }
      // A cleared field with no segment left: the person is forgotten.
      if (rows.some((r) => r.segment === null)) {
        await db.execute(sql`DELETE FROM crm_segments WHERE portal_id = ${portalId} AND segment IS NULL AND written_segment IS NULL`);
      }
    },

    async distribution(portalId) {
      const result = await db.execute(sql`
        SELECT segment, count(*)::int AS members FROM crm_segments
         WHERE portal_id = ${portalId} AND segment IS NOT NULL GROUP BY segment`);
      const counted = new Map(rowsOf<{ segment: string; members: number }>(result).map((r) => [r.segment, Number(r.members)]));
      const [last] = rowsOf<{ ms: number | null }>(
        await db.execute(sql`SELECT (extract(epoch FROM max(computed_at)) * 1000)::float8 AS ms FROM crm_segments WHERE portal_id = ${portalId}`),
      );
      return {
        counts: RFM_SEGMENTS.map((segment) => ({ segment, members: counted.get(segment) ?? 0 })),
        computedAt: last?.ms === null || last?.ms === undefined ? null : new Date(Number(last.ms)),
      };
    },
  };
}
