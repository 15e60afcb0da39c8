/**
 * Promo codes (SPEC 5 promo-code campaigns): one-time codes printed on products and typed back by
 * a manager, so they use the referral-code alphabet (no look-alikes) and the same forgiving input
 * (normalizeCode). Eight characters: 31^8 ≈ 8.5 × 10^11 codes keeps collisions rare even for
 * campaigns of 100 000 codes, and the store's unique index settles the rare one.
 */
import { MAX_CODE_LENGTH, generateCode } from './codes.js';

export const PROMO_CODE_LENGTH = MAX_CODE_LENGTH;
export const MAX_PROMO_CAMPAIGN_CODES = 100_000;

/** `count` distinct fresh codes (distinct among themselves; the store checks the portal's). */
export function generatePromoCodes(randomBytes: (n: number) => Uint8Array, count: number): string[] {
  if (!Number.isInteger(count) || count < 0 || count > MAX_PROMO_CAMPAIGN_CODES) throw new RangeError(`count must be 0..${MAX_PROMO_CAMPAIGN_CODES}, got ${count}`);
  const codes = new Set<string>();
  while (codes.size < count) codes.add(generateCode(randomBytes, { length: PROMO_CODE_LENGTH }));
  return [...codes];
}
