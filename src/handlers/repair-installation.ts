/**
 * POST /api/health/repair (SPEC 4 "repair installation", issue 12): re-runs the registration
 * reconciliation — fields, events, placements and robots missing or wrong on the portal are
 * added or fixed, nothing else is sent — and queues a CRM reconciliation (the same deduplicated
 * `reconcile.crm` job the scheduler queues), so changes whose events were lost while the
 * bindings were missing are caught up. Answers what was repaired and the health after it.
 *
 * Known limits: a field whose type differs cannot be repaired (it may hold data); it stays in
 * the health with its problem. A portal that cannot be reached fails the request (503), and
 * nothing is queued.
 */
import type { RepairAnswer, RegistrationItem } from '../contract/admin.js';
import { AppError } from './errors.js';
import { reconcileInstallation } from './install-app.js';
import type { Deps, Installation } from './ports.js';
import { readHealth } from './read-health.js';

export async function repairInstallation(deps: Deps, installation: Installation): Promise<RepairAnswer> {
  if (installation.status === 'uninstalled' || !installation.tokens) {
    throw new AppError('conflict', 'Sarafan is uninstalled from this portal: reinstall it instead', [], { reason: 'uninstalled' });
  }
  const report = await reconcileInstallation(deps, installation);
  // The reconciliation may have activated a new installation; the CRM scan needs an active one.
  const current = (await deps.store.installations.get(installation.id)) ?? installation;
  if (current.status === 'active') {
    await deps.store.jobs.enqueue({ portalId: current.id, kind: 'reconcile.crm', key: 'reconcile.crm', payload: { reason: 'repair' } }, deps.clock.now());
  }
  const repaired = repairedItems([...report.created, ...report.updated]);
  deps.log.info({ memberId: current.memberId, repaired: repaired.length, failed: report.failed.length }, 'health.repaired');
  return { repaired, health: await readHealth(deps, current) };
}

/** Report items (`field:contact:UF_…`, `event:…`) named as the health names them, once each. */
function repairedItems(reportItems: string[]): { kind: RegistrationItem['kind']; name: string }[] {
  const out = new Map<string, { kind: RegistrationItem['kind']; name: string }>();
  for (const item of reportItems) {
    const [kind, ...rest] = item.split(':');
    let entry: { kind: RegistrationItem['kind']; name: string } | null = null;
    if (kind === 'field' && rest.length === 2) entry = { kind, name: `${rest[1]} (${rest[0]})` };
    else if ((kind === 'event' || kind === 'placement' || kind === 'robot') && rest.length) entry = { kind, name: rest.join(':') };
    if (entry) out.set(`${entry.kind} ${entry.name}`, entry);
  }
  return [...out.values()];
}
