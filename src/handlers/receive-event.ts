/**
 * POST /b24/events (SPEC 3, 6, 9): every bound event. App lifecycle events are handled here;
 * CRM events are verified and queued durably, keyed per entity so bursts and duplicates
 * coalesce, and answered at once (Bitrix24 does not retry and deprioritises slow handlers —
 * reference §4.4). The worker does the rest.
 *
 * ONAPPINSTALL / ONAPPUPDATE may bring an application token we do not know yet: it is accepted
 * only after the event's OAuth tokens are confirmed — by the OAuth server (refresh exchange)
 * when a refresh token came with it, else by the portal at its stored endpoint (`profile`).
 */
import { AppError } from './errors.js';
import { positiveId } from '../rules/ids.js';
import { crmChangeJob } from './crm-change-job.js';
import { activateIfReady, requireAdminGrant } from './install-app.js';
import { currentProgram } from './program-versions.js';
import { verifyApplicationToken, sameSecret } from './verify-application-token.js';
import type { CrmEntity, Deps, Installation } from './ports.js';

export interface EventAuth {
  /** Null when the request carried none (answered 401, like a wrong one). */
  memberId: string | null;
  applicationToken: string | null;
  accessToken: string | null;
  refreshToken: string | null;
}

export interface InboundEvent {
  /** The event name as it came; null when absent. Validated once the sender is authenticated. */
  event: string | null;
  /** `data[FIELDS][ID]` for CRM events, as it came; validated once the sender is authenticated. */
  rawEntityId: unknown;
  /** ONAPPUNINSTALL: `data[CLEAN]`. */
  clean: boolean;
  auth: EventAuth;
}

/** An event whose sender presented both credentials (not yet checked). */
type CredentialedEvent = InboundEvent & { auth: EventAuth & { memberId: string; applicationToken: string } };

export type EventResult = { status: 'queued' | 'coalesced' | 'handled' };

const CRM_EVENTS: Record<string, { entity: CrmEntity; deleted: boolean }> = {
  ONCRMDEALADD: { entity: 'deal', deleted: false },
  ONCRMDEALUPDATE: { entity: 'deal', deleted: false },
  ONCRMDEALDELETE: { entity: 'deal', deleted: true },
  ONCRMCONTACTADD: { entity: 'contact', deleted: false },
  ONCRMCONTACTUPDATE: { entity: 'contact', deleted: false },
  ONCRMLEADADD: { entity: 'lead', deleted: false },
  ONCRMLEADUPDATE: { entity: 'lead', deleted: false },
};

export function crmEventTarget(event: string): { entity: CrmEntity; deleted: boolean } | null {
  return CRM_EVENTS[event.toUpperCase()] ?? null;
}

/** An event name as it may appear in logs and error messages (it is caller-controlled). */
function printable(name: string): string {
  return /^[A-Z0-9_]{1,64}$/.test(name) ? name : '(unreadable)';
}

export async function receiveEvent(deps: Deps, inbound: InboundEvent): Promise<EventResult> {
  const name = inbound.event?.toUpperCase() ?? null;
  const { memberId, applicationToken } = inbound.auth;
  if (memberId === null || applicationToken === null) {
    deps.log.warn({ memberId, event: name === null ? null : printable(name), reason: 'missing_credentials' }, 'event.rejected');
    throw new AppError('unauthorized', 'Unknown portal or wrong application token');
  }
  const ev: CredentialedEvent = { ...inbound, auth: { ...inbound.auth, memberId, applicationToken } };
  if (name === 'ONAPPINSTALL' || name === 'ONAPPUPDATE') return acceptAppTokens(deps, ev, name);
  if (name === 'ONAPPUNINSTALL') return uninstall(deps, ev);

  const installation = await authenticate(deps, ev, name === null ? '(none)' : printable(name));
  if (name === null) throw new AppError('bad_request', 'Invalid event: event', [{ path: 'event', message: 'required' }]);
  const target = crmEventTarget(name);
  if (!target) {
    // Only the events Sarafan binds (SPEC 4.2) are accepted: anything else is a caller's mistake, not work.
    throw new AppError('bad_request', 'Invalid event: event', [{ path: 'event', message: `${printable(name)} is not an event Sarafan handles` }]);
  }
  const entityId = positiveId(ev.rawEntityId);
  if (entityId === null) {
    throw new AppError('bad_request', 'Invalid event: data.FIELDS.ID', [{ path: 'data.FIELDS.ID', message: 'expected a positive integer' }]);
  }
  const now = deps.clock.now();
  // Side by side: the note is a no-op for all but one event a minute per portal, and runs while
  // the enqueue waits for its group commit.
  const [queued] = await Promise.all([
    deps.store.jobs.enqueue(crmChangeJob(installation.id, target.entity, entityId, target.deleted, { event: name }), now),
    noteEvent(deps, installation.id, now),
  ]);
  return { status: queued ? 'queued' : 'coalesced' };
}

/**
 * The installation health's "last event received" (issue 12). A column written at most once a
 * minute per portal (InstallationRepo.noteEvent), rather than derived from the jobs table: done
 * jobs are purged after a week, queued ones coalesce (a busy entity keeps its first job's time),
 * and reading the newest of a portal's jobs would need an index every event pays for. A failure
 * to note it is logged, and does not fail an event whose job is durably queued.
 */
async function noteEvent(deps: Deps, portalId: number, at: Date): Promise<void> {
  try {
    await deps.store.installations.noteEvent(portalId, at);
  } catch (e) {
    deps.log.warn({ portalId, error: e instanceof Error ? e.message : String(e) }, 'event.note_failed');
  }
}

async function authenticate(deps: Deps, ev: CredentialedEvent, name: string, allowUninstalled = false): Promise<Installation> {
  const verdict = await verifyApplicationToken(deps.store.installations, ev.auth.memberId, ev.auth.applicationToken, { allowUninstalled });
  if (!verdict.ok) {
    deps.log.warn({ memberId: ev.auth.memberId, event: name, reason: verdict.reason }, 'event.rejected');
    throw new AppError('unauthorized', 'Unknown portal or wrong application token');
  }
  return verdict.installation;
}

async function uninstall(deps: Deps, ev: CredentialedEvent): Promise<EventResult> {
  const installation = await authenticate(deps, ev, 'ONAPPUNINSTALL');
  await deps.store.installations.markUninstalled(installation.id, deps.clock.now(), ev.clean);
  deps.gateways.forget(installation.memberId);
  deps.log.info({ memberId: installation.memberId, clean: ev.clean }, 'install.uninstalled');
  return { status: 'handled' };
}

async function acceptAppTokens(deps: Deps, ev: CredentialedEvent, name: string): Promise<EventResult> {
  const { store } = deps;
  const existing = await store.installations.findByMemberId(ev.auth.memberId);
  const known =
    existing !== null &&
    existing.status !== 'uninstalled' &&
    existing.applicationToken !== null &&
    sameSecret(existing.applicationToken, ev.auth.applicationToken);

  let installation = existing;
  if (!known) {
    installation = await confirmNewToken(deps, ev, existing, name);
  }
  if (!installation) throw new AppError('unauthorized', 'Unknown portal or wrong application token');
  await currentProgram(store.programs, installation.id, deps.clock.now());
  if (name === 'ONAPPUPDATE' || !installation.registration) {
    // A new version may have dropped our bindings (reference §1.7): reconcile in the background.
    await store.jobs.enqueue({ portalId: installation.id, kind: 'app.reconcile', key: 'registration', payload: { reason: name } }, deps.clock.now());
  } else {
    await activateIfReady(deps, installation.id);
  }
  deps.log.info({ memberId: installation.memberId, event: name, tokenRotated: !known }, 'install.app_event');
  return { status: 'handled' };
}

async function confirmNewToken(deps: Deps, ev: CredentialedEvent, existing: Installation | null, name: string): Promise<Installation> {
  const now = deps.clock.now();
  if (ev.auth.refreshToken) {
    const grant = await deps.oauth.refresh(ev.auth.refreshToken);
    if (grant.memberId !== ev.auth.memberId) throw new AppError('unauthorized', 'The OAuth server confirmed the tokens of another portal');
    await requireAdminGrant(deps, grant);
    const installation = await deps.store.installations.upsertVerified(
      {
        memberId: grant.memberId,
        domain: new URL(grant.clientEndpoint).host,
        clientEndpoint: grant.clientEndpoint,
        serverEndpoint: grant.serverEndpoint,
        scope: grant.scope,
        userId: grant.userId,
        tokens: { accessToken: grant.accessToken, refreshToken: grant.refreshToken, expiresAt: grant.expiresAt },
        applicationToken: ev.auth.applicationToken,
      },
      now,
    );
    deps.gateways.forget(installation.memberId);
    return installation;
  }
  if (existing && existing.status !== 'uninstalled' && ev.auth.accessToken) {
    // Without a refresh token only the portal can vouch, and only for an administrator.
    const user = await deps.gateways.whoIs(existing, ev.auth.accessToken);
    if (user?.isAdmin) {
      await deps.store.installations.setApplicationToken(existing.id, ev.auth.applicationToken);
      return (await deps.store.installations.get(existing.id)) ?? existing;
    }
  }
  deps.log.warn({ memberId: ev.auth.memberId, event: name }, 'event.rejected');
  throw new AppError('unauthorized', 'The tokens of this event could not be confirmed');
}
