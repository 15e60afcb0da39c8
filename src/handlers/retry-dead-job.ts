/**
 * POST /api/jobs/:id/retry (issue 12): an admin sends a dead job of their portal back to the
 * queue, due now, with its attempts reset. Another portal's job is "not found", as an unknown
 * id is. When the job's key already has a queued job, the dead one is merged into it (marked
 * done; the queued one runs the same work, made due now) — the queue allows one queued job per
 * key — and the answer names that job.
 */
import type { RetryJobAnswer } from '../contract/admin.js';
import { AppError } from './errors.js';
import type { Deps } from './ports.js';

export async function retryDeadJob(deps: Deps, portalId: number, jobId: number): Promise<RetryJobAnswer> {
  const outcome = await deps.store.jobs.retryDead(portalId, jobId, deps.clock.now());
  switch (outcome.status) {
    case 'not_found':
      throw new AppError('not_found', `No job ${jobId} on this portal`);
    case 'not_dead':
      throw new AppError('conflict', `Job ${jobId} is ${outcome.current}, not dead: only a dead job can be retried`, [], { reason: 'not_dead' });
    case 'queued':
    case 'merged':
      deps.log.info({ portalId, jobId, queued: outcome.id, merged: outcome.status === 'merged' }, 'queue.retried');
      return { id: outcome.id, status: 'queued' };
  }
}
