/**
 * What Bitrix24 POSTs to a robot's HANDLER (reference §8.2), after bracket-key parsing. The
 * envelope is read without failing, so a call without credentials answers 401 like a wrong one
 * (SPEC 9: authentication before validation); the call itself is then validated strictly.
 */
import { z } from 'zod';

const credential = (max: number) => z.string().trim().min(1).max(max).nullable().catch(null);

export const robotEnvelopeSchema = z
  .object({
    auth: z
      .object({ member_id: credential(128), application_token: credential(256), user_id: credential(32) })
      .catch({ member_id: null, application_token: null, user_id: null }),
  })
  .catch({ auth: { member_id: null, application_token: null, user_id: null } });

const text = (max: number) => z.string({ error: 'required' }).trim().min(1, 'required').max(max, `at most ${max} characters`);

/** The call, once its sender is known. Properties arrive as text with expressions resolved. */
export const robotCallSchema = z.object({
  workflow_id: text(128),
  code: text(64),
  event_token: text(1024),
  document_id: z.tuple([text(64), text(128), text(128)], { error: 'expected document_id[0..2]' }),
  document_type: z.array(z.string().max(128)).max(3).optional(),
  properties: z.record(z.string().max(64), z.string({ error: 'expected text' }).max(1024, 'at most 1024 characters')).optional(),
});

export type RobotCallPayload = z.output<typeof robotCallSchema>;
