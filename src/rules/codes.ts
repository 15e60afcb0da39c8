/**
 * Referral codes (SPEC 5): 6–8 characters people read aloud and retype, so the alphabet leaves
 * out look-alikes (0/O, 1/I/L), and input is forgiving about case, spaces and a dash.
 */

export const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';

export const MIN_CODE_LENGTH = 6;
export const MAX_CODE_LENGTH = 8;
export const DEFAULT_CODE_LENGTH = 7;
const MAX_TOTAL_LENGTH = 24;
const PREFIX = /^[A-Z0-9]{0,6}$/;

// Bytes at or above this would make the first symbols more likely than the rest (256 % 31 ≠ 0).
const UNBIASED_LIMIT = 256 - (256 % CODE_ALPHABET.length);
// A healthy source rejects 3 % of bytes; this many empty rounds means it is broken, not unlucky.
const MAX_ROUNDS = 64;

export interface GenerateCodeOptions {
  length?: number;
  /** The portal's prefix (program `enrol.codePrefix`), written before the random part. */
  prefix?: string;
}

/**
 * A fresh code: the prefix followed directly by `length` random alphabet characters. No dash is
 * stored, because normalizeCode drops it from input: "SHOP-7KX3M9A" and "shop7kx3m9a" must find
 * the same member.
 */
export function generateCode(randomBytes: (n: number) => Uint8Array, opts: GenerateCodeOptions = {}): string {
  const length = opts.length ?? DEFAULT_CODE_LENGTH;
  if (!Number.isInteger(length) || length < MIN_CODE_LENGTH || length > MAX_CODE_LENGTH) {
    throw new RangeError(`Code length must be ${MIN_CODE_LENGTH}..${MAX_CODE_LENGTH}, got ${length}`);
  }
  const prefix = (opts.prefix ?? '').toUpperCase();
  if (!PREFIX.test(prefix)) throw new RangeError(`Code prefix must be up to 6 letters or digits, got "${opts.prefix}"`);

  let body = '';
  for (let round = 0; body.length < length; round++) {
    if (round >= MAX_ROUNDS) throw new Error('The random source keeps returning unusable bytes');
    for (const byte of randomBytes(length * 2)) {
      if (byte >= UNBIASED_LIMIT) continue;
      body += CODE_ALPHABET[byte % CODE_ALPHABET.length];
      if (body.length === length) break;
    }
  }
  return prefix + body;
}

const ALPHABET_CLASS = `[${CODE_ALPHABET}]`;
const WITH_DASH = new RegExp(`^[A-Z0-9]*-${ALPHABET_CLASS}{${MIN_CODE_LENGTH},${MAX_CODE_LENGTH}}$`);
const WITHOUT_DASH = new RegExp(`^[A-Z0-9]*${ALPHABET_CLASS}{${MIN_CODE_LENGTH}}$`);

// A code read off a screen and retyped with the Russian layout on comes out in Cyrillic letters
// that look exactly like the Latin ones, and the person cannot see why it "does not work".
const CYRILLIC_LOOKALIKES: Record<string, string> = {
  А: 'A', В: 'B', Е: 'E', К: 'K', М: 'M', Н: 'H', О: 'O', Р: 'P', С: 'C', Т: 'T', У: 'Y', Х: 'X',
};

/**
 * The stored form of a code someone typed (a CRM field, a web form, a link), or null when it
 * cannot be a code: optional prefix, optional dash, 6–8 alphabet characters, 24 at most.
 */
export function normalizeCode(input: unknown): string | null {
  if (typeof input !== 'string') return null;
  const compact = input
    .replace(/\s+/g, '')
    .toUpperCase()
    .replace(/[АВЕКМНОРСТУХ]/g, (c) => CYRILLIC_LOOKALIKES[c] ?? c);
  if (compact.length === 0 || compact.length > MAX_TOTAL_LENGTH) return null;
  if (compact.includes('-')) return WITH_DASH.test(compact) ? compact.replace('-', '') : null;
  return WITHOUT_DASH.test(compact) ? compact : null;
}
