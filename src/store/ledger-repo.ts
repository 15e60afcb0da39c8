/**
 * The ledger: append-only (no UPDATE anywhere; a trigger refuses it too). Idempotency is the
 * unique (portal_id, idempotency_key) index: an append that loses the race to an equal key —
 * even one in a concurrent, uncommitted transaction — waits for it and then skips.
 */
import { and, asc, desc, eq, gt, gte, isNotNull, lt, lte, or, sql, type SQL } from 'drizzle-orm';
import type { Balance, LedgerEntry, LedgerRepo, NewLedgerEntry } from '../handlers/ports.js';
import { anyId, rowsOf, type Db } from './db.js';
import { ledgerEntries, members } from './schema.js';

type Row = typeof ledgerEntries.$inferSelect;

const toEntry = (row: Row): LedgerEntry => ({
  id: row.id,
  portalId: row.portalId,
  memberId: row.memberId,
  amount: row.amount,
  reason: row.reason,
  kind: row.kind,
  dealId: row.dealId,
  level: row.level,
  programVersion: row.programVersion,
  idempotencyKey: row.idempotencyKey,
  availableAt: row.availableAt,
  expiresAt: row.expiresAt,
  causedBy: row.causedBy,
  comment: row.comment,
  createdAt: row.createdAt,
  fx: row.fxCurrency !== null && row.fxRate !== null && row.fxAmount !== null ? { currency: row.fxCurrency, rate: row.fxRate, amount: row.fxAmount } : null,
  shortfall: row.shortfall,
  capped: row.capped,
});

const slot = (portalId: number, key: string) => `${portalId}\u0000${key}`;

export function createLedgerRepo(db: Db): LedgerRepo {
  /** A portal's entries matching `where`, oldest (lowest id) first. */
  const oldestFirst = async (portalId: number, where: SQL): Promise<LedgerEntry[]> =>
    (await db.select().from(ledgerEntries).where(and(eq(ledgerEntries.portalId, portalId), where)).orderBy(asc(ledgerEntries.id))).map(toEntry);

  return {
    async append(entries: NewLedgerEntry[]) {
      if (entries.length === 0) return { inserted: [], duplicates: [] };
      for (const e of entries) {
        if (!Number.isSafeInteger(e.amount)) throw new RangeError(`ledger amount must be an integer in minor units (key ${e.idempotencyKey})`);
      }
      const rows = await db
        .insert(ledgerEntries)
        .values(
          entries.map((e) => ({
            portalId: e.portalId,
            memberId: e.memberId,
            amount: e.amount,
            reason: e.reason,
            kind: e.kind,
            dealId: e.dealId,
            level: e.level,
            programVersion: e.programVersion,
            idempotencyKey: e.idempotencyKey,
            availableAt: e.availableAt,
            expiresAt: e.expiresAt,
            causedBy: e.causedBy,
            comment: e.comment,
            createdAt: e.createdAt,
            fxCurrency: e.fx?.currency ?? null,
            fxRate: e.fx?.rate ?? null,
            fxAmount: e.fx?.amount ?? null,
            shortfall: e.shortfall ?? 0,
            capped: e.capped ?? 0,
          })),
        )
        .onConflictDoNothing({ target: [ledgerEntries.portalId, ledgerEntries.idempotencyKey] })
        .returning();
      // Report in input order; a key repeated within the batch counts as a duplicate after its first use.
      const byKey = new Map(rows.map((row) => [slot(row.portalId, row.idempotencyKey), row]));
      const inserted: LedgerEntry[] = [];
      const duplicates: string[] = [];
      for (const e of entries) {
        const k = slot(e.portalId, e.idempotencyKey);
        const row = byKey.get(k);
        if (row) {
          inserted.push(toEntry(row));
          byKey.delete(k);
        } else {
          duplicates.push(e.idempotencyKey);
        }
      }
      return { inserted, duplicates };
    },

    async forDeal(portalId, dealId) {
      return oldestFirst(portalId, eq(ledgerEntries.dealId, dealId));
    },

    async forDeals(portalId, dealIds) {
      if (dealIds.length === 0) return [];
      return oldestFirst(portalId, anyId(ledgerEntries.dealId, dealIds));
    },

    async maturing(portalId, after, upTo) {
      const rows = await db
        .selectDistinct({ memberId: ledgerEntries.memberId })
        .from(ledgerEntries)
        .where(
          and(
            eq(ledgerEntries.portalId, portalId),
            gt(ledgerEntries.availableAt, after),
            lte(ledgerEntries.availableAt, upTo),
            // An entry available when it was written was projected then.
            gt(ledgerEntries.availableAt, ledgerEntries.createdAt),
          ),
        )
        .orderBy(asc(ledgerEntries.memberId));
      return rows.map((r) => r.memberId);
    },

    async balances(portalId, memberIds, now) {
      const result = new Map<number, Balance>(memberIds.map((id) => [id, { available: 0, pending: 0 }]));
      if (memberIds.length === 0) return result;
      const sumWhere = (cond: SQL | undefined) => sql<number>`coalesce(sum(${ledgerEntries.amount}) FILTER (WHERE ${cond}), 0)`.mapWith(Number);
      const rows = await db
        .select({
          memberId: ledgerEntries.memberId,
          available: sumWhere(lte(ledgerEntries.availableAt, now)),
          pending: sumWhere(gt(ledgerEntries.availableAt, now)),
        })
        .from(ledgerEntries)
        .where(and(eq(ledgerEntries.portalId, portalId), anyId(ledgerEntries.memberId, memberIds)))
        .groupBy(ledgerEntries.memberId);
      for (const row of rows) result.set(row.memberId, { available: row.available, pending: row.pending });
      return result;
    },

    async referralNetInMonths(portalId, months, excludeDealIds) {
      const result = new Map<string, number>();
      if (!months.length) return result;
      const key = (memberId: number, from: Date) => `${memberId}:${from.toISOString()}`;
      for (const m of months) result.set(key(m.memberId, m.from), 0);
      // The month of a referral credit is the month its deal was first won, so a reversal booked
      // next month still gives room back to the month the credit used.
      const wanted = sql.join(
        months.map((m) => sql`(${m.memberId}::bigint, ${m.from.toISOString()}::timestamptz, ${m.to.toISOString()}::timestamptz)`),
        sql`, `,
      );
      const excluded = excludeDealIds.length ? sql`AND l.deal_id <> ALL(${`{${excludeDealIds.join(',')}}`}::int[])` : sql``;
      const netRows = await db.execute(sql`
        SELECT w.member_id, w.month_from, coalesce(sum(l.amount), 0) AS net
        FROM (VALUES ${wanted}) AS w(member_id, month_from, month_to)
        JOIN ${ledgerEntries} l ON l.portal_id = ${portalId} AND l.member_id = w.member_id AND l.reason = 'referral'
        JOIN deals d ON d.portal_id = l.portal_id AND d.deal_id = l.deal_id
          AND d.first_won_at >= w.month_from AND d.first_won_at < w.month_to
        WHERE true ${excluded}
        GROUP BY w.member_id, w.month_from`);
      for (const row of rowsOf<{ member_id: string | number; month_from: Date | string; net: string | number }>(netRows)) result.set(key(Number(row.member_id), new Date(row.month_from)), Number(row.net));
      return result;
    },

    async cappedDeals(portalId, months) {
      if (!months.length) return [];
      const wanted = sql.join(
        months.map((m) => sql`(${m.memberId}::bigint, ${m.from.toISOString()}::timestamptz, ${m.to.toISOString()}::timestamptz)`),
        sql`, `,
      );
      const found = await db.execute(sql`
        SELECT DISTINCT deal_id FROM (
          SELECT DISTINCT ON (l.member_id, l.deal_id, l.level) l.deal_id, l.capped
          FROM (VALUES ${wanted}) AS w(member_id, month_from, month_to)
          JOIN ${ledgerEntries} l ON l.portal_id = ${portalId} AND l.member_id = w.member_id AND l.reason = 'referral'
          JOIN deals d ON d.portal_id = l.portal_id AND d.deal_id = l.deal_id
            AND d.first_won_at >= w.month_from AND d.first_won_at < w.month_to
          ORDER BY l.member_id, l.deal_id, l.level, l.id DESC
        ) AS latest
        WHERE capped > 0
        ORDER BY deal_id`);
      return rowsOf<{ deal_id: number | string }>(found).map((r) => Number(r.deal_id));
    },

    async couponEntries(portalId, memberIds) {
      if (!memberIds.length) return [];
      return oldestFirst(portalId, and(anyId(ledgerEntries.memberId, memberIds), eq(ledgerEntries.reason, 'coupon'))!);
    },

    async forMembers(portalId, memberIds) {
      if (memberIds.length === 0) return [];
      return oldestFirst(portalId, anyId(ledgerEntries.memberId, memberIds));
    },

    async expiring(portalId, after, upTo) {
      const rows = await db
        .selectDistinct({ memberId: ledgerEntries.memberId })
        .from(ledgerEntries)
        .where(
          and(
            eq(ledgerEntries.portalId, portalId),
            or(
              and(gt(ledgerEntries.expiresAt, after), lte(ledgerEntries.expiresAt, upTo)),
              // A deal's reversal may meet a credit that already expired: its expiry is given back.
              and(gt(ledgerEntries.availableAt, after), lte(ledgerEntries.availableAt, upTo), lt(ledgerEntries.amount, 0), isNotNull(ledgerEntries.dealId)),
            ),
          ),
        )
        .orderBy(asc(ledgerEntries.memberId));
      return rows.map((r) => r.memberId);
    },

    async forMember(portalId, memberId, opts) {
      const rows = await db
        .select()
        .from(ledgerEntries)
        .where(
          and(
            eq(ledgerEntries.portalId, portalId),
            eq(ledgerEntries.memberId, memberId),
            opts.beforeId === undefined ? undefined : lt(ledgerEntries.id, opts.beforeId),
          ),
        )
        .orderBy(desc(ledgerEntries.id))
        .limit(opts.limit);
      return rows.map(toEntry);
    },

    async page(portalId, q) {
      const rows = await db
        .select()
        .from(ledgerEntries)
        .where(
          and(
            eq(ledgerEntries.portalId, portalId),
            q.afterId === undefined ? undefined : gt(ledgerEntries.id, q.afterId),
            q.from === undefined ? undefined : gte(ledgerEntries.createdAt, q.from),
            q.to === undefined ? undefined : lt(ledgerEntries.createdAt, q.to),
          ),
        )
        .orderBy(asc(ledgerEntries.id))
        .limit(q.limit);
      return rows.map(toEntry);
    },

    async search(portalId, q) {
      // The person is resolved inside the page's query (members_contact_uq / members_lead_uq):
      // one round trip, and a person who is not a member matches nothing.
      const personColumn = q.person?.entity === 'contact' ? members.contactId : members.leadId;
      const person = q.person
        ? sql`${ledgerEntries.memberId} = (SELECT ${members.id} FROM ${members} WHERE ${members.portalId} = ${portalId} AND ${personColumn} = ${q.person.id})`
        : undefined;
      const rows = await db
        .select()
        .from(ledgerEntries)
        .where(
          and(
            eq(ledgerEntries.portalId, portalId),
            person,
            q.dealId === undefined ? undefined : eq(ledgerEntries.dealId, q.dealId),
            q.reason === undefined ? undefined : eq(ledgerEntries.reason, q.reason),
            q.kind === undefined ? undefined : eq(ledgerEntries.kind, q.kind),
            q.from === undefined ? undefined : gte(ledgerEntries.createdAt, q.from),
            q.to === undefined ? undefined : lt(ledgerEntries.createdAt, q.to),
            // Keyset on (created_at, id), the order of the page and of migration 0013's indexes; a
            // cursor that is not one of this portal's entries matches nothing.
            q.beforeId === undefined
              ? undefined
              : sql`(${ledgerEntries.createdAt}, ${ledgerEntries.id}) < (SELECT c.created_at, c.id FROM ${ledgerEntries} c WHERE c.portal_id = ${portalId} AND c.id = ${q.beforeId})`,
          ),
        )
        .orderBy(desc(ledgerEntries.createdAt), desc(ledgerEntries.id))
        .limit(q.limit);
      return rows.map(toEntry);
    },

    async referralTotals(portalId, q) {
      const sumWhere = (cond: SQL) => sql<number>`coalesce(sum(${ledgerEntries.amount}) FILTER (WHERE ${cond}), 0)`.mapWith(Number);
      const rows = await db
        .select({
          memberId: ledgerEntries.memberId,
          credited: sumWhere(gt(ledgerEntries.amount, 0)),
          negative: sumWhere(lt(ledgerEntries.amount, 0)),
          pending: sumWhere(gt(ledgerEntries.availableAt, q.pendingAt)),
        })
        .from(ledgerEntries)
        .where(
          and(
            eq(ledgerEntries.portalId, portalId),
            eq(ledgerEntries.reason, 'referral'),
            q.from === undefined ? undefined : gte(ledgerEntries.createdAt, q.from),
            q.to === undefined ? undefined : lt(ledgerEntries.createdAt, q.to),
          ),
        )
        .groupBy(ledgerEntries.memberId)
        .orderBy(asc(ledgerEntries.memberId));
      return rows.map((r) => ({ memberId: r.memberId, credited: r.credited, reversed: 0 - r.negative, pending: r.pending }));
    },

    async byKey(portalId, idempotencyKey) {
      const [row] = await db
        .select()
        .from(ledgerEntries)
        .where(and(eq(ledgerEntries.portalId, portalId), eq(ledgerEntries.idempotencyKey, idempotencyKey)))
        .limit(1);
      return row ? toEntry(row) : null;
    },
  };
}
