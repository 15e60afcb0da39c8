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
