/**
 * GET /api/health (SPEC 7, issue 12): the installation health an admin reads on the main page —
 * what the portal has of Sarafan's registration now, the last CRM event received, how long ago
 * the periodic reconciliation last completed, the queue and its dead jobs. Everything but the
 * registration comes from the store, so a portal that cannot be read still gets the rest.
 *
 * Known limits: `lastEventAt` trails the last event by up to EVENT_MARK_INTERVAL_MS (it is
 * written at most once a minute per portal, to keep the ingest path cheap); `lastRunAt` is the
 * least recent of the entity watermarks' completion times, as the reconcile-lag metric reads them.
 */
import type { DeadJob, HealthAnswer } from '../contract/admin.js';
import { maskSecrets } from '../rules/scrub-secrets.js';
import type { Deps, Installation, Job, WatermarkName } from './ports.js';

/** The dead jobs an admin sees, newest first. */
export const DEAD_JOBS_SHOWN = 50;

const RECONCILE_MARKS: WatermarkName[] = ['reconcile.contact', 'reconcile.lead', 'reconcile.deal'];

export async function readHealth(deps: Deps, installation: Installation): Promise<HealthAnswer> {
  const now = deps.clock.now();
  const portalId = installation.id;
  const [inspection, lastEventAt, marks, stats, dead] = await Promise.all([
    deps.registration.inspect(installation),
    deps.store.installations.lastEventAt(portalId),
    deps.store.watermarks.get(portalId, RECONCILE_MARKS),
    // The same query as the queue gauges of /metrics, for one portal.
    deps.store.jobs.stats(portalId),
    deps.store.jobs.deadJobs(portalId, DEAD_JOBS_SHOWN),
  ]);
  // A portal is as late as its least recently reconciled entity (like sarafan_reconcile_lag_seconds).
  const completions = [...marks.values()].map((m) => m.updatedAt.getTime());
  const lastRunAt = completions.length ? new Date(Math.min(...completions)) : null;
  // Errors are libraries' messages as they came and may quote a request with its token.
  const secrets = [installation.tokens?.accessToken, installation.tokens?.refreshToken, installation.applicationToken].filter((s): s is string => !!s);

  return {
    checkedAt: now.toISOString(),
    installation: { domain: installation.domain, status: installation.status, installedAt: installation.installedAt?.toISOString() ?? null },
    registration: inspection.ok ? inspection.items : null,
    registrationError: inspection.ok ? null : inspection.error,
    lastEventAt: lastEventAt?.toISOString() ?? null,
    reconciliation: {
      lastRunAt: lastRunAt?.toISOString() ?? null,
      lagSeconds: lastRunAt ? Math.max(0, Math.round((now.getTime() - lastRunAt.getTime()) / 1000)) : null,
    },
    queue: {
      queued: stats.queued.count,
      running: stats.running.count,
      dead: stats.dead.count,
      oldestQueuedAt: stats.queued.oldestRunAt?.toISOString() ?? null,
    },
    deadJobs: dead.map((job) => deadJob(job, secrets)),
  };
}

function deadJob(job: Job, secrets: string[]): DeadJob {
  return {
    id: job.id,
    kind: job.kind,
    key: job.key,
    attempts: job.attempts,
    lastError: job.lastError === null ? null : maskSecrets(job.lastError, secrets),
    updatedAt: job.updatedAt.toISOString(),
  };
}
