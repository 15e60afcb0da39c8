/** What Sarafan last wrote to each CRM entity, merged key by key (jsonb `||`). */
import { and, eq, or, sql } from 'drizzle-orm';
import { projectionKey, type CrmEntity, type ProjectionRepo, type ProjectionValues } from '../handlers/ports.js';
import { anyId, type Db } from './db.js';
import { crmProjections } from './schema.js';

export function createProjectionRepo(db: Db): ProjectionRepo {
  return {
    async getMany(portalId, keys) {
      const result = new Map<string, ProjectionValues>();
      if (keys.length === 0) return result;
      const idsByEntity = new Map<CrmEntity, number[]>();
      for (const { entity, entityId } of keys) {
        const ids = idsByEntity.get(entity);
        if (ids) ids.push(entityId);
        else idsByEntity.set(entity, [entityId]);
      }
      const rows = await db
        .select({ entity: crmProjections.entity, entityId: crmProjections.entityId, values: crmProjections.values })
        .from(crmProjections)
        .where(
          and(
            eq(crmProjections.portalId, portalId),
            or(...[...idsByEntity].map(([entity, ids]) => and(eq(crmProjections.entity, entity), anyId(crmProjections.entityId, ids)))),
          ),
        );
      for (const row of rows) result.set(projectionKey(row.entity, row.entityId), row.values);
      return result;
    },

    async saveMany(portalId, rows, now) {
      if (!rows.length) return;
      // One row per entity: later values for the same entity are merged into earlier ones.
      const merged = new Map<string, { entity: CrmEntity; entityId: number; values: ProjectionValues }>();
      for (const r of rows) {
        const key = projectionKey(r.entity, r.entityId);
        const seen = merged.get(key);
        merged.set(key, seen ? { ...seen, values: { ...seen.values, ...r.values } } : r);
      }
      await db
        .insert(crmProjections)
        .values([...merged.values()].map((r) => ({ portalId, entity: r.entity, entityId: r.entityId, values: r.values, updatedAt: now })))
        .onConflictDoUpdate({
          target: [crmProjections.portalId, crmProjections.entity, crmProjections.entityId],
          set: { values: sql`${crmProjections.values} || excluded.values`, updatedAt: now },
        });
    },

    async save(portalId, entity, entityId, values, now) {
      await db
        .insert(crmProjections)
        .values({ portalId, entity, entityId, values, updatedAt: now })
        .onConflictDoUpdate({
          target: [crmProjections.portalId, crmProjections.entity, crmProjections.entityId],
          set: { values: sql`${crmProjections.values} || excluded.values`, updatedAt: now },
        });
    },
  };
}
