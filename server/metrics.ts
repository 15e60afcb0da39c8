/**
 * Operations metrics for `GET /metrics` (Prometheus text format, prom-client). Each app owns its
 * registry — not prom-client's global one — so every composition (tests build many) counts on
 * its own. No label carries a token or a member_id: a portal is named by a short hash of its
 * member_id (`portalLabel`).
 *
 * Counters are pushed by the queue worker (JobMetrics), the portal gateway (PortalCallObserver)
 * and the event route (eventAckTimer); the queue gauges are read from the store and the
 * reconciliation lag from its callback each time the metrics are rendered.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PortalCallObserver } from '../src/bitrix/gateway.js';
import type { Clock, JobQueue, JobStats, Log } from '../src/handlers/ports.js';

/** What the queue worker reports (server/jobs/worker.ts). */
export interface JobMetrics {
  jobsDone(kind: string, count: number): void;
  /** A failed run of a job: retried later, or dead-lettered. */
  jobFailed(kind: string, dead: boolean): void;
}

/**
 * Seconds since each portal's last completed periodic reconciliation (SPEC 6). `portal` is the
 * portal's member_id; it is hashed into the label here like every other portal label.
 */
export type ReconcileLag = () => Promise<{ portal: string; seconds: number }[]>;

export interface Metrics extends JobMetrics, PortalCallObserver {
  readonly contentType: string;
  /** Times `POST /b24/events` from the moment routing starts (before the body is read) to the answer. */
  eventAckTimer(): RequestHandler;
  /** Reads the gauges that live elsewhere (store, reconciliation) and renders every metric. */
  render(): Promise<string>;
}

export interface MetricsOptions {
  jobs: Pick<JobQueue, 'stats'>;
  clock: Clock;
  log: Log;
  reconcileLag?: ReconcileLag;
  /** Monotonic milliseconds for latencies; default performance.now (tests inject one). */
  elapsedMs?: () => number;
  /** prom-client's process and Node.js metrics; default true. */
  defaultMetrics?: boolean;
}

/** A portal as metrics name it: 12 hex digits of sha256(member_id), never the member_id itself. */
export function portalLabel(memberId: string): string {
  return createHash('sha256').update(memberId, 'utf8').digest('hex').slice(0, 12);
}

/** Bitrix24's limit answers (reference §3.5): 503 QUERY_LIMIT_EXCEEDED, 429 OPERATION_TIME_LIMIT. */
const THROTTLE_CODES = new Set(['QUERY_LIMIT_EXCEEDED', 'OPERATION_TIME_LIMIT']);
const STATES = ['queued', 'running', 'dead'] as const satisfies readonly (keyof JobStats)[];
/** The ack budget is 50 ms at p99 (SPEC 6, 11): fine buckets below it, coarse ones above. */
const ACK_BUCKETS_SECONDS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1];

export function createMetrics(o: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const elapsedMs = o.elapsedMs ?? (() => performance.now());
  if (o.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const queueJobs = new Gauge({ name: 'sarafan_queue_jobs', help: 'Jobs in the durable queue, by state.', labelNames: ['state'], registers });
  const queueAge = new Gauge({
    name: 'sarafan_queue_oldest_job_age_seconds',
    help: 'Age of the oldest job in each state: queued and dead since its run_at, running since it was claimed (0 when none).',
    labelNames: ['state'],
    registers,
  });
  const jobsDone = new Counter({ name: 'sarafan_jobs_done_total', help: 'Jobs completed, by kind.', labelNames: ['kind'], registers });
  const jobsFailed = new Counter({ name: 'sarafan_jobs_failed_total', help: 'Job runs that failed and will be retried, by kind.', labelNames: ['kind'], registers });
  const jobsDead = new Counter({ name: 'sarafan_jobs_dead_total', help: 'Jobs dead-lettered after their last attempt, by kind.', labelNames: ['kind'], registers });
  const portalRequests = new Counter({
    name: 'sarafan_portal_requests_total',
    help: 'HTTP requests sent to portal REST APIs (each retry counts), by portal (hash of member_id).',
    labelNames: ['portal'],
    registers,
  });
  const portalThrottled = new Counter({
    name: 'sarafan_portal_throttled_total',
    help: 'Portal answers refusing a request for its limits (QUERY_LIMIT_EXCEEDED, OPERATION_TIME_LIMIT), by portal and code.',
    labelNames: ['portal', 'code'],
    registers,
  });
  const eventAck = new Histogram({
    name: 'sarafan_event_ack_seconds',
    help: 'Time to answer POST /b24/events, by HTTP status.',
    labelNames: ['status'],
    buckets: ACK_BUCKETS_SECONDS,
    registers,
  });
  const reconcileLag = new Gauge({
    name: 'sarafan_reconcile_lag_seconds',
    help: 'Seconds since the last completed periodic reconciliation, by portal (hash of member_id).',
    labelNames: ['portal'],
    registers,
  });

  async function readQueue(): Promise<void> {
    try {
      const stats = await o.jobs.stats();
      const now = o.clock.now().getTime();
      for (const state of STATES) {
        const s = stats[state];
        const since = state === 'running' ? s.oldestLockedAt : s.oldestRunAt;
        queueJobs.set({ state }, s.count);
        queueAge.set({ state }, since ? Math.max(0, (now - since.getTime()) / 1000) : 0);
      }
    } catch (e) {
      // Without the store the queue is unknown: no stale values; the process metrics still answer.
      queueJobs.reset();
      queueAge.reset();
      o.log.warn({ source: 'queue', error: e instanceof Error ? e.message : String(e) }, 'metrics.collect_failed');
    }
  }

  async function readReconcileLag(): Promise<void> {
    if (!o.reconcileLag) return;
    try {
      const lags = await o.reconcileLag();
      reconcileLag.reset();
      for (const { portal, seconds } of lags) reconcileLag.set({ portal: portalLabel(portal) }, seconds);
    } catch (e) {
      reconcileLag.reset();
      o.log.warn({ source: 'reconcile', error: e instanceof Error ? e.message : String(e) }, 'metrics.collect_failed');
    }
  }

  return {
    contentType: registry.contentType,

    jobsDone(kind, count) {
      if (count > 0) jobsDone.inc({ kind }, count);
    },

    jobFailed(kind, dead) {
      (dead ? jobsDead : jobsFailed).inc({ kind });
    },

    requested(memberId, outcome) {
      const portal = portalLabel(memberId);
      portalRequests.inc({ portal });
      if (outcome.error !== null && THROTTLE_CODES.has(outcome.error)) portalThrottled.inc({ portal, code: outcome.error });
    },

    eventAckTimer() {
      return (_req, res, next) => {
        const started = elapsedMs();
        res.once('finish', () => eventAck.observe({ status: String(res.statusCode) }, (elapsedMs() - started) / 1000));
        next();
      };
    },

    async render() {
      await Promise.all([readQueue(), readReconcileLag()]);
      return registry.metrics();
    },
  };
}
