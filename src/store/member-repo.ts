/**
 * Members and their referral codes. Codes live in referral_codes forever (SPEC 5: never reused),
 * so a code lookup also finds a member by a code it no longer shows.
 */
import { and, eq, inArray, isNotNull, isNull, or, sql } from 'drizzle-orm';
import { AppError } from '../handlers/errors.js';
import type { Member, MemberRepo, PersonEntity, PersonRef } from '../handlers/ports.js';
import { UNIQUE_VIOLATION, anyId, pgErrorCode, rowsOf, tsParam, type Db } from './db.js';
import { members, referralCodes } from './schema.js';

type Row = typeof members.$inferSelect;

const toMember = (row: Row): Member => ({
  id: row.id,
  portalId: row.portalId,
  contactId: row.contactId,
  leadId: row.leadId,
  code: row.code,
  joinedAt: row.joinedAt,
  createdAt: row.createdAt,
});

const entityColumn = (entity: PersonEntity) => (entity === 'contact' ? members.contactId : members.leadId);

export function createMemberRepo(db: Db): MemberRepo {
  async function findByEntity(portalId: number, entity: PersonEntity, entityId: number): Promise<Member | null> {
    const [row] = await db
      .select()
      .from(members)
      .where(and(eq(members.portalId, portalId), eq(entityColumn(entity), entityId)))
      .limit(1);
    return row ? toMember(row) : null;
  }

  async function findByEntities(portalId: number, refs: PersonRef[]): Promise<Member[]> {
    const contactIds = [...new Set(refs.filter((r) => r.entity === 'contact').map((r) => r.id))];
    const leadIds = [...new Set(refs.filter((r) => r.entity === 'lead').map((r) => r.id))];
    if (!contactIds.length && !leadIds.length) return [];
    const rows = await db
      .select()
      .from(members)
      .where(
        and(
          eq(members.portalId, portalId),
          or(contactIds.length ? anyId(members.contactId, contactIds) : undefined, leadIds.length ? anyId(members.leadId, leadIds) : undefined),
        ),
      )
      .orderBy(members.id);
    return rows.map(toMember);
  }

  return {
    async get(portalId, memberId) {
      const [row] = await db
        .select()
        .from(members)
        .where(and(eq(members.portalId, portalId), eq(members.id, memberId)))
        .limit(1);
      return row ? toMember(row) : null;
    },

    async getMany(portalId, memberIds) {
      if (memberIds.length === 0) return [];
      const rows = await db
        .select()
        .from(members)
        .where(and(eq(members.portalId, portalId), anyId(members.id, memberIds)))
        .orderBy(members.id);
      return rows.map(toMember);
    },

    findByEntity,

    findByEntities,

    async findByCodes(portalId, codes) {
      const wanted = [...new Set(codes.map((c) => c.trim().toUpperCase()).filter(Boolean))];
      const result = new Map<string, Member>();
      if (!wanted.length) return result;
      const rows = await db
        .select({ code: referralCodes.code, member: members })
        .from(referralCodes)
        .innerJoin(members, and(eq(members.portalId, referralCodes.portalId), eq(members.id, referralCodes.memberId)))
        .where(and(eq(referralCodes.portalId, portalId), inArray(referralCodes.code, wanted)));
      for (const row of rows) result.set(row.code, toMember(row.member));
      return result;
    },

    async ensureMany(portalId, refs, now) {
      if (!refs.length) return [];
      const unique = [...new Map(refs.map((r) => [`${r.entity}:${r.id}`, r])).values()];
      const have = await findByEntities(portalId, unique);
      const known = new Set(have.flatMap((m) => [m.contactId === null ? '' : `contact:${m.contactId}`, m.leadId === null ? '' : `lead:${m.leadId}`]));
      const missing = unique.filter((r) => !known.has(`${r.entity}:${r.id}`));
      for (const entity of ['contact', 'lead'] as const) {
        const ids = missing.filter((r) => r.entity === entity).map((r) => r.id);
        if (!ids.length) continue;
        const column = entityColumn(entity);
        // A concurrent insert of the same person makes ours a no-op; the select below sees the winner.
        await db
          .insert(members)
          .values(ids.map((id) => ({ portalId, ...(entity === 'contact' ? { contactId: id } : { leadId: id }), createdAt: now })))
          .onConflictDoNothing({ target: [members.portalId, column], where: isNotNull(column) });
      }
      return missing.length ? findByEntities(portalId, unique) : have;
    },

    async enrollMany(portalId, proposals, now) {
      const enrolled: Member[] = [];
      const taken: number[] = [];
      if (!proposals.length) return { enrolled, taken };
      const byMember = new Map(proposals.map((p) => [p.memberId, p.code.trim().toUpperCase()]));
      // Row locks: a concurrent enrolment of the same member waits, so nobody gets two codes.
      const current = await db
        .select()
        .from(members)
        .where(and(eq(members.portalId, portalId), anyId(members.id, [...byMember.keys()])))
        .orderBy(members.id)
        .for('update');
      const open = current.filter((m) => m.code === null);
      for (const m of current) if (m.code !== null) enrolled.push(toMember(m));
      if (!open.length) return { enrolled, taken };
      const reserved = await db
        .insert(referralCodes)
        .values(open.map((m) => ({ portalId, code: byMember.get(m.id)!, memberId: m.id, createdAt: now })))
        .onConflictDoNothing({ target: [referralCodes.portalId, referralCodes.code] })
        .returning({ code: referralCodes.code, memberId: referralCodes.memberId });
      const got = new Map(reserved.map((r) => [r.memberId, r.code]));
      for (const m of open) if (!got.has(m.id)) taken.push(m.id);
      if (!got.size) return { enrolled, taken };
      const values = sql.join([...got].map(([id, code]) => sql`(${id}::bigint, ${code}::text)`), sql`, `);
      const updated = await db.execute(sql`
        UPDATE members SET code = v.code, joined_at = coalesce(members.joined_at, ${tsParam(now)})
        FROM (VALUES ${values}) AS v(id, code)
        WHERE members.portal_id = ${portalId} AND members.id = v.id AND members.code IS NULL
        RETURNING members.id`);
      const ids = rowsOf<{ id: string }>(updated).map((r) => Number(r.id));
      if (ids.length !== got.size) throw new AppError('internal', 'members changed during enrolment');
      const rows = await db.select().from(members).where(and(eq(members.portalId, portalId), anyId(members.id, ids)));
      enrolled.push(...rows.map(toMember));
      return { enrolled, taken };
    },

    async findByCode(portalId, code) {
      const [row] = await db
        .select({ member: members })
        .from(referralCodes)
        .innerJoin(members, and(eq(members.portalId, referralCodes.portalId), eq(members.id, referralCodes.memberId)))
        .where(and(eq(referralCodes.portalId, portalId), eq(referralCodes.code, code.trim().toUpperCase())))
        .limit(1);
      return row ? toMember(row.member) : null;
    },

    async ensure(portalId, entity, entityId, now) {
      const column = entityColumn(entity);
      // Race-safe get-or-create: a concurrent insert of the same entity makes ours a no-op (it
      // waits for that transaction), and the select below then sees the winner's row.
      const [inserted] = await db
        .insert(members)
        .values({ portalId, ...(entity === 'contact' ? { contactId: entityId } : { leadId: entityId }), createdAt: now })
        .onConflictDoNothing({ target: [members.portalId, column], where: isNotNull(column) })
        .returning();
      if (inserted) return toMember(inserted);
      const existing = await findByEntity(portalId, entity, entityId);
      if (!existing) throw new AppError('internal', `member for ${entity} ${entityId} neither inserted nor found`);
      return existing;
    },

    async attachContact(portalId, memberId, contactId) {
      try {
        // Only a member without a contact, and only while no other member has that contact;
        // the unique (portal_id, contact_id) index settles a race with a concurrent ensure.
        await db
          .update(members)
          .set({ contactId })
          .where(
            and(
              eq(members.portalId, portalId),
              eq(members.id, memberId),
              isNull(members.contactId),
              sql`NOT EXISTS (SELECT 1 FROM members o WHERE o.portal_id = ${portalId} AND o.contact_id = ${contactId})`,
            ),
          );
      } catch (error) {
        if (pgErrorCode(error) !== UNIQUE_VIOLATION) throw error;
      }
      return findByEntity(portalId, 'contact', contactId);
    },

    async enroll(portalId, memberId, code, now) {
      const normalized = code.trim().toUpperCase();
      return db.transaction(async (tx) => {
        // Row lock: two enrolments of one member serialize, so it never gets two codes.
        const [member] = await tx
          .select()
          .from(members)
          .where(and(eq(members.portalId, portalId), eq(members.id, memberId)))
          .for('update');
        if (!member) throw new AppError('not_found', `member ${memberId} not found`);
        if (member.code !== null) return toMember(member);
        const taken = await tx
          .insert(referralCodes)
          .values({ portalId, code: normalized, memberId, createdAt: now })
          .onConflictDoNothing({ target: [referralCodes.portalId, referralCodes.code] })
          .returning({ code: referralCodes.code });
        if (taken.length === 0) return 'code_taken' as const;
        const [updated] = await tx
          .update(members)
          .set({ code: normalized, joinedAt: sql`coalesce(${members.joinedAt}, ${tsParam(now)})` })
          .where(and(eq(members.portalId, portalId), eq(members.id, memberId), isNull(members.code)))
          .returning();
        if (!updated) throw new AppError('internal', `member ${memberId} changed during enrolment`);
        return toMember(updated);
      });
    },
  };
}
