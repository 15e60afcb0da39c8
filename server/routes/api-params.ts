/** Path and query parameters shared by the `/api/…` route files. */
import { z } from 'zod';

/** A Bitrix24 entity id in a path or query: digits only, a positive safe integer. */
export const positiveId = z
  .string()
  .regex(/^\d{1,15}$/, 'must be a positive integer')
  .transform(Number)
  .refine((n) => n > 0 && Number.isSafeInteger(n), 'must be a positive integer');

export const memberParams = z.object({
  entity: z.enum(['contact', 'lead'], { error: 'must be contact or lead' }),
  id: positiveId,
});

export const dealParams = z.object({ id: positiveId });

/**
 * `from`/`to` of a period (exports, ledger search): a date (`2026-11-01`, UTC; `to` includes its
 * whole day) or an ISO time (`to` exclusive).
 */
const DAY = /^\d{4}-\d{2}-\d{2}$/;
export const bound = (end: boolean) =>
  z
    .string()
    .refine((v) => (DAY.test(v) || /^\d{4}-\d{2}-\d{2}T/.test(v)) && Number.isFinite(Date.parse(v)), 'must be a date (YYYY-MM-DD) or an ISO time')
    .transform((v) => new Date(Date.parse(v) + (end && DAY.test(v) ? 86_400_000 : 0)))
    .optional();
