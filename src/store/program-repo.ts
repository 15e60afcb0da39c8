/**
 * Program versions: every change is a new row numbered current + 1 (SPEC 5). Numbering is
 * race-safe without locks: the insert computes max + 1 in the same statement, a concurrent
 * writer that took that number makes it a no-op (ON CONFLICT on the primary key), and it is
 * tried again with a fresh snapshot (READ COMMITTED).
 */
import { and, desc, eq, sql } from 'drizzle-orm';
import { AppError } from '../handlers/errors.js';
import type { ProgramRepo, ProgramVersion } from '../handlers/ports.js';
import type { Db } from './db.js';
import { programVersions } from './schema.js';

type Row = typeof programVersions.$inferSelect;

const MAX_ATTEMPTS = 100;

const toVersion = (row: Row): ProgramVersion => ({
  portalId: row.portalId,
  version: row.version,
  document: row.document,
  createdAt: row.createdAt,
  createdBy: row.createdBy,
});

export function createProgramRepo(db: Db): ProgramRepo {
  return {
    async current(portalId) {
      const [row] = await db
        .select()
        .from(programVersions)
        .where(eq(programVersions.portalId, portalId))
        .orderBy(desc(programVersions.version))
        .limit(1);
      return row ? toVersion(row) : null;
    },

    async get(portalId, version) {
      const [row] = await db
        .select()
        .from(programVersions)
        .where(and(eq(programVersions.portalId, portalId), eq(programVersions.version, version)))
        .limit(1);
      return row ? toVersion(row) : null;
    },

    async create(portalId, document, createdBy, now) {
      const next = sql<number>`(SELECT coalesce(max(pv.version), 0) + 1 FROM program_versions pv WHERE pv.portal_id = ${portalId})`;
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const [row] = await db
          .insert(programVersions)
          .values({ portalId, version: next, document, createdAt: now, createdBy })
          .onConflictDoNothing({ target: [programVersions.portalId, programVersions.version] })
          .returning();
        if (row) return toVersion(row);
      }
      throw new AppError('internal', `program version of portal ${portalId}: no free number after ${MAX_ATTEMPTS} attempts`);
    },

    async list(portalId, limit) {
      const rows = await db
        .select()
        .from(programVersions)
        .where(eq(programVersions.portalId, portalId))
        .orderBy(desc(programVersions.version))
        .limit(limit);
      return rows.map(toVersion);
    },
  };
}
