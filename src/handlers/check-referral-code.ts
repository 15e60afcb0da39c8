/**
 * GET /api/codes/:code (SPEC 7 deal tab: "type a code with validation as you type"): whether a
 * referral code a manager types is one of this portal's, normalized exactly as crediting
 * normalizes a code from a CRM field (src/rules/codes.ts: case, spaces, a dash and Cyrillic
 * look-alikes forgiven), and whose it is. Codes a member was given earlier count, as they do when
 * crediting. Read within the caller's portal: another portal's code is `unknown_code`.
 *
 * Limits: it says whose the code is, not whether a referral from it would be accepted for a given
 * client (self-referral, already a customer and cycles are decided when the referral is recorded).
 */
import type { CodeCheckAnswer } from '../contract/api.js';
import { normalizeCode } from '../rules/codes.js';
import { personOf } from './ledger-view.js';
import type { Deps, Installation } from './ports.js';

export async function checkReferralCode(deps: Deps, installation: Installation, typed: string): Promise<CodeCheckAnswer> {
  const code = normalizeCode(typed);
  if (code === null) return { code: typed.trim(), valid: false, reason: 'malformed' };
  const referrer = personOf(await deps.store.members.findByCode(installation.id, code));
  if (!referrer) return { code, valid: false, reason: 'unknown_code' };
  return { code, valid: true, referrer };
}
