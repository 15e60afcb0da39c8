/**
 * The install wizard (reference §1.2–1.4): Bitrix24 POSTs the installing admin's tokens to
 * /b24/install. The installation is trusted only after the OAuth server confirms them by a
 * refresh exchange; the REST endpoint comes from that answer, never from the form (SPEC 9).
 * Then registration is reconciled (SPEC 4) and the page finishes the install in the frame.
 *
 * Limits: the form's DOMAIN is informational; the confirmed client endpoint wins.
 */
import { AppError } from './errors.js';
import { currentProgram } from './program-versions.js';
import type { Deps, Installation, OAuthGrant, RegistrationReport } from './ports.js';

export interface InstallForm {
  memberId: string;
  domain: string;
  refreshToken: string;
  applicationToken: string | null;
  /** The wizard's LANG (two lower-case letters), when it sent one. */
  lang?: string;
}

export interface InstallResult {
  installation: Installation;
  report: RegistrationReport;
}

export async function installApp(deps: Deps, form: InstallForm): Promise<InstallResult> {
  const grant = await deps.oauth.refresh(form.refreshToken);
  if (grant.memberId !== form.memberId) {
    deps.log.warn({ memberId: form.memberId }, 'install.member_mismatch');
    throw new AppError('install_unverified', 'The OAuth server confirmed the tokens of another portal');
  }
  await requireAdminGrant(deps, grant);
  const now = deps.clock.now();
  const domain = new URL(grant.clientEndpoint).host;
  if (form.domain && form.domain.toLowerCase() !== domain.toLowerCase()) {
    deps.log.warn({ memberId: form.memberId, formDomain: form.domain, domain }, 'install.domain_differs');
  }
  const installation = await deps.store.installations.upsertVerified(
    {
      memberId: grant.memberId,
      domain,
      clientEndpoint: grant.clientEndpoint,
      serverEndpoint: grant.serverEndpoint,
      scope: grant.scope,
      userId: grant.userId,
      tokens: { accessToken: grant.accessToken, refreshToken: grant.refreshToken, expiresAt: grant.expiresAt },
      ...(form.applicationToken ? { applicationToken: form.applicationToken } : {}),
      ...(form.lang ? { lang: form.lang } : {}),
    },
    now,
  );
  deps.gateways.forget(installation.memberId);
  deps.log.info({ memberId: installation.memberId, portalId: installation.id }, 'install.verified');
  await currentProgram(deps.store.programs, installation.id, now);
  const report = await reconcileInstallation(deps, installation);
  return { installation: (await deps.store.installations.get(installation.id)) ?? installation, report };
}

/**
 * The OAuth server proves a token pair belongs to our app on that portal, not that its user
 * may install it: any user's frame tokens would pass. Only an administrator's confirmed tokens
 * may (re)install, become the stored tokens, or bring a new application token.
 */
export async function requireAdminGrant(deps: Deps, grant: OAuthGrant): Promise<void> {
  const user = await deps.gateways.whoIs({ memberId: grant.memberId, clientEndpoint: grant.clientEndpoint }, grant.accessToken);
  if (!user?.isAdmin) {
    deps.log.warn({ memberId: grant.memberId, userId: user?.userId ?? null }, 'install.not_admin');
    throw new AppError('forbidden', 'Only a portal administrator can install Sarafan or change its application token');
  }
}

/** Registration reconciliation + the new → active transition once the portal can reach us. */
export async function reconcileInstallation(deps: Deps, installation: Installation): Promise<RegistrationReport> {
  const report = await deps.registrar.reconcile(installation);
  await deps.store.installations.saveRegistration(installation.id, report);
  deps.log.info(
    { memberId: installation.memberId, created: report.created.length, updated: report.updated.length, failed: report.failed.length },
    'install.reconciled',
  );
  if (report.failed.length) {
    deps.log.warn({ memberId: installation.memberId, failed: report.failed }, 'install.reconcile_failed');
  }
  await activateIfReady(deps, installation.id);
  return report;
}

/**
 * new → active when registration succeeded and the application token is known. The history
 * backfill (SPEC 6) is queued first, so an installation never becomes active without it.
 * Robots are not required: a portal whose app lacks the `bizproc` scope (or refused a robot)
 * still runs the program; the failure stays in the report and the next reconciliation retries.
 */
export async function activateIfReady(deps: Deps, portalId: number): Promise<void> {
  const inst = await deps.store.installations.get(portalId);
  if (!inst || inst.status !== 'new') return;
  const blocking = inst.registration?.failed.filter((f) => !f.item.startsWith('robot:')) ?? [];
  if (!inst.applicationToken || !inst.registration || blocking.length) return;
  await deps.store.jobs.enqueue({ portalId, kind: 'backfill.crm', key: 'history', payload: {} }, deps.clock.now());
  await deps.store.installations.activate(portalId, deps.clock.now());
  deps.log.info({ memberId: inst.memberId, portalId }, 'install.finished');
}
