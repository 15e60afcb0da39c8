/**
 * The `queue.purge` job (SPEC 6): a portal's completed jobs are deleted once older than the
 * retention. Dead jobs stay: they are what an operator looks at.
 */
import type { Deps } from './ports.js';

export const DONE_JOB_RETENTION_MS = 7 * 24 * 3600_000;

export async function purgeDoneJobs(deps: Deps, portalId: number): Promise<number> {
  const now = deps.clock.now();
  const purged = await deps.store.jobs.purgeDone(portalId, new Date(now.getTime() - DONE_JOB_RETENTION_MS));
  if (purged) deps.log.info({ portalId, purged }, 'queue.purged');
  return purged;
}
