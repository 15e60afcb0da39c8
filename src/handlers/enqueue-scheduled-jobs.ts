/**
 * A scheduled tick (SPEC 6). node-cron fires on every instance at the same scheduled instant;
 * the instance that claims the tick for the cluster enqueues one job per portal, in the same
 * transaction as the claim — a crash in between rolls the claim back, and an instance that
 * lost the race finds the claim committed only once the jobs are queued too. The tick does
 * none of the work: the jobs are coalesced per portal while queued, and the worker runs them.
 */
import type { Deps, InstallationStatus, ScheduledJobKind } from './ports.js';

/** Whose jobs a tick enqueues: portal work needs an active installation; old jobs go anyway. */
const PORTALS: Record<ScheduledJobKind, InstallationStatus[]> = {
  'reconcile.crm': ['active'],
  'holds.mature': ['active'],
  'queue.purge': ['new', 'active', 'uninstalled'],
  'bonus.expire': ['active'],
  'segments.rfm': ['active'],
};

export interface TickOutcome {
  /** False when another instance (or an earlier call) had the tick. */
  claimed: boolean;
  /** Jobs added; portals whose job of this kind was still queued coalesce into it. */
  enqueued: number;
}

export async function enqueueScheduledJobs(deps: Deps, kind: ScheduledJobKind, tickAt: Date): Promise<TickOutcome> {
  const now = deps.clock.now();
  const outcome = await deps.store.transaction(async (tx) => {
    if (!(await tx.schedule.claimTick(kind, tickAt, now))) return { claimed: false, enqueued: 0 };
    let enqueued = 0;
    for (const portalId of await tx.installations.listIds(PORTALS[kind])) {
      if (await tx.jobs.enqueue({ portalId, kind, key: kind, payload: { tickAt: tickAt.toISOString() } }, now)) enqueued++;
    }
    return { claimed: true, enqueued };
  });
  if (outcome.claimed) deps.log.info({ schedule: kind, tickAt: tickAt.toISOString(), enqueued: outcome.enqueued }, 'schedule.ticked');
  return outcome;
}
