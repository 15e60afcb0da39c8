/**
 * Money and request keys at the API boundary (SPEC 3): amounts are decimal numbers in the program
 * currency with at most two decimals (a decimal string such as "100.50" is taken too), turned
 * into integer minor units here; anything else is a 400 naming the field.
 */
import { z } from 'zod';
import { positiveAmountInput, signedAmountInput } from '../../src/contract/api.js';

/** A positive amount, in minor units (the shared contract's input schema). */
export const positiveAmount = positiveAmountInput;
/** A signed, non-zero amount, in minor units. */
export const signedAmount = signedAmountInput;

/** `Idempotency-Key`: a client's key for a safe retry; printable and short, as it is stored. */
export const idempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1 to 128 characters: letters, digits, . _ : -')
    .optional(),
});
