import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromMinor, percentOf, toMinor } from '../../../src/rules/money.js';

describe('toMinor', () => {
  it.each<[number | string, number | null]>([
    ['1000.00', 100000],
    ['1000', 100000],
    [1000, 100000],
    [1000.5, 100050],
    ['0.01', 1],
    ['  12.3 ', 1230],
    ['+5', 500],
    ['.5', 50],
    ['5.', 500],
    ['1e3', 100000],
    ['1.5E-1', 15],
    // Half away from zero, decided on the decimal text: 1.005 * 100 is 100.49999999999999 as a float.
    [1.005, 101],
    ['1.005', 101],
    ['1.0049999', 100],
    ['1.004', 100],
    [0.015, 2],
    ['0.005', 1],
    ['0.0049', 0],
    ['-1.005', -101],
    [-0.005, -1],
    ['-0.004', 0],
    ['-12.34', -1234],
    [1e-7, 0],
    ['90071992547409.91', Number.MAX_SAFE_INTEGER],
    ['-90071992547409.91', Number.MIN_SAFE_INTEGER],
  ])('%j → %j', (input, expected) => {
    expect(toMinor(input)).toBe(expected);
  });

  it('never returns a negative zero', () => {
    expect(Object.is(toMinor('-0'), 0)).toBe(true);
    expect(Object.is(toMinor('-0.001'), 0)).toBe(true);
  });

  it.each<unknown>([
    '', '   ', 'abc', '1,5', '1 000', '1.2.3', '--1', '0x10', 'Infinity', '1e400', '1.5 RUB', '1000.00|RUB',
    Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300,
    '90071992547409.92', '9'.repeat(65), null, undefined, {}, [], true,
  ])('%j → null', (input) => {
    expect(toMinor(input as number | string)).toBeNull();
  });

  it('agrees with exact decimal rounding for any amount with up to 6 decimals', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }), fc.integer({ min: 0, max: 6 }), (units, places) => {
        const scale = 10n ** BigInt(places);
        const negative = units < 0n;
        const abs = negative ? -units : units;
        const text = `${negative ? '-' : ''}${abs / scale}${places ? '.' + (abs % scale).toString().padStart(places, '0') : ''}`;
        // Reference: multiply to hundredths, then round the remainder half away from zero.
        const hundredths = abs * 100n;
        let q = hundredths / scale;
        if ((hundredths % scale) * 2n >= scale && places > 2) q += 1n;
        const expected = Number(negative ? -q : q) + 0;
        expect(toMinor(text)).toBe(Number.isSafeInteger(expected) ? expected : null);
      }),
    );
  });
});

describe('fromMinor', () => {
  it.each([
    [12345, 123.45],
    [100000, 1000],
    [1, 0.01],
    [0, 0],
    [-1, -0.01],
    [-12345, -123.45],
    [Number.MAX_SAFE_INTEGER, 90071992547409.91],
  ])('%d → %d', (minor, expected) => {
    expect(fromMinor(minor)).toBe(expected);
  });

  // Beyond 15 significant digits a double cannot hold every hundredth, whatever the code does.
  it('round-trips through toMinor for every amount up to 10^15 minor units', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(10 ** 15), max: 10 ** 15 }), (minor) => {
        expect(toMinor(fromMinor(minor))).toBe(minor);
        expect(toMinor(String(fromMinor(minor)))).toBe(minor);
      }),
    );
  });
});

describe('percentOf', () => {
  it.each([
    [10000, 10, 1000],
    [12345, 10, 1235], // 1234.5 rounds up
    [-12345, 10, -1235], // and symmetric below zero
    [1, 50, 1],
    [-1, 50, -1],
    [1, 49.9999, 0],
    [1005, 10, 101],
    // Float maths gives 1000 * 1.15 / 100 = 11.499999999999998.
    [1000, 1.15, 12],
    [1000, 0.1 + 0.2, 3],
    [250, 33.3333, 83],
    [3, 33.3333, 1],
    [100000, 0.0001, 0],
    [1_000_000, 0.0001, 1],
    [5_000_000, 0.0001, 5],
    [12345, 0, 0],
    [0, 10, 0],
    [10 ** 15, 100, 10 ** 15],
    [Number.MAX_SAFE_INTEGER, 50, 4503599627370496],
  ])('%d × %s percent → %d', (amount, percent, expected) => {
    expect(percentOf(amount, percent)).toBe(expected);
  });

  it('is exact for any percent with up to 4 decimals', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(10 ** 12), max: 10 ** 12 }), fc.integer({ min: 0, max: 1_000_000 }), (amount, tenThousandths) => {
        const product = BigInt(amount) * BigInt(tenThousandths);
        const abs = product < 0n ? -product : product;
        let q = abs / 1_000_000n;
        if ((abs % 1_000_000n) * 2n >= 1_000_000n) q += 1n;
        const expected = Number(product < 0n ? -q : q) + 0;
        expect(percentOf(amount, tenThousandths / 10_000)).toBe(expected);
      }),
    );
  });

  it.each([
    [1.5, 10],
    [Number.NaN, 10],
    [100, Number.NaN],
    [100, Number.POSITIVE_INFINITY],
    [2 ** 60, 10],
  ])('refuses %s × %s percent', (amount, percent) => {
    expect(() => percentOf(amount, percent)).toThrow(RangeError);
  });
});
