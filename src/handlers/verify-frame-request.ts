/**
 * Trusting the page request of a Bitrix24 frame (reference §7.5): the app's main page and the CRM
 * card tabs are POSTed by the portal with `member_id`, `DOMAIN` and, on current portals,
 * `APPLICATION_TOKEN`. Before anything is rendered the portal must be a known, active
 * installation, the DOMAIN (when sent) its stored domain, and the APPLICATION_TOKEN (when sent)
 * equal to the stored one in constant time. A typed verdict, not a throw.
 *
 * Limits: the user's AUTH_ID is not checked here (that would cost a REST call per render); the
 * page carries no portal data, and every API call it makes is checked with `profile`.
 */
import { verifyApplicationToken } from './verify-application-token.js';
import type { Installation, InstallationRepo } from './ports.js';

export interface FrameRequest {
  memberId: string;
  domain: string | null;
  applicationToken: string | null;
}

export type FrameVerdict =
  | { ok: true; installation: Installation }
  | { ok: false; reason: 'unknown_member' | 'not_installed' | 'domain_mismatch' | 'no_token_stored' | 'token_mismatch' };

export async function verifyFrameRequest(installations: Pick<InstallationRepo, 'findByMemberId'>, req: FrameRequest): Promise<FrameVerdict> {
  let installation: Installation | null;
  if (req.applicationToken !== null) {
    const verdict = await verifyApplicationToken(installations, req.memberId, req.applicationToken);
    if (!verdict.ok) return verdict;
    installation = verdict.installation;
  } else {
    installation = await installations.findByMemberId(req.memberId);
    if (!installation) return { ok: false, reason: 'unknown_member' };
  }
  if (installation.status !== 'active') return { ok: false, reason: 'not_installed' };
  if (req.domain !== null && req.domain.toLowerCase() !== installation.domain.toLowerCase()) return { ok: false, reason: 'domain_mismatch' };
  return { ok: true, installation };
}
