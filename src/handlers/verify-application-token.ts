/**
 * Authenticity of inbound Bitrix24 calls (events, robots, ONAPPUNINSTALL): the
 * `auth[application_token]` must equal the token stored for `auth[member_id]`, compared in
 * constant time (SPEC 9; reference §4.3 — it is the only check possible for ONAPPUNINSTALL,
 * which carries no OAuth tokens). Returns a typed verdict instead of throwing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Installation, InstallationRepo } from './ports.js';

export type TokenVerdict =
  | { ok: true; installation: Installation }
  | { ok: false; reason: 'unknown_member' | 'not_installed' | 'no_token_stored' | 'token_mismatch' };

/** Constant-time equality that does not leak the length either (both sides are hashed first). */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

export async function verifyApplicationToken(
  installations: Pick<InstallationRepo, 'findByMemberId'>,
  memberId: string,
  applicationToken: string,
  opts: { allowUninstalled?: boolean } = {},
): Promise<TokenVerdict> {
  const installation = await installations.findByMemberId(memberId);
  if (!installation) return { ok: false, reason: 'unknown_member' };
  if (installation.status === 'uninstalled' && !opts.allowUninstalled) return { ok: false, reason: 'not_installed' };
  if (!installation.applicationToken) return { ok: false, reason: 'no_token_stored' };
  if (!sameSecret(installation.applicationToken, applicationToken)) return { ok: false, reason: 'token_mismatch' };
  return { ok: true, installation };
}
