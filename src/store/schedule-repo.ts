/**
 * Scheduled ticks claimed for the whole cluster (SPEC 6). Every instance's scheduler fires at
 * the same scheduled instant and tries to insert (name, tick_at); the primary key lets exactly
 * one insert through. Inside a transaction, a competitor's insert waits for ours to commit or
 * roll back, so a tick whose jobs were not enqueued is not lost to a crash.
 */
import { and, eq, lt } from 'drizzle-orm';
import type { ScheduleRepo } from '../handlers/ports.js';
import type { Db } from './db.js';
import { scheduleTicks } from './schema.js';

/** Ticks are kept a week: long enough to see what ran, short enough to stay small. */
const KEEP_MS = 7 * 24 * 3600_000;

export function createScheduleRepo(db: Db): ScheduleRepo {
  return {
    async claimTick(name, tickAt, now) {
      const won = await db
        .insert(scheduleTicks)
        .values({ name, tickAt, claimedAt: now })
        .onConflictDoNothing({ target: [scheduleTicks.name, scheduleTicks.tickAt] })
        .returning({ name: scheduleTicks.name });
      if (won.length) await db.delete(scheduleTicks).where(and(eq(scheduleTicks.name, name), lt(scheduleTicks.tickAt, new Date(tickAt.getTime() - KEEP_MS))));
      return won.length > 0;
    },
  };
}
