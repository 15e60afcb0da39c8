/**
 * Schemas of what Bitrix24 POSTs to us, after bracket-key parsing (reference §1.3, §1.5–1.7,
 * §4.2): values arrive as strings. Each schema names the offending field on failure.
 */
import { z } from 'zod';
import { AppError, type ErrorDetail } from '../handlers/errors.js';

const nonEmpty = z.string().trim().min(1, 'required');
const optionalText = z
  .union([z.string(), z.number()])
  .optional()
  .transform((v) => (v === undefined || String(v).trim() === '' ? null : String(v).trim()));

/** A credential Bitrix24 sends; absent, empty, too long or not a string reads as null. */
const credential = (max: number) => z.string().trim().min(1).max(max).nullable().catch(null);
const lenientText = optionalText.catch(null);
const noAuth = { member_id: null, application_token: null, access_token: null, refresh_token: null };

/**
 * An event POST read without failing (SPEC 9: authentication comes before validation): a
 * missing `auth[application_token]` or `auth[member_id]` must answer 401 like a wrong one, not a
 * 400 that tells a caller which field to forge next. The handler authenticates, then validates
 * the event name and the entity id.
 */
export const eventEnvelopeSchema = z
  .object({
    event: z.string().trim().min(1).nullable().catch(null),
    data: z.record(z.string(), z.unknown()).nullable().catch(null),
    auth: z
      .object({
        member_id: credential(128),
        application_token: credential(256),
        access_token: lenientText,
        refresh_token: lenientText,
      })
      .catch(noAuth),
  })
  .catch({ event: null, data: null, auth: noAuth });

/** The install wizard / app page POST (reference §1.3). DOMAIN comes in the query string. */
export const installFormSchema = z.object({
  member_id: nonEmpty.max(128),
  AUTH_ID: nonEmpty.max(512),
  REFRESH_ID: nonEmpty.max(512),
  APPLICATION_TOKEN: optionalText,
  DOMAIN: optionalText,
  LANG: optionalText,
  PLACEMENT: optionalText,
});

/**
 * A frame page request (the main page or a placement, reference §1.3, §7.3): the form merged with
 * the query. Only what the server verifies is read; the tokens stay with the frame SDK.
 */
export const frameFormSchema = z.object({
  member_id: nonEmpty.max(128),
  DOMAIN: optionalText,
  APPLICATION_TOKEN: optionalText,
  PLACEMENT: optionalText,
});

export function detailsOf(error: z.ZodError, prefix = ''): ErrorDetail[] {
  return error.issues.map((i) => ({ path: prefix + i.path.map(String).join('.'), message: i.message }));
}

/** Parse or throw AppError('bad_request') naming every bad field. */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown, what: string, prefix = ''): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const details = detailsOf(result.error, prefix);
    throw new AppError('bad_request', `Invalid ${what}: ${details.map((d) => d.path || '(body)').join(', ')}`, details);
  }
  return result.data;
}
