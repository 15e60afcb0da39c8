/**
 * The durable queue's worker loop: claims jobs of one portal at a time (so a burst of events
 * becomes one `batch` read and one `batch` write), runs them, and retries failures with
 * exponential backoff until they are dead-lettered.
 *
 * Work a dead process held resumes as soon as a live worker runs (SPEC 6): a claimed job is
 * leased — the worker renews the lease while a run holds it — and any live worker puts jobs
 * whose lease ran out back in the queue at its next claim. On the embedded store no other
 * process can exist (its lock file), so with `exclusive` every job found running at start-up
 * is an orphan and is recovered before the first claim, without waiting for the lease.
 */
import { processCrmChanges, type CrmChange } from '../../src/handlers/process-crm-changes.js';
import { backfillHistory } from '../../src/handlers/backfill-history.js';
import { reconcileInstallation } from '../../src/handlers/install-app.js';
import { writeProjections } from '../../src/handlers/write-projections.js';
import { PortalCallError } from '../../src/handlers/errors.js';
import { matureHolds } from '../../src/handlers/mature-holds.js';
import { expireBonus } from '../../src/handlers/expire-bonus.js';
import { refreshExpiryOutlook } from '../../src/handlers/refresh-expiry-outlook.js';
import { purgeDoneJobs } from '../../src/handlers/purge-done-jobs.js';
import { reconcileCrm } from '../../src/handlers/reconcile-crm.js';
import { runRobotCall } from '../../src/handlers/run-robot-call.js';
import { sendFeedback } from '../../src/handlers/send-feedback.js';
import { segmentClients } from '../../src/handlers/segment-clients.js';
import type { Deps, Job, JobKind } from '../../src/handlers/ports.js';
import type { JobMetrics } from '../metrics.js';
import type { IngestPressure } from './ingest-pressure.js';
type SingleKind = Exclude<JobKind, 'crm.change' | 'crm.project'>;

/** The timers of the lease renewal (tests inject their own and fire them by hand). */
export interface WorkerTimers {
  setInterval(fn: () => Promise<void>, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const systemTimers: WorkerTimers = {
  setInterval: (fn, ms) => setInterval(() => void fn(), ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export interface WorkerOptions {
  workerId: string;
  batchSize?: number;
  idleMs?: number;
  /**
   * After a run that found fewer due jobs than batchSize, wait this long before the next claim,
   * so a burst arriving over a second becomes one run (one read request, full write batches)
   * rather than many small ones; default 1 000 ms. A lone event still starts within idleMs.
   */
  lingerMs?: number;
  /**
   * How long a claimed job stays this worker's without a renewal; default 30 s. A run renews
   * the lease of its jobs every leaseMs / 3; expired leases are recovered before every claim.
   */
  leaseMs?: number;
  /** This process is the store's only user (the embedded store): recover every running job at start. */
  exclusive?: boolean;
  maxAttempts?: number;
  timers?: WorkerTimers;
  /**
   * With deps.ingest: how long a run may wait for event deliveries in flight to be answered
   * before it starts anyway; default 250 ms (see server/jobs/ingest-pressure.ts).
   */
  maxDeferMs?: number;
}

export interface Worker {
  start(): void;
  stop(): Promise<void>;
  /** Run until no due job is left (tests and benchmarks). */
  drain(): Promise<number>;
}

export function backoffMs(attempts: number): number {
  return Math.min(2 ** attempts * 5_000, 3_600_000);
}

export function createWorker(deps: Deps & { metrics?: JobMetrics; ingest?: IngestPressure }, opts: WorkerOptions): Worker {
  // One run reads its entities with list commands (2 500 per request) and writes in batches of 50:
  // the bigger the run, the fewer REST requests per change (SPEC 11), at the price of a later write-back.
  const batchSize = opts.batchSize ?? 500;
  const idleMs = opts.idleMs ?? 250;
  const lingerMs = opts.lingerMs ?? 1_000;
  const leaseMs = opts.leaseMs ?? 30_000;
  const renewEveryMs = Math.max(1, Math.floor(leaseMs / 3));
  const maxAttempts = opts.maxAttempts ?? 8;
  const maxDeferMs = opts.maxDeferMs ?? 250;
  const timers = opts.timers ?? systemTimers;
  let running = false;
  let loop: Promise<void> | null = null;
  let wake: (() => void) | null = null;
  let orphansRecovered = !opts.exclusive;

  async function recover(now: Date): Promise<void> {
    if (!orphansRecovered) {
      const recovered = await deps.store.jobs.recoverStale(null, now);
      orphansRecovered = true;
      if (recovered) deps.log.warn({ recovered }, 'queue.recovered_orphans');
      return;
    }
    const recovered = await deps.store.jobs.recoverStale(new Date(now.getTime() - leaseMs), now);
    if (recovered) deps.log.warn({ recovered }, 'queue.recovered_expired_leases');
  }

  let renewing: Promise<void> | null = null;
  function renewLease(): Promise<void> {
    renewing ??= deps.store.jobs
      .renew(opts.workerId, deps.clock.now())
      .then(
        () => undefined,
        (e: unknown) => deps.log.warn({ error: e instanceof Error ? e.message : String(e) }, 'queue.lease_renewal_failed'),
      )
      .finally(() => {
        renewing = null;
      });
    return renewing;
  }

  async function runOnce(): Promise<number> {
    const now = deps.clock.now();
    await recover(now);
    const jobs = await deps.store.jobs.claim(opts.workerId, batchSize, now);
    if (!jobs.length) return 0;
    const renewal = timers.setInterval(renewLease, renewEveryMs);
    try {
      await runJobs(jobs);
    } finally {
      timers.clearInterval(renewal);
      await renewing;
    }
    return jobs.length;
  }

  async function runJobs(jobs: Job[]): Promise<void> {
    const crm = jobs.filter((j) => j.kind === 'crm.change');
    const project = jobs.filter((j) => j.kind === 'crm.project');
    // The history first: the changes of this run may need to know who was a customer before the install.
    for (const job of jobs.filter((j) => j.kind === 'backfill.crm')) await runSingle(job);
    if (crm.length) await runCrm(crm);
    if (project.length) await runProject(project);
    for (const job of jobs.filter((j) => j.kind !== 'crm.change' && j.kind !== 'crm.project' && j.kind !== 'backfill.crm')) await runSingle(job);
  }

  async function runSingle(job: Job): Promise<void> {
    await guard([job], async () => {
      await single[job.kind as SingleKind](job);
      await deps.store.jobs.complete([job.id], deps.clock.now());
      deps.metrics?.jobsDone(job.kind, 1);
    });
  }

  /** Every other kind runs one job at a time. */
  const single: Record<SingleKind, (job: Job) => Promise<unknown>> = {
    'backfill.crm': (job) => backfillHistory(deps, job.portalId),
    'app.reconcile': async (job) => {
      const installation = await deps.store.installations.get(job.portalId);
      if (installation && installation.status !== 'uninstalled' && installation.tokens) await reconcileInstallation(deps, installation);
    },
    'reconcile.crm': (job) => reconcileCrm(deps, job.portalId),
    'holds.mature': (job) => matureHolds(deps, job.portalId),
    'queue.purge': (job) => purgeDoneJobs(deps, job.portalId),
    // Then the analytics' expiry outlook of the members written since (their expiry entries included).
    'bonus.expire': async (job) => {
      await expireBonus(deps, job.portalId);
      await refreshExpiryOutlook(deps, job.portalId);
    },
    'crm.feedback': (job) => sendFeedback(deps, job.portalId),
    'segments.rfm': (job) => segmentClients(deps, job.portalId),
    'robot.run': async (job) => {
      const installation = await deps.store.installations.get(job.portalId);
      // Told when the queue will not retry it, so a robot call is answered (ok = N) before its job could go dead.
      if (installation && installation.status !== 'uninstalled' && installation.tokens) {
        await runRobotCall(deps, installation, String(job.payload.tokenHash), { lastAttempt: job.attempts >= maxAttempts });
      }
    },
  };

  async function runCrm(jobs: Job[]): Promise<void> {
    const portalId = jobs[0]!.portalId;
    const changes: CrmChange[] = jobs.map((j) => ({
      entity: j.payload.entity as CrmChange['entity'],
      id: Number(j.payload.id),
      deleted: j.payload.deleted === true,
    }));
    let outcomes;
    try {
      outcomes = await processCrmChanges(deps, portalId, changes);
    } catch (e) {
      // One change the loop cannot process must not hold back the rest of its batch: halve the
      // batch until the culprit runs alone (a portal that cannot be reached fails them all).
      if (jobs.length > 1 && !(e instanceof PortalCallError)) {
        const half = Math.ceil(jobs.length / 2);
        await runCrm(jobs.slice(0, half));
        await runCrm(jobs.slice(half));
        return;
      }
      const error = e instanceof Error ? e.message : String(e);
      for (const job of jobs) await failJob(job, error);
      return;
    }
    await guard(jobs, async () => {
      const failed = new Map(outcomes.filter((o) => !o.ok).map((o) => [`${o.entity}:${o.id}`, o.error ?? 'failed']));
      const ok = jobs.filter((j) => !failed.has(j.key));
      await deps.store.jobs.complete(ok.map((j) => j.id), deps.clock.now());
      deps.metrics?.jobsDone('crm.change', ok.length);
      for (const job of jobs.filter((j) => failed.has(j.key))) await failJob(job, failed.get(job.key)!);
    });
  }

  /**
   * The CRM fields committed changes owe (SPEC 6: retried until the CRM equals the ledger). The
   * targets whose write failed go on in a new job; a projection job is never dead-lettered.
   */
  async function runProject(jobs: Job[]): Promise<void> {
    const portalId = jobs[0]!.portalId;
    const ids = (key: string) => [...new Set(jobs.flatMap((j) => (Array.isArray(j.payload[key]) ? (j.payload[key] as unknown[]) : []).map(Number)))].filter(Number.isSafeInteger);
    try {
      const installation = await deps.store.installations.get(portalId);
      if (installation && installation.status !== 'uninstalled' && installation.tokens) {
        const { failed } = await writeProjections(deps, installation, { memberIds: ids('members'), dealIds: ids('deals') });
        if (failed.memberIds.length || failed.dealIds.length) {
          const now = deps.clock.now();
          const attempts = Math.max(...jobs.map((j) => j.attempts));
          await deps.store.jobs.enqueue(
            { portalId, kind: 'crm.project', key: `retry:${jobs[0]!.id}`, payload: { members: failed.memberIds, deals: failed.dealIds }, runAt: new Date(now.getTime() + backoffMs(attempts)) },
            now,
          );
        }
      }
      await deps.store.jobs.complete(jobs.map((j) => j.id), deps.clock.now());
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      const now = deps.clock.now();
      for (const job of jobs) await deps.store.jobs.fail(job.id, error.slice(0, 2000), new Date(now.getTime() + backoffMs(job.attempts)), now);
      deps.log.warn({ portalId, jobs: jobs.length, error }, 'queue.retry');
    }
  }

  /** Runs `fn`, which completes what succeeded; a throw fails every job given. */
  async function guard(jobs: Job[], fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      for (const job of jobs) await failJob(job, error);
    }
  }

  async function failJob(job: Job, error: string): Promise<void> {
    const now = deps.clock.now();
    const dead = job.attempts >= maxAttempts;
    await deps.store.jobs.fail(job.id, error.slice(0, 2000), dead ? null : new Date(now.getTime() + backoffMs(job.attempts)), now);
    deps.metrics?.jobFailed(job.kind, dead);
    deps.log[dead ? 'error' : 'warn']({ portalId: job.portalId, jobId: job.id, kind: job.kind, key: job.key, attempts: job.attempts, error }, dead ? 'queue.dead' : 'queue.retry');
  }

  /** Waits `ms` unless stop() wakes it first. */
  function pauseFor(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    }).finally(() => {
      wake = null;
    });
  }

  /** Event deliveries in flight are answered before a run takes the thread (bounded by maxDeferMs). */
  async function yieldToIngest(): Promise<void> {
    const { ingest } = deps;
    if (!ingest) return;
    const deadline = performance.now() + maxDeferMs;
    while (running && ingest.busy() && performance.now() < deadline) await pauseFor(5);
  }

  async function main(): Promise<void> {
    while (running) {
      await yieldToIngest();
      if (!running) break;
      let n = 0;
      try {
        n = await runOnce();
      } catch (e) {
        deps.log.error({ error: e instanceof Error ? e.message : String(e) }, 'queue.loop_failed');
      }
      const pause = !n ? idleMs : n < batchSize ? lingerMs : 0;
      if (pause && running) await pauseFor(pause);
      // Even straight after a full batch: what arrived meanwhile (connections, requests) is served first.
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  return {
    start(): void {
      if (running) return;
      running = true;
      loop = main();
    },
    async stop(): Promise<void> {
      running = false;
      wake?.();
      await loop;
    },
    async drain(): Promise<number> {
      let total = 0;
      for (;;) {
        const n = await runOnce();
        if (!n) return total;
        total += n;
      }
    },
  };
}
