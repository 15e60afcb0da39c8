/**
 * Money and request keys at the API boundary (SPEC 3): amounts are decimal numbers in the program
 * currency with at most two decimals (a decimal string such as "100.50" is taken too), turned
 * into integer minor units here; anything else is a 400 naming the field.
 */
import { z } from 'zod';
import { fromMinor, toMinor } from '../../src/rules/money.js';

/** No real bonus amount comes near it; it keeps minor units far inside safe integers. */
const MAX_MAJOR = 1_000_000_000;
const DECIMAL_TEXT = /^-?\d{1,10}(\.\d{1,2})?$/;

const minorUnits = z
  .union([z.number(), z.string().regex(DECIMAL_TEXT, 'must be a decimal number with at most two decimals')], { error: 'must be a number' })
  .transform((value, ctx) => {
    const minor = toMinor(value);
    if (minor === null || (typeof value === 'number' && fromMinor(minor) !== value)) {
      ctx.addIssue({ code: 'custom', message: 'must be a number with at most two decimals' });
      return z.NEVER;
    }
    if (Math.abs(minor) > MAX_MAJOR * 100) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_MAJOR} in absolute value` });
      return z.NEVER;
    }
    return minor;
  });

/** A positive amount, in minor units. */
export const positiveAmount = minorUnits.refine((n) => n > 0, 'must be greater than zero');
/** A signed, non-zero amount, in minor units. */
export const signedAmount = minorUnits.refine((n) => n !== 0, 'must not be zero');

/** `Idempotency-Key`: a client's key for a safe retry; printable and short, as it is stored. */
export const idempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1 to 128 characters: letters, digits, . _ : -')
    .optional(),
});
