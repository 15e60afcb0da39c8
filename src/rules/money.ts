/**
 * Money in minor units (kopecks). Rounding, defined once here: every result that falls between
 * two minor units — a percent reward, a converted amount, a decimal parsed with more than two
 * places — is computed exactly (BigInt over the decimal digits) and rounded ONCE, half away from
 * zero (10 % of 0.05 = 0.005 → 0.01; −0.005 → −0.01). Decimal inputs are parsed from their decimal text rather than
 * multiplied as floats: 1.005 * 100 is 100.49999999999999 in IEEE doubles, and a ledger must not
 * lose a kopeck to that.
 */

interface Decimal {
  negative: boolean;
  /** The value is digits × 10^-scale. */
  digits: bigint;
  scale: number;
}

// Longer texts are not amounts; the cap also bounds the BigInt powers below.
const MAX_TEXT = 64;
const DECIMAL = /^([+-])?(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:e([+-]?\d+))?$/i;

function parseDecimal(value: number | string): Decimal | null {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    // String() gives the shortest text that round-trips, i.e. the decimal the caller meant.
    text = String(value);
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    return null;
  }
  if (text.length === 0 || text.length > MAX_TEXT) return null;
  const m = DECIMAL.exec(text);
  if (!m) return null;
  const whole = m[2] ?? '';
  const fraction = m[3] ?? m[4] ?? '';
  const exponent = m[5] === undefined ? 0 : Number(m[5]);
  return {
    negative: m[1] === '-',
    digits: BigInt(whole + fraction || '0'),
    scale: fraction.length - exponent,
  };
}

/** Rounds half away from zero to `decimals` places; the result is value × 10^decimals. */
function scaled(d: Decimal, decimals: number): bigint | null {
  const shift = d.scale - decimals;
  let magnitude: bigint;
  if (shift <= 0) {
    // A large positive exponent only ever means "too big"; refuse before building a huge power.
    if (-shift > MAX_TEXT) return d.digits === 0n ? 0n : null;
    magnitude = d.digits * 10n ** BigInt(-shift);
  } else if (shift > MAX_TEXT + 2) {
    magnitude = 0n;
  } else {
    const divisor = 10n ** BigInt(shift);
    magnitude = d.digits / divisor;
    if ((d.digits % divisor) * 2n >= divisor) magnitude += 1n;
  }
  return d.negative ? -magnitude : magnitude;
}

function toSafeNumber(value: bigint): number | null {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) return null;
  // `+ 0` turns a negative zero into zero.
  return Number(value) + 0;
}

/**
 * Parses an amount in major units ("1000.00", "1000", 1000.5) into minor units, rounding half
 * away from zero to whole kopecks. Null when it is not a finite decimal or does not fit a safe
 * integer.
 */
export function toMinor(value: number | string): number | null {
  const d = parseDecimal(value);
  if (!d) return null;
  const minor = scaled(d, 2);
  return minor === null ? null : toSafeNumber(minor);
}

/** 12345 → 123.45. Integer division by 100 is correctly rounded, so this equals the literal. */
export function fromMinor(minor: number): number {
  return minor / 100 + 0;
}

// 100 % expressed with the four percent decimals that pricing keeps exact.
const PERCENT_DENOMINATOR = 100n * 10_000n;

/**
 * `percent` % of an amount in minor units, rounded half away from zero to a whole minor unit.
 * Exact for percents with up to 4 decimals (more are rounded to 4 first).
 */
export function percentOf(amountMinor: number, percent: number): number {
  if (!Number.isSafeInteger(amountMinor)) throw new RangeError(`Amount must be an integer in minor units, got ${amountMinor}`);
  const p = parseDecimal(percent);
  const p4 = p ? scaled(p, 4) : null;
  if (p4 === null) throw new RangeError(`Percent must be a finite number, got ${percent}`);
  const product = BigInt(amountMinor) * p4;
  const negative = product < 0n;
  const magnitude = negative ? -product : product;
  let quotient = magnitude / PERCENT_DENOMINATOR;
  if ((magnitude % PERCENT_DENOMINATOR) * 2n >= PERCENT_DENOMINATOR) quotient += 1n;
  const result = toSafeNumber(negative ? -quotient : quotient);
  if (result === null) throw new RangeError(`${percent} % of ${amountMinor} does not fit a safe integer`);
  return result;
}

/** Decimal places a conversion rate is kept with (and recorded on the ledger). */
export const RATE_PLACES = 10;

/**
 * `numerator / denominator` of two decimal texts as a rate with RATE_PLACES decimals, rounded
 * half away from zero; null when either is not a positive decimal.
 */
export function divideRates(numerator: string, denominator: string): string | null {
  const n = parseDecimal(numerator);
  const d = parseDecimal(denominator);
  if (!n || !d || n.negative || d.negative || n.digits === 0n || d.digits === 0n) return null;
  // n/d = (n.digits / d.digits) × 10^(d.scale − n.scale); scale the numerator so the quotient has RATE_PLACES decimals.
  const shift = RATE_PLACES + n.scale * -1 + d.scale;
  if (Math.abs(shift) > MAX_TEXT + RATE_PLACES) return null;
  const num = shift >= 0 ? n.digits * 10n ** BigInt(shift) : n.digits;
  const den = shift >= 0 ? d.digits : d.digits * 10n ** BigInt(-shift);
  let q = num / den;
  if ((num % den) * 2n >= den) q += 1n;
  if (q === 0n) return null;
  const text = q.toString().padStart(RATE_PLACES + 1, '0');
  return `${text.slice(0, -RATE_PLACES)}.${text.slice(-RATE_PLACES)}`;
}

/**
 * An amount in minor units of one currency × a rate (decimal text: one unit of it in the other
 * currency), in minor units of the other, rounded half away from zero — the same rule as
 * percentOf, applied once to the exact product.
 */
export function convertMinor(amountMinor: number, rate: string): number {
  if (!Number.isSafeInteger(amountMinor)) throw new RangeError(`Amount must be an integer in minor units, got ${amountMinor}`);
  const r = parseDecimal(rate);
  if (!r || r.negative || r.scale < 0) throw new RangeError(`Rate must be a non-negative decimal, got ${rate}`);
  const product = BigInt(amountMinor) * r.digits;
  const divisor = 10n ** BigInt(r.scale);
  const negative = product < 0n;
  const magnitude = negative ? -product : product;
  let quotient = magnitude / divisor;
  if ((magnitude % divisor) * 2n >= divisor) quotient += 1n;
  const result = toSafeNumber(negative ? -quotient : quotient);
  if (result === null) throw new RangeError(`${amountMinor} × ${rate} does not fit a safe integer`);
  return result;
}
