/**
 * Members and their referral codes. Codes live in referral_codes forever (SPEC 5: never reused),
 * so a code lookup also finds a member by a code it no longer shows.
 */
import { and, eq, inArray, isNotNull, isNull, sql } from 'drizzle-orm';
import { AppError } from '../handlers/errors.js';
import type { Member, MemberRepo, PersonEntity } from '../handlers/ports.js';
import { UNIQUE_VIOLATION, pgErrorCode, tsParam, type Db } from './db.js';
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
        .where(and(eq(members.portalId, portalId), inArray(members.id, memberIds)))
        .orderBy(members.id);
      return rows.map(toMember);
    },

    findByEntity,

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
