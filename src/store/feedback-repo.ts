/**
 * Feedback messages (feedback_messages). A message
 * is recorded once per (portal, key) — ON CONFLICT DO NOTHING — so duplicated events and retried
 * runs cannot queue it twice; the `crm.feedback` job sends the queued ones and marks them sent.
 */
import { and, asc, eq, inArray, like, sql } from 'drizzle-orm';
import type { FeedbackMessage, FeedbackRepo, FeedbackRecipient } from '../handlers/ports.js';
import type { Db } from './db.js';
import { feedbackMessages } from './schema.js';

type Row = typeof feedbackMessages.$inferSelect;

const toMessage = (row: Row): FeedbackMessage => ({
  id: row.id,
  portalId: row.portalId,
  key: row.key,
  to: (row.target === 'notify' ? { userId: row.userId! } : { entity: row.entity!, id: row.entityId! }) satisfies FeedbackRecipient,
  text: row.text,
  status: row.status,
  attempts: row.attempts,
  lastError: row.lastError,
  createdAt: row.createdAt,
  sentAt: row.sentAt,
});

export function createFeedbackRepo(db: Db): FeedbackRepo {
  return {
    async record(portalId, messages, now) {
      const unique = [...new Map(messages.map((m) => [m.key, m])).values()];
      if (!unique.length) return 0;
      const inserted = await db
        .insert(feedbackMessages)
        .values(
          unique.map((m) => ({
            portalId,
            key: m.key,
            target: 'userId' in m.to ? ('notify' as const) : ('timeline' as const),
            entity: 'userId' in m.to ? null : m.to.entity,
            entityId: 'userId' in m.to ? null : m.to.id,
            userId: 'userId' in m.to ? m.to.userId : null,
            text: m.text,
            createdAt: now,
          })),
        )
        .onConflictDoNothing()
        .returning({ id: feedbackMessages.id });
      return inserted.length;
    },

    async queued(portalId, limit) {
      const rows = await db
        .select()
        .from(feedbackMessages)
        .where(and(eq(feedbackMessages.portalId, portalId), eq(feedbackMessages.status, 'queued')))
        .orderBy(asc(feedbackMessages.id))
        .limit(limit);
      return rows.map(toMessage);
    },

    async markSent(portalId, ids, now) {
      if (!ids.length) return;
      await db
        .update(feedbackMessages)
        .set({ status: 'sent', sentAt: now, attempts: sql`${feedbackMessages.attempts} + 1`, lastError: null })
        .where(and(eq(feedbackMessages.portalId, portalId), inArray(feedbackMessages.id, ids), eq(feedbackMessages.status, 'queued')));
    },

    async markFailed(portalId, failures) {
      for (const f of failures) {
        await db
          .update(feedbackMessages)
          .set({ status: f.dead ? 'dead' : 'queued', attempts: sql`${feedbackMessages.attempts} + 1`, lastError: f.error.slice(0, 2000) })
          .where(and(eq(feedbackMessages.portalId, portalId), eq(feedbackMessages.id, f.id), eq(feedbackMessages.status, 'queued')));
      }
    },

    async byKeyPrefix(portalId, prefix) {
      const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const rows = await db
        .select()
        .from(feedbackMessages)
        .where(and(eq(feedbackMessages.portalId, portalId), like(feedbackMessages.key, pattern)))
        .orderBy(asc(feedbackMessages.id));
      return rows.map(toMessage);
    },

  };
}
