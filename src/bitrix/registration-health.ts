/**
 * The installation health's view of the registration (SPEC 4, 7; issue 12): what the portal has
 * of Sarafan's fields, events, placements and robots now, one item per thing the manifest
 * declares. It reads with the reconciliation's own reader and judges with its own pure diff, so
 * "present but wrong" here means exactly "what repair would change or cannot fix". Reads only:
 * nothing is sent but the lists (one batch; a user field list longer than a page adds a call).
 *
 * Known limits: labels are not compared (the list answers one language, as in reconcile.ts); a
 * robot's content cannot be read (`bizproc.robot.list` answers codes), so "outdated" means its
 * definition differs from the one Sarafan last registered successfully.
 */
import { PortalCallError, isAppError } from '../handlers/errors.js';
import type { Installation, RegistrationInspection, RegistrationItem } from '../handlers/ports.js';
import { scrubSecrets } from '../rules/scrub-secrets.js';
import type { Manifest } from './manifest-types.js';
import type { PortalGateway } from './portal-gateway.js';
import { diffRegistration, hasBizprocScope, readRegistration, type PortalRegistration, type RegistrationDiff, type RobotContext } from './reconcile.js';

export async function inspectRegistration(gateway: PortalGateway, manifest: Manifest, installation: Installation): Promise<RegistrationInspection> {
  if (installation.status === 'uninstalled' || !installation.tokens) {
    return { ok: false, error: 'Sarafan is uninstalled from this portal: it holds no tokens to read the portal with.' };
  }
  // Without bizproc the robots cannot be read, and an item per robot would have to guess.
  if (!hasBizprocScope(installation.scope)) {
    return {
      ok: false,
      error: 'Sarafan has no bizproc permission on this portal, so its robots cannot be checked; add bizproc to the app\'s scope and reinstall it.',
    };
  }
  let current: PortalRegistration;
  try {
    current = await readRegistration(gateway, { robots: true });
  } catch (e) {
    return { ok: false, error: unreadable(e) };
  }
  const context: RobotContext = { authUserId: installation.userId, registered: installation.registration?.robots ?? {} };
  return { ok: true, items: registrationItems(manifest, current, diffRegistration(manifest, current, context)) };
}

/** A sentence for an admin; library messages are scrubbed (they may quote a request). */
function unreadable(e: unknown): string {
  const message = scrubSecrets(e instanceof Error ? e.message : String(e));
  const unreachable =
    (isAppError(e) && e.code === 'portal_unavailable') ||
    (e instanceof PortalCallError && (e.code === 'NETWORK_ERROR' || e.code === 'portal_unavailable' || e.status >= 500));
  return unreachable
    ? `The portal could not be reached to read Sarafan's registration (${message}).`
    : `The portal refused to show Sarafan's registration (${message}).`;
}

/** Pure: one item per declared field (per entity), event, placement and robot, in manifest order. */
export function registrationItems(manifest: Manifest, current: PortalRegistration, diff: RegistrationDiff): RegistrationItem[] {
  const problemOf = new Map(diff.problems.map((p) => [p.item, p.error]));
  const commandsOf = (item: string) => diff.commands.filter((c) => c.item === item).map((c) => c.command);
  const items: RegistrationItem[] = [];

  for (const spec of manifest.userFields) {
    const item = `field:${spec.entity}:${spec.fieldName}`;
    const name = `${spec.fieldName} (${spec.entity})`;
    const existing = current.userFields[spec.entity].find((f) => f.FIELD_NAME === spec.fieldName.toUpperCase());
    if (!existing) {
      items.push({ kind: 'field', name, present: false, problem: null });
      continue;
    }
    const update = commandsOf(item).find((c) => c.method.endsWith('.userfield.update'));
    const drifted = update ? Object.keys((update.params?.fields ?? {}) as Record<string, unknown>) : [];
    const problem = problemOf.get(item) ?? (drifted.length ? `${drifted.join(', ')} differ from what Sarafan registers; repair updates them` : null);
    items.push({ kind: 'field', name, present: true, problem });
  }

  const online = current.events.filter((b) => !b.offline);
  for (const spec of manifest.events) {
    const event = spec.event.toUpperCase();
    const bound = online.filter((b) => b.event.toUpperCase() === event);
    const ours = bound.some((b) => b.handler === spec.handler);
    const elsewhere = bound.filter((b) => b.handler !== spec.handler).map((b) => b.handler);
    items.push({
      kind: 'event',
      name: event,
      present: bound.length > 0,
      problem: !ours && elsewhere.length ? `bound to ${elsewhere.join(', ')} instead of ${spec.handler}` : null,
    });
  }

  for (const spec of manifest.placements) {
    const placement = spec.placement.toUpperCase();
    const bound = current.placements.filter((b) => b.placement.toUpperCase() === placement);
    const ours = bound.some((b) => b.handler === spec.handler);
    const elsewhere = bound.filter((b) => b.handler !== spec.handler).map((b) => b.handler);
    items.push({
      kind: 'placement',
      name: placement,
      present: bound.length > 0,
      problem: !ours && elsewhere.length ? `bound to ${elsewhere.join(', ')} instead of ${spec.handler}` : null,
    });
  }

  for (const spec of manifest.robots) {
    const item = `robot:${spec.code}`;
    const present = current.robots?.includes(spec.code) ?? false;
    const outdated = present && commandsOf(item).some((c) => c.method === 'bizproc.robot.update');
    items.push({
      kind: 'robot',
      name: spec.code,
      present,
      problem: problemOf.get(item) ?? (outdated ? 'outdated: its definition is not the one this version of Sarafan registers; repair updates it' : null),
    });
  }
  return items;
}
