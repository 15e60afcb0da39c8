import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CODE_ALPHABET, normalizeCode } from '../../../src/rules/codes.js';
import { MAX_PROMO_CAMPAIGN_CODES, PROMO_CODE_LENGTH, generatePromoCodes } from '../../../src/rules/promo-codes.js';

describe('generatePromoCodes', () => {
  it('gives the asked number of distinct codes from the alphabet without look-alikes', () => {
    const codes = generatePromoCodes((n) => randomBytes(n), 10_000);
    expect(codes).toHaveLength(10_000);
    expect(new Set(codes).size).toBe(10_000);
    const allowed = new RegExp(`^[${CODE_ALPHABET}]{${PROMO_CODE_LENGTH}}$`);
    for (const code of codes) {
      expect(code).toMatch(allowed);
      // What a person types back (lower case, a space) finds the same code.
      expect(normalizeCode(` ${code.toLowerCase()} `)).toBe(code);
    }
    expect(codes.join('')).not.toMatch(/[01OIL]/);
  });

  it('keeps codes distinct even when the random source repeats itself', () => {
    // A source that gives the same bytes twice in a row: the duplicate is drawn again.
    let call = 0;
    const source = (n: number) => {
      const seed = Math.floor(call++ / 2);
      return Uint8Array.from({ length: n }, (_, i) => (seed * 7 + i * 13) % 248);
    };
    // (It can make only 31 distinct codes: ask for 30.)
    const codes = generatePromoCodes(source, 30);
    expect(new Set(codes).size).toBe(30);
  });

  it('refuses counts out of range', () => {
    expect(() => generatePromoCodes((n) => randomBytes(n), MAX_PROMO_CAMPAIGN_CODES + 1)).toThrow(RangeError);
    expect(() => generatePromoCodes((n) => randomBytes(n), 1.5)).toThrow(RangeError);
    expect(generatePromoCodes((n) => randomBytes(n), 0)).toEqual([]);
  });
});
