import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODE_ALPHABET, generateCode, normalizeCode } from '../../../src/rules/codes.js';

/** A random source that plays back `bytes` and then zeros. */
function playback(bytes: number[]): (n: number) => Uint8Array {
  const queue = [...bytes];
  return (n) => Uint8Array.from({ length: n }, () => queue.shift() ?? 0);
}

describe('CODE_ALPHABET', () => {
  it('has digits and upper-case letters without look-alikes, each once', () => {
    expect(CODE_ALPHABET).toMatch(/^[2-9A-Z]+$/);
    for (const c of '01OIL') expect(CODE_ALPHABET).not.toContain(c);
    expect(new Set(CODE_ALPHABET).size).toBe(CODE_ALPHABET.length);
    expect(CODE_ALPHABET.length).toBe(31);
  });
});

describe('generateCode', () => {
  it.each<[number[], { length?: number; prefix?: string }, string]>([
    [[0, 1, 2, 3, 4, 5, 6], {}, '2345678'],
    [[0, 1, 2, 3, 4, 5], { length: 6 }, '234567'],
    [[30, 31, 61, 62, 92, 93, 123, 124], { length: 8 }, 'Z2Z2Z2Z2'],
    [[0, 1, 2, 3, 4, 5, 6], { prefix: 'SHOP' }, 'SHOP2345678'],
    [[0, 1, 2, 3, 4, 5, 6], { prefix: 'shop' }, 'SHOP2345678'],
    [[0, 1, 2, 3, 4, 5, 6], { prefix: '' }, '2345678'],
    // 248..255 would favour the first 8 symbols: they are skipped, not folded.
    [[248, 255, 0, 250, 30, 247, 252, 1, 2, 3, 4], {}, '2ZZ3456'],
  ])('bytes %j with %j → %s', (bytes, opts, expected) => {
    expect(generateCode(playback(bytes), opts)).toBe(expected);
  });

  it('gives every symbol exactly 8 of the 256 byte values and skips the other 8 (no modulo bias)', () => {
    const hits = new Map<string, number>();
    for (let b = 0; b < 256; b++) {
      // Byte 30 is 'Z'; 248..255 would fold onto '2'..'9', so a skipped byte is visible.
      const code = generateCode(playback([b, 30, 30, 30, 30, 30, 30]), { length: 6 });
      if (b >= 248) {
        expect(code).toBe('ZZZZZZ');
      } else {
        expect(code).toBe(CODE_ALPHABET[b % 31] + 'ZZZZZ');
        hits.set(code[0]!, (hits.get(code[0]!) ?? 0) + 1);
      }
    }
    expect(hits.size).toBe(31);
    expect(new Set(hits.values())).toEqual(new Set([8]));
  });

  it.each([5, 9, 6.5, 0, Number.NaN])('refuses length %d', (length) => {
    expect(() => generateCode(playback([]), { length })).toThrow(RangeError);
  });

  it.each(['SHOP-1', 'TOOLONG', 'ÄB', ' A'])('refuses prefix %j', (prefix) => {
    expect(() => generateCode(playback([]), { prefix })).toThrow(RangeError);
  });

  it('gives up on a source that never yields a usable byte', () => {
    expect(() => generateCode((n) => new Uint8Array(n).fill(255))).toThrow(/random source/);
    expect(() => generateCode(() => new Uint8Array(0))).toThrow(/random source/);
  });

  it('produces codes that normalizeCode accepts unchanged, whatever the case the person types', () => {
    fc.assert(
      fc.property(fc.integer({ min: 6, max: 8 }), fc.stringMatching(/^[A-Z0-9]{0,6}$/), (length, prefix) => {
        const code = generateCode(randomBytes, { length, prefix });
        expect(code).toMatch(new RegExp(`^${prefix}[${CODE_ALPHABET}]{${length}}$`));
        expect(normalizeCode(code)).toBe(code);
        expect(normalizeCode(code.toLowerCase())).toBe(code);
        expect(normalizeCode(` ${prefix.toLowerCase()}-${code.slice(prefix.length)} `)).toBe(code);
      }),
    );
  });
});

describe('normalizeCode', () => {
  it.each<[unknown, string | null]>([
    ['ABC2345', 'ABC2345'],
    ['abc2345', 'ABC2345'],
    ['  abc2345\n', 'ABC2345'],
    ['ab c23 45', 'ABC2345'],
    ['AB\u00a0C2345', 'ABC2345'],
    ['shop-7kx3m9a', 'SHOP7KX3M9A'],
    ['SHOP7KX3M9A', 'SHOP7KX3M9A'],
    ['Shop - 7kx3m9a', 'SHOP7KX3M9A'],
    ['L0-ABCDEF', 'L0ABCDEF'], // the prefix may use any letter or digit
    ['-ABCDEF', 'ABCDEF'],
    ['7KX3M9', '7KX3M9'],
    ['7KX3M9AB', '7KX3M9AB'],
    ['ABCDEFGHJ', 'ABCDEFGHJ'], // read as a prefix plus a code
    ['АВС2345', 'ABC2345'], // Cyrillic А, В, С typed for the Latin letters
    ['A'.repeat(17) + '-ABCDEF', 'A'.repeat(17) + 'ABCDEF'], // 24 characters
    ['A'.repeat(18) + 'ABCDEF', 'A'.repeat(18) + 'ABCDEF'],
    ['A'.repeat(18) + '-ABCDEF', null], // 25
    ['A'.repeat(19) + 'ABCDEF', null],
    ['7KX3M', null],
    ['-7KX3M9ABC', null], // 9 after the dash
    ['AB--CDEFGH', null],
    ['AB-CD-EFGHJK', null],
    ['ABCDE0', null],
    ['ABCDEO', null],
    ['ABCDE1', null],
    ['abcdei', null],
    ['abcdel', null],
    ['ABC_DEFGH', null],
    ['ÀBCDEFG', null],
    ['SHOP-', null],
    ['', null],
    ['   ', null],
    [null, null],
    [undefined, null],
    [234567, null],
    [['ABCDEF'], null],
    [{}, null],
  ])('%j → %j', (input, expected) => {
    expect(normalizeCode(input)).toBe(expected);
  });
});
