/**
 * Referrals. Two partial unique indexes carry the rules: one active referral per referee (first
 * attribution wins) and one rejection per (referee, referrer, reason); `record` inserts with
 * ON CONFLICT DO NOTHING and returns the row that already holds the place.
 */
import { and, asc, count, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import { AppError } from '../handlers/errors.js';
import type { NewReferral, Referral, ReferralRepo } from '../handlers/ports.js';
import { anyId, idArray, rowsOf, type Db } from './db.js';
import { referrals } from './schema.js';

type Row = typeof referrals.$inferSelect;

const toReferral = (row: Row): Referral => ({
  id: row.id,
  portalId: row.portalId,
  refereeMemberId: row.refereeMemberId,
  referrerMemberId: row.referrerMemberId,
  code: row.code,
  source: row.source,
  sourceRef: row.sourceRef,
  status: row.status,
  rejectReason: row.rejectReason,
  createdAt: row.createdAt,
  override:
    row.overriddenAt !== null && row.overriddenBy !== null ? { by: row.overriddenBy, at: row.overriddenAt, comment: row.overrideComment ?? '' } : null,
});

/** The unique violation of `referrals_active_referee_uq`: the referee got an active referral meanwhile. */
function isActiveRefereeConflict(e: unknown): boolean {
  for (let at: unknown = e; at && typeof at === 'object'; at = (at as { cause?: unknown }).cause) {
    const { code, constraint, message } = at as { code?: string; constraint?: string; message?: string };
    if (code === '23505' && (constraint === 'referrals_active_referee_uq' || /referrals_active_referee_uq/.test(message ?? ''))) return true;
  }
  return false;
}

export function createReferralRepo(db: Db): ReferralRepo {
  async function activeFor(portalId: number, refereeMemberId: number): Promise<Referral | null> {
    const [row] = await db
      .select()
      .from(referrals)
      .where(and(eq(referrals.portalId, portalId), eq(referrals.refereeMemberId, refereeMemberId), eq(referrals.status, 'active')))
      .limit(1);
    return row ? toReferral(row) : null;
  }

  async function sameRejection(input: NewReferral): Promise<Referral | null> {
    const [row] = await db
      .select()
      .from(referrals)
      .where(
        and(
          eq(referrals.portalId, input.portalId),
          eq(referrals.refereeMemberId, input.refereeMemberId),
          sql`coalesce(${referrals.referrerMemberId}, 0) = ${input.referrerMemberId ?? 0}`,
          eq(referrals.status, 'rejected'),
          input.rejectReason === null ? sql`false` : eq(referrals.rejectReason, input.rejectReason),
        ),
      )
      .limit(1);
    return row ? toReferral(row) : null;
  }

  return {
    async get(portalId, referralId) {
      const [row] = await db
        .select()
        .from(referrals)
        .where(and(eq(referrals.portalId, portalId), eq(referrals.id, referralId)))
        .limit(1);
      return row ? toReferral(row) : null;
    },

    activeFor,

    async record(input) {
      const [inserted] = await db
        .insert(referrals)
        .values({
          portalId: input.portalId,
          refereeMemberId: input.refereeMemberId,
          referrerMemberId: input.referrerMemberId,
          code: input.code,
          source: input.source,
          sourceRef: input.sourceRef,
          status: input.status,
          rejectReason: input.rejectReason,
          createdAt: input.createdAt,
        })
        .onConflictDoNothing()
        .returning();
      if (inserted) return toReferral(inserted);
      const existing = input.status === 'active' ? await activeFor(input.portalId, input.refereeMemberId) : await sameRejection(input);
      if (!existing) throw new AppError('internal', `referral of member ${input.refereeMemberId} neither inserted nor found`);
      return existing;
    },

    async chain(portalId, memberId, depth) {
      if (depth <= 0) return [];
      // Walks active referrals upwards; `path` stops the walk on a cycle (a member already seen,
      // including the starting one), `depth` bounds it.
      const walk = sql`(
        WITH RECURSIVE up(member_id, depth, path) AS (
          SELECT r.referrer_member_id, 1, ARRAY[r.referee_member_id, r.referrer_member_id]
          FROM referrals r
          WHERE r.portal_id = ${portalId} AND r.referee_member_id = ${memberId} AND r.status = 'active'
            AND r.referrer_member_id IS NOT NULL AND r.referrer_member_id <> r.referee_member_id
          UNION ALL
          SELECT r.referrer_member_id, up.depth + 1, up.path || r.referrer_member_id
          FROM up
          JOIN referrals r ON r.portal_id = ${portalId} AND r.referee_member_id = up.member_id AND r.status = 'active'
          WHERE up.depth < ${depth} AND r.referrer_member_id IS NOT NULL AND NOT (r.referrer_member_id = ANY (up.path))
        )
        SELECT member_id, depth FROM up
      ) AS chain`;
      const rows = await db
        .select({ memberId: sql<number>`chain.member_id`.mapWith(Number) })
        .from(walk)
        .orderBy(sql`chain.depth`);
      return rows.map((r) => r.memberId);
    },

    async activeForMany(portalId, refereeMemberIds) {
      const result = new Map<number, Referral>();
      if (!refereeMemberIds.length) return result;
      const rows = await db
        .select()
        .from(referrals)
        .where(and(eq(referrals.portalId, portalId), anyId(referrals.refereeMemberId, [...new Set(refereeMemberIds)]), eq(referrals.status, 'active')));
      for (const row of rows) result.set(row.refereeMemberId, toReferral(row));
      return result;
    },

    async chains(portalId, memberIds, depth) {
      const result = new Map<number, number[]>(memberIds.map((id) => [id, []]));
      if (depth <= 0 || !memberIds.length) return result;
      // chain() for every start at once; `path` stops a walk on a cycle, `depth` bounds it.
      const rows = await db.execute(sql`
        WITH RECURSIVE up(start, member_id, depth, path) AS (
          SELECT r.referee_member_id, r.referrer_member_id, 1, ARRAY[r.referee_member_id, r.referrer_member_id]
          FROM referrals r JOIN unnest(${idArray([...new Set(memberIds)])}) AS s(id) ON r.referee_member_id = s.id
          WHERE r.portal_id = ${portalId} AND r.status = 'active'
            AND r.referrer_member_id IS NOT NULL AND r.referrer_member_id <> r.referee_member_id
          UNION ALL
          SELECT up.start, r.referrer_member_id, up.depth + 1, up.path || r.referrer_member_id
          FROM up
          JOIN referrals r ON r.portal_id = ${portalId} AND r.referee_member_id = up.member_id AND r.status = 'active'
          WHERE up.depth < ${depth} AND r.referrer_member_id IS NOT NULL AND NOT (r.referrer_member_id = ANY (up.path))
        )
        SELECT start, member_id, depth FROM up ORDER BY start, depth`);
      for (const row of rowsOf<{ start: string; member_id: string }>(rows)) result.get(Number(row.start))?.push(Number(row.member_id));
      return result;
    },

    async qualifiedCount(portalId, memberIds) {
      const counts = new Map<number, number>(memberIds.map((id) => [id, 0]));
      if (!memberIds.length) return counts;
      const rows = await db.execute(sql`
        SELECT p.member_id, count(DISTINCT d.client_member_id)::int AS n
        FROM (
          SELECT l.member_id, l.deal_id
          FROM ledger_entries l JOIN unnest(${idArray([...new Set(memberIds)])}) AS m(id) ON l.member_id = m.id
          WHERE l.portal_id = ${portalId} AND l.reason = 'referral' AND l.level = 1 AND l.deal_id IS NOT NULL
          GROUP BY l.member_id, l.deal_id
          -- A clamped reversal's shortfall counts as taken back (migration 0004).
          HAVING sum(l.amount - l.shortfall) > 0
        ) p
        JOIN deals d ON d.portal_id = ${portalId} AND d.deal_id = p.deal_id AND d.client_member_id IS NOT NULL
        GROUP BY p.member_id`);
      for (const row of rowsOf<{ member_id: string; n: number }>(rows)) counts.set(Number(row.member_id), Number(row.n));
      return counts;
    },

    async override(portalId, referralId, o) {
      const [row] = await db
        .select()
        .from(referrals)
        .where(and(eq(referrals.portalId, portalId), eq(referrals.id, referralId)))
        .limit(1);
      if (!row) return null;
      if (row.status !== 'rejected') return 'not_rejected';
      if (row.referrerMemberId === null) return 'no_referrer';
      if (await activeFor(portalId, row.refereeMemberId)) return 'referee_has_referral';
      try {
        const [updated] = await db
          .update(referrals)
          .set({ status: 'active', overriddenBy: o.by, overriddenAt: o.at, overrideComment: o.comment })
          .where(and(eq(referrals.portalId, portalId), eq(referrals.id, referralId), eq(referrals.status, 'rejected')))
          .returning();
        return updated ? toReferral(updated) : 'not_rejected';
      } catch (e) {
        // A concurrent attribution (or override) made another referral of this referee active.
        if (isActiveRefereeConflict(e)) return 'referee_has_referral';
        throw e;
      }
    },

    async list(portalId, q) {
      const rows = await db
        .select()
        .from(referrals)
        .where(and(eq(referrals.portalId, portalId), eq(referrals.status, q.status), q.beforeId === undefined ? undefined : lt(referrals.id, q.beforeId)))
        .orderBy(desc(referrals.id))
        .limit(q.limit);
      return rows.map(toReferral);
    },

    async ofReferees(portalId, refereeMemberIds) {
      if (!refereeMemberIds.length) return [];
      const rows = await db
        .select()
        .from(referrals)
        .where(and(eq(referrals.portalId, portalId), inArray(referrals.refereeMemberId, [...new Set(refereeMemberIds)])))
        .orderBy(desc(referrals.id));
      return rows.map(toReferral);
    },

    async ofReferrers(portalId, referrerMemberIds, limit) {
      if (!referrerMemberIds.length || limit <= 0) return [];
      const rows = await db
        .select()
        .from(referrals)
        .where(and(eq(referrals.portalId, portalId), anyId(referrals.referrerMemberId, [...new Set(referrerMemberIds)])))
        .orderBy(asc(referrals.id))
        .limit(limit);
      return rows.map(toReferral);
    },

    async countByReferrer(portalId, memberIds) {
      const counts = new Map<number, number>(memberIds.map((id) => [id, 0]));
      if (memberIds.length === 0) return counts;
      const rows = await db
        .select({ referrer: referrals.referrerMemberId, n: count() })
        .from(referrals)
        .where(and(eq(referrals.portalId, portalId), eq(referrals.status, 'active'), anyId(referrals.referrerMemberId, memberIds)))
        .groupBy(referrals.referrerMemberId);
      for (const row of rows) if (row.referrer !== null) counts.set(row.referrer, row.n);
      return counts;
    },
  };
}
