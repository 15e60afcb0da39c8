/** Automation robot calls, one per (portal, event token), with the answer sent (issue 10). */
import { and, eq, isNull } from 'drizzle-orm';
import type { RobotCall, RobotCallRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { robotCalls } from './schema.js';

type Row = typeof robotCalls.$inferSelect;

const toCall = (r: Row): RobotCall => ({
  portalId: r.portalId,
  tokenHash: r.tokenHash,
  eventToken: r.eventToken,
  code: r.code,
  documentId: r.documentId,
  properties: r.properties,
  userId: r.userId ?? null,
  answer: r.answer ?? null,
  createdAt: r.createdAt,
  answeredAt: r.answeredAt ?? null,
});

export function createRobotCallRepo(db: Db): RobotCallRepo {
  const get = async (portalId: number, tokenHash: string): Promise<RobotCall | null> => {
    const [row] = await db
      .select()
      .from(robotCalls)
      .where(and(eq(robotCalls.portalId, portalId), eq(robotCalls.tokenHash, tokenHash)));
    return row ? toCall(row) : null;
  };
  return {
    get,
    async record(call, now) {
      const inserted = await db
        .insert(robotCalls)
        .values({ ...call, answer: null, createdAt: now, answeredAt: null })
        .onConflictDoNothing({ target: [robotCalls.portalId, robotCalls.tokenHash] })
        .returning();
      if (inserted[0]) return { created: true, call: toCall(inserted[0]) };
      const existing = await get(call.portalId, call.tokenHash);
      if (!existing) throw new Error('robot call vanished between insert and read');
      return { created: false, call: existing };
    },
    async saveAnswer(portalId, tokenHash, answer) {
      await db
        .update(robotCalls)
        .set({ answer })
        .where(and(eq(robotCalls.portalId, portalId), eq(robotCalls.tokenHash, tokenHash), isNull(robotCalls.answer)));
      const stored = await get(portalId, tokenHash);
      if (!stored?.answer) throw new Error('robot call has no stored answer after saving one');
      return stored.answer;
    },
    async markAnswered(portalId, tokenHash, now) {
      await db
        .update(robotCalls)
        .set({ answeredAt: now })
        .where(and(eq(robotCalls.portalId, portalId), eq(robotCalls.tokenHash, tokenHash), isNull(robotCalls.answeredAt)));
    },
  };
}
