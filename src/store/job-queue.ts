/**
 * The durable job queue (SPEC 6) in the jobs table. Two partial unique indexes carry its rules:
 * one queued job per (portal, kind, key) — later enqueues coalesce into it — and one running
 * job per key, so jobs of one key never run concurrently. A claim takes one portal's due jobs
 * with FOR UPDATE SKIP LOCKED, so concurrent claimers never share a job.
 *
 * Jobs are the one table read across portals (the queue picks the portal); complete/fail take
 * job ids only, as the port defines them.
 */
import { and, asc, count, desc, eq, inArray, lt, lte, min, sql } from 'drizzle-orm';
import type { Job, JobQueue, JobStats, JobStatus, NewJob, RetryDeadOutcome } from '../handlers/ports.js';
import { anyId, retryOnUniqueViolation, rowsOf, tsParam, type Db } from './db.js';
import { jobs } from './schema.js';

type Row = typeof jobs.$inferSelect;

const MAX_ERROR_LENGTH = 4000;

const toJob = (row: Row): Job => ({
  id: row.id,
  portalId: row.portalId,
  kind: row.kind,
  key: row.key,
  payload: row.payload,
  status: row.status,
  attempts: row.attempts,
  runAt: row.runAt,
  lockedBy: row.lockedBy,
  lockedAt: row.lockedAt,
  lastError: row.lastError,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt,
});

/** Another job of the same (portal, kind, key) in `status` (correlated with the outer jobs row). */
const sibling = (status: JobStatus) =>
  sql`EXISTS (SELECT 1 FROM jobs s WHERE s.status = ${status} AND s.portal_id = ${jobs.portalId} AND s.kind = ${jobs.kind} AND s.key = ${jobs.key} AND s.id <> ${jobs.id})`;

export function createJobQueue(db: Db, opts: { groupCommit?: boolean } = {}): JobQueue {
  /** One multi-row INSERT; per job, whether it was inserted (false = coalesced). */
  async function insertMany(batch: { job: NewJob; now: Date }[]): Promise<boolean[]> {
    const seen = new Set<string>();
    const values = [];
    for (const { job, now } of batch) {
      const id = `${job.portalId}\u0000${job.kind}\u0000${job.key}`;
      if (seen.has(id)) continue; // the first of a batch wins; the rest coalesce into it
      seen.add(id);
      values.push({ portal_id: job.portalId, kind: job.kind, key: job.key, payload: job.payload, run_at: job.runAt ?? now, created_at: now });
    }
    // One fixed-text statement, the rows as one JSON parameter: the event hot path enqueues
    // through here, and a drizzle multi-row VALUES costs a placeholder per column per row to
    // build and a new statement text to parse at every batch size (measured with `npm run bench`).
    const rows = rowsOf<{ portal_id: number; kind: string; key: string }>(
      await db.execute(sql`
        INSERT INTO jobs (portal_id, kind, key, payload, status, attempts, run_at, created_at, updated_at)
        SELECT v.portal_id, v.kind, v.key, v.payload, 'queued', 0, v.run_at, v.created_at, v.created_at
          FROM jsonb_to_recordset(${JSON.stringify(values)}::jsonb)
            AS v(portal_id int, kind text, key text, payload jsonb, run_at timestamptz, created_at timestamptz)
        ON CONFLICT (portal_id, kind, key) WHERE status = 'queued' DO NOTHING
        RETURNING portal_id, kind, key`),
    );
    const inserted = new Set(rows.map((r) => `${r.portal_id}\u0000${r.kind}\u0000${r.key}`));
    const claimed = new Set<string>();
    return batch.map(({ job }) => {
      const id = `${job.portalId}\u0000${job.kind}\u0000${job.key}`;
      if (!inserted.has(id) || claimed.has(id)) return false;
      claimed.add(id);
      return true;
    });
  }

  return {
    enqueue: opts.groupCommit ? groupCommit(insertMany) : async (job, now) => (await insertMany([{ job, now }]))[0]!,

    async claim(workerId, limit, now) {
      if (limit <= 0) return [];
      const due = and(eq(jobs.status, 'queued'), lte(jobs.runAt, now), sql`NOT ${sibling('running')}`);
      return db.transaction(async (tx) => {
        // The portal with the oldest due job (its row stays locked by us, so the second query sees it).
        const [oldest] = await tx
          .select({ portalId: jobs.portalId })
          .from(jobs)
          .where(due)
          .orderBy(asc(jobs.runAt), asc(jobs.id))
          .limit(1)
          .for('update', { skipLocked: true });
        if (!oldest) return [];
        const picked = await tx
          .select({ id: jobs.id })
          .from(jobs)
          .where(and(eq(jobs.portalId, oldest.portalId), due))
          .orderBy(asc(jobs.runAt), asc(jobs.id))
          .limit(limit)
          .for('update', { skipLocked: true });
        if (picked.length === 0) return [];
        const rows = await tx
          .update(jobs)
          .set({ status: 'running', lockedBy: workerId, lockedAt: now, attempts: sql`${jobs.attempts} + 1`, updatedAt: now })
          .where(and(eq(jobs.portalId, oldest.portalId), anyId(jobs.id, picked.map((p) => p.id))))
          .returning();
        return rows.map(toJob).sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || a.id - b.id);
      });
    },

    async complete(ids, now) {
      if (ids.length === 0) return;
      await db
        .update(jobs)
        .set({ status: 'done', updatedAt: now })
        .where(and(anyId(jobs.id, ids), eq(jobs.status, 'running')));
    },

    async completeQueued(portalId, kind, key, now) {
      await db
        .update(jobs)
        .set({ status: 'done', updatedAt: now })
        .where(and(eq(jobs.portalId, portalId), eq(jobs.kind, kind), eq(jobs.key, key), eq(jobs.status, 'queued')));
    },

    async fail(id, error, retryAt, now) {
      const lastError = error.slice(0, MAX_ERROR_LENGTH);
      if (retryAt === null) {
        await db
          .update(jobs)
          .set({ status: 'dead', lastError, updatedAt: now })
          .where(and(eq(jobs.id, id), eq(jobs.status, 'running')));
        return;
      }
      // Back to queued — unless a newer job of the key was queued meanwhile: then the failing one
      // is merged into it (deleted; the newer one re-reads the entity anyway) and the newer one
      // inherits the back-off and the attempt count. A retry covers an enqueue slipping in
      // between our check and our update.
      await retryOnUniqueViolation(() =>
        db.transaction(async (tx) => {
          const [failing] = await tx
            .select()
            .from(jobs)
            .where(and(eq(jobs.id, id), eq(jobs.status, 'running')))
            .for('update');
          if (!failing) return;
          const [newer] = await tx
            .select({ id: jobs.id })
            .from(jobs)
            .where(and(eq(jobs.portalId, failing.portalId), eq(jobs.kind, failing.kind), eq(jobs.key, failing.key), eq(jobs.status, 'queued')))
            .for('update');
          if (newer) {
            await tx
              .update(jobs)
              .set({
                runAt: sql`greatest(${jobs.runAt}, ${tsParam(retryAt)})`,
                attempts: sql`greatest(${jobs.attempts}, ${failing.attempts})`,
                lastError,
                updatedAt: now,
              })
              .where(and(eq(jobs.portalId, failing.portalId), eq(jobs.id, newer.id)));
            await tx.delete(jobs).where(and(eq(jobs.portalId, failing.portalId), eq(jobs.id, failing.id)));
          } else {
            await tx
              .update(jobs)
              .set({ status: 'queued', runAt: retryAt, lastError, lockedBy: null, lockedAt: null, updatedAt: now })
              .where(and(eq(jobs.portalId, failing.portalId), eq(jobs.id, failing.id)));
          }
        }),
      );
    },

    async renew(workerId, now) {
      const rows = await db
        .update(jobs)
        .set({ lockedAt: now })
        .where(and(eq(jobs.status, 'running'), eq(jobs.lockedBy, workerId)))
        .returning({ id: jobs.id });
      return rows.length;
    },

    async recoverStale(lockedBefore, now) {
      const expired = and(eq(jobs.status, 'running'), lockedBefore === null ? undefined : lt(jobs.lockedAt, lockedBefore));
      // Workers look before every claim: the usual answer (nothing expired) costs one plain read.
      const [any] = await db.select({ id: jobs.id }).from(jobs).where(expired).limit(1);
      if (!any) return 0;
      return retryOnUniqueViolation(() =>
        db.transaction(async (tx) => {
          const stale = await tx
            .select({ id: jobs.id })
            .from(jobs)
            .where(expired)
            .for('update', { skipLocked: true });
          if (stale.length === 0) return 0;
          const ids = stale.map((s) => s.id);
          // A stale job whose key has a newer queued job merges into it (see fail).
          await tx.delete(jobs).where(and(anyId(jobs.id, ids), sibling('queued')));
          // run_at is kept: recovered jobs are the oldest due ones and go first.
          await tx
            .update(jobs)
            .set({ status: 'queued', lockedBy: null, lockedAt: null, lastError: 'recovered: worker lost', updatedAt: now })
            .where(and(anyId(jobs.id, ids), eq(jobs.status, 'running')));
          return ids.length;
        }),
      );
    },

    async depth(portalId) {
      const rows = await db
        .select({ status: jobs.status, n: count() })
        .from(jobs)
        .where(and(inArray(jobs.status, ['queued', 'running', 'dead']), portalId === undefined ? undefined : eq(jobs.portalId, portalId)))
        .groupBy(jobs.status);
      const depth = { queued: 0, running: 0, dead: 0 };
      for (const row of rows) if (row.status !== 'done') depth[row.status] = row.n;
      return depth;
    },

    async stats(portalId) {
      const rows = await db
        .select({ status: jobs.status, n: count(), oldestRunAt: min(jobs.runAt), oldestLockedAt: min(jobs.lockedAt) })
        .from(jobs)
        .where(and(inArray(jobs.status, ['queued', 'running', 'dead']), portalId === undefined ? undefined : eq(jobs.portalId, portalId)))
        .groupBy(jobs.status);
      const none = { count: 0, oldestRunAt: null, oldestLockedAt: null };
      const stats: JobStats = { queued: { ...none }, running: { ...none }, dead: { ...none } };
      for (const row of rows) {
        if (row.status !== 'done') stats[row.status] = { count: row.n, oldestRunAt: row.oldestRunAt, oldestLockedAt: row.oldestLockedAt };
      }
      return stats;
    },

    async purgeDone(portalId, olderThan) {
      const rows = await db
        .delete(jobs)
        .where(and(eq(jobs.portalId, portalId), eq(jobs.status, 'done'), lt(jobs.updatedAt, olderThan)))
        .returning({ id: jobs.id });
      return rows.length;
    },

    async deadJobs(portalId, limit) {
      const rows = await db
        .select()
        .from(jobs)
        .where(and(eq(jobs.portalId, portalId), eq(jobs.status, 'dead')))
        .orderBy(desc(jobs.updatedAt), desc(jobs.id))
        .limit(limit);
      return rows.map(toJob);
    },

    async retryDead(portalId, id, now) {
      // Locks the dead row, then looks for a queued sibling: with one, queueing the dead job would
      // break jobs_queued_key_uq, and both would do the same work. An enqueue slipping in between
      // the look and the update violates the index; the retry then finds it and merges.
      return retryOnUniqueViolation(() =>
        db.transaction(async (tx): Promise<RetryDeadOutcome> => {
          const [job] = await tx
            .select()
            .from(jobs)
            .where(and(eq(jobs.portalId, portalId), eq(jobs.id, id)))
            .for('update');
          if (!job) return { status: 'not_found' };
          if (job.status !== 'dead') return { status: 'not_dead', current: job.status };
          const [queued] = await tx
            .select({ id: jobs.id })
            .from(jobs)
            .where(and(eq(jobs.portalId, portalId), eq(jobs.kind, job.kind), eq(jobs.key, job.key), eq(jobs.status, 'queued')))
            .for('update');
          if (queued) {
            await tx
              .update(jobs)
              .set({ runAt: sql`least(${jobs.runAt}, ${tsParam(now)})`, updatedAt: now })
              .where(and(eq(jobs.portalId, portalId), eq(jobs.id, queued.id)));
            await tx
              .update(jobs)
              .set({ status: 'done', lastError: `merged into job ${queued.id} on retry; was: ${job.lastError ?? ''}`.slice(0, MAX_ERROR_LENGTH), updatedAt: now })
              .where(and(eq(jobs.portalId, portalId), eq(jobs.id, job.id)));
            return { status: 'merged', id: queued.id };
          }
          await tx
            .update(jobs)
            .set({ status: 'queued', attempts: 0, runAt: now, lockedBy: null, lockedAt: null, updatedAt: now })
            .where(and(eq(jobs.portalId, portalId), eq(jobs.id, job.id)));
          return { status: 'queued', id: job.id };
        }),
      );
    },
  };
}

/**
 * How long the first enqueue of a batch waits for company. On PGlite the enqueue statement costs
 * about 1.1 ms of CPU for 1 row, 1.7 ms for 8 and 4.5 ms for 64 (measured): at 1 000 events/s a
 * 1 ms window leaves 1–2-row batches that take most of a core, a 4 ms window ~4-row ones at a
 * third of the cost per event, for 3 ms more on an acknowledgement (the budget is 50 ms at p99).
 */
const GROUP_COMMIT_WINDOW_MS = 4;

/**
 * Group commit for the event hot path: enqueues that arrive while an INSERT is in flight are
 * written together by the next one, each promise resolving only once its row is committed
 * (an acknowledged event is durable). An idle queue writes after GROUP_COMMIT_WINDOW_MS.
 */
function groupCommit(
  insertMany: (batch: { job: NewJob; now: Date }[]) => Promise<boolean[]>,
  maxBatch = 500,
): (job: NewJob, now: Date) => Promise<boolean> {
  let pending: { job: NewJob; now: Date; resolve: (v: boolean) => void; reject: (e: unknown) => void }[] = [];
  let flushing = false;
  async function flush(): Promise<void> {
    try {
      while (pending.length) {
        const batch = pending.slice(0, maxBatch);
        pending = pending.slice(batch.length);
        try {
          const results = await insertMany(batch);
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      flushing = false;
    }
  }
  return (job, now) =>
    new Promise<boolean>((resolve, reject) => {
      pending.push({ job, now, resolve, reject });
      // Deferred so that requests arriving meanwhile join the batch (PGlite runs queries on the
      // main thread: nothing else is parsed while one runs).
      if (!flushing) {
        flushing = true;
        setTimeout(() => void flush(), GROUP_COMMIT_WINDOW_MS);
      }
    });
}
