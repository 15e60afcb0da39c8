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
import { crmChangeJob } from './crm-change-job.js';
import { positiveId } from './crm-entities.js';
import { activateIfReady, requireAdminGrant } from './install-app.js';
import { currentProgram } from './program-versions.js';
import { verifyApplicationToken, sameSecret } from './verify-application-token.js';
import type { CrmEntity, Deps, Installation } from './ports.js';

export interface EventAuth {
  memberId: string;
  applicationToken: string;
  accessToken: string | null;
  refreshToken: string | null;
}

export interface InboundEvent {
  event: string;
  /** `data[FIELDS][ID]` for CRM events, as it came; validated once the sender is authenticated. */
  rawEntityId: unknown;
  /** ONAPPUNINSTALL: `data[CLEAN]`. */
  clean: boolean;
  auth: EventAuth;
}

export type EventResult = { status: 'queued' | 'coalesced' | 'handled' | 'ignored' };

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

export async function receiveEvent(deps: Deps, ev: InboundEvent): Promise<EventResult> {
  const name = ev.event.toUpperCase();
  if (name === 'ONAPPINSTALL' || name === 'ONAPPUPDATE') return acceptAppTokens(deps, ev, name);
  if (name === 'ONAPPUNINSTALL') return uninstall(deps, ev);

  const installation = await authenticate(deps, ev, name);
  const target = crmEventTarget(name);
  if (!target) {
    deps.log.info({ memberId: ev.auth.memberId, event: name }, 'event.ignored');
    return { status: 'ignored' };
  }
  const entityId = positiveId(ev.rawEntityId);
  if (entityId === null) {
    throw new AppError('bad_request', 'Invalid event: data.FIELDS.ID', [{ path: 'data.FIELDS.ID', message: 'expected a positive integer' }]);
  }
  const queued = await deps.store.jobs.enqueue(crmChangeJob(installation.id, target.entity, entityId, target.deleted, { event: name }), deps.clock.now());
  return { status: queued ? 'queued' : 'coalesced' };
}

async function authenticate(deps: Deps, ev: InboundEvent, name: string, allowUninstalled = false): Promise<Installation> {
  const verdict = await verifyApplicationToken(deps.store.installations, ev.auth.memberId, ev.auth.applicationToken, { allowUninstalled });
  if (!verdict.ok) {
    deps.log.warn({ memberId: ev.auth.memberId, event: name, reason: verdict.reason }, 'event.rejected');
    throw new AppError('unauthorized', 'Unknown portal or wrong application token');
  }
  return verdict.installation;
}

async function uninstall(deps: Deps, ev: InboundEvent): Promise<EventResult> {
  const installation = await authenticate(deps, ev, 'ONAPPUNINSTALL');
  await deps.store.installations.markUninstalled(installation.id, deps.clock.now(), ev.clean);
  deps.gateways.forget(installation.memberId);
  deps.log.info({ memberId: installation.memberId, clean: ev.clean }, 'install.uninstalled');
  return { status: 'handled' };
}

async function acceptAppTokens(deps: Deps, ev: InboundEvent, name: string): Promise<EventResult> {
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

async function confirmNewToken(deps: Deps, ev: InboundEvent, existing: Installation | null, name: string): Promise<Installation> {
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
