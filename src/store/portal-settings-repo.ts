/** What Sarafan last read of each portal's settings (time zone, currency rates), keyed by portal. */
import { eq } from 'drizzle-orm';
import type { PortalSettingsRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { portalSettings } from './schema.js';

export function createPortalSettingsRepo(db: Db): PortalSettingsRepo {
  return {
    async get(portalId) {
      const [row] = await db.select().from(portalSettings).where(eq(portalSettings.portalId, portalId)).limit(1);
      return row ? { utcOffsetMinutes: row.utcOffsetMinutes, currencies: row.currencies, readAt: row.readAt } : null;
    },

    async save(portalId, settings) {
      const values = { utcOffsetMinutes: settings.utcOffsetMinutes, currencies: settings.currencies, readAt: settings.readAt };
      await db
        .insert(portalSettings)
        .values({ portalId, ...values })
        .onConflictDoUpdate({ target: [portalSettings.portalId], set: values });
    },
  };
}
