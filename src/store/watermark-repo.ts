/** Per-portal watermarks of the scheduled work (SPEC 6); a mark only moves forward. */
import { and, eq, inArray, like, sql } from 'drizzle-orm';
import type { WatermarkRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { installations, watermarks } from './schema.js';

export function createWatermarkRepo(db: Db): WatermarkRepo {
  return {
    async get(portalId, names) {
      if (!names.length) return new Map();
      const rows = await db
        .select()
        .from(watermarks)
        .where(and(eq(watermarks.portalId, portalId), inArray(watermarks.name, names)));
      return new Map(rows.map((r) => [r.name, { name: r.name, mark: r.mark, updatedAt: r.updatedAt }]));
    },

    async save(portalId, name, mark, now) {
      await db
        .insert(watermarks)
        .values({ portalId, name, mark, updatedAt: now })
        .onConflictDoUpdate({
          target: [watermarks.portalId, watermarks.name],
          set: { mark: sql`greatest(${watermarks.mark}, excluded.mark)`, updatedAt: now },
        });
    },

    async reconcileLag(now) {
      // A portal is as late as its least recently reconciled entity; one never reconciled, since its install.
      const rows = await db
        .select({
          portalId: installations.id,
          since: sql<Date | string>`coalesce(min(${watermarks.updatedAt}), ${installations.installedAt}, ${installations.createdAt})`,
        })
        .from(installations)
        .leftJoin(watermarks, and(eq(watermarks.portalId, installations.id), like(watermarks.name, 'reconcile.%')))
        .where(eq(installations.status, 'active'))
        .groupBy(installations.id);
      return new Map(rows.map((r) => [r.portalId, Math.max(0, (now.getTime() - new Date(r.since).getTime()) / 1000)]));
    },
  };
}
