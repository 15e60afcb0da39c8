/**
 * JSON API authentication (SPEC 3): the frame sends the user's Bitrix24 access token and the
 * portal's member_id. The token is checked by calling `profile` on the portal's *stored*
 * endpoint (never a host named by the request), which also tells whether the user is admin.
 */
import { AppError } from './errors.js';
import type { Deps, Installation, PortalUser } from './ports.js';

export interface ApiCaller extends PortalUser {
  installation: Installation;
}

export async function authenticateUser(deps: Deps, memberId: string, accessToken: string): Promise<ApiCaller> {
  const installation = await deps.store.installations.findByMemberId(memberId);
  if (!installation || installation.status === 'uninstalled') {
    throw new AppError('unauthorized', 'Unknown portal');
  }
  const user = await deps.gateways.whoIs(installation, accessToken);
  if (!user) throw new AppError('unauthorized', 'The portal did not accept the access token');
  return { ...user, installation };
}

export function requireAdmin(caller: ApiCaller): void {
  if (!caller.isAdmin) throw new AppError('forbidden', 'Only a portal administrator may do this');
}
