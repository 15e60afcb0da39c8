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

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time equality that does not leak the length either (both sides are hashed first). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * Digests of the tokens we store, kept: every event of a burst is checked against the same one,
 * so only the presented side is hashed per event. Bounded (one entry per portal's token).
 */
const storedDigests = new Map<string, Buffer>();
const MAX_STORED_DIGESTS = 10_000;

function storedDigest(token: string): Buffer {
  let d = storedDigests.get(token);
  if (!d) {
    if (storedDigests.size >= MAX_STORED_DIGESTS) storedDigests.clear();
    d = digest(token);
    storedDigests.set(token, d);
  }
  return d;
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
  if (!timingSafeEqual(storedDigest(installation.applicationToken), digest(applicationToken))) return { ok: false, reason: 'token_mismatch' };
  return { ok: true, installation };
}
