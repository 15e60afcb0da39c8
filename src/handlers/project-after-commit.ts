/**
 * The CRM fields a committed ledger change owes (SPEC 4.1, 6), for the use cases that change one
 * member or deal on request (redeem, adjust, enrol) — the same guarantee the referral loop gives:
 * a durable `crm.project` job is enqueued in the change's own transaction, the fields are written
 * at once after the commit, and the job is completed only when every write went through; else it
 * runs later (and again) until the CRM equals the ledger.
 */
import type { Projection } from '../rules/project-to-crm.js';
import { PROJECTION_GRACE_MS } from './process-crm-changes.js';
import type { Deps, Installation, TxRepos } from './ports.js';
import { writeProjections, type ProjectionTargets } from './write-projections.js';

/** Inside the change's transaction. Returns the job's key for projectNow. */
export async function oweProjections(deps: Deps, tx: TxRepos, portalId: number, targets: ProjectionTargets, now: Date): Promise<string> {
  const key = `run:${Buffer.from(deps.randomBytes(8)).toString('hex')}`;
  await tx.jobs.enqueue(
    { portalId, kind: 'crm.project', key, payload: { members: targets.memberIds, deals: targets.dealIds }, runAt: new Date(now.getTime() + PROJECTION_GRACE_MS) },
    now,
  );
  return key;
}

/** After the commit. A failure is logged, not thrown: the change stands and the job retries. */
export async function projectNow(deps: Deps, installation: Installation, targets: ProjectionTargets, jobKey: string, shown?: Map<string, Projection>): Promise<void> {
  try {
    const { failed } = await writeProjections(deps, installation, targets, shown ? { shown } : {});
    if (!failed.memberIds.length && !failed.dealIds.length) await deps.store.jobs.completeQueued(installation.id, 'crm.project', jobKey, deps.clock.now());
  } catch (e) {
    deps.log.warn({ portalId: installation.id, error: e instanceof Error ? e.message : String(e) }, 'crm.projections_deferred');
  }
}
