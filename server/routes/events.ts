/** POST /b24/events — every bound Bitrix24 event (SPEC 3). Thin: read, hand over (the handler authenticates, then validates). */
import { Router } from 'express';
import { receiveEvent, type EventResult } from '../../src/handlers/receive-event.js';
import { eventEnvelopeSchema } from '../../src/bitrix/payloads.js';
import type { Deps } from '../../src/handlers/ports.js';

/**
 * The answers, serialized once: every Bitrix24 event — a bulk change sends thousands at once —
 * is answered here, and res.json would stringify, hash an ETag and check freshness each time.
 */
const ANSWERS: Record<EventResult['status'], string> = {
  queued: JSON.stringify({ status: 'queued' }),
  coalesced: JSON.stringify({ status: 'coalesced' }),
  handled: JSON.stringify({ status: 'handled' }),
};

export function eventRoutes(deps: Deps): Router {
  const router = Router();
  router.post('/b24/events', async (req, res) => {
    const body = eventEnvelopeSchema.parse(req.body);
    const fields = body.data?.FIELDS as Record<string, unknown> | undefined;
    const clean = String(body.data?.CLEAN ?? '0') === '1';
    const result = await receiveEvent(deps, {
      event: body.event,
      rawEntityId: fields?.ID,
      clean,
      auth: {
        memberId: body.auth.member_id,
        applicationToken: body.auth.application_token,
        accessToken: body.auth.access_token,
        refreshToken: body.auth.refresh_token,
      },
    });
    res.status(200).type('application/json; charset=utf-8').end(ANSWERS[result.status]);
  });
  return router;
}
