/** POST /b24/robots/:code — Sarafan's automation robots (issue 10, reference §8.2). Thin: read, hand over (the handler authenticates, then validates). */
import { Router } from 'express';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { robotCallSchema, robotEnvelopeSchema } from '../../src/bitrix/robot-payloads.js';
import { receiveRobotCall } from '../../src/handlers/receive-robot-call.js';
import type { Deps } from '../../src/handlers/ports.js';

export function robotRoutes(deps: Deps): Router {
  const router = Router();
  router.post('/b24/robots/:code', async (req, res) => {
    const { auth } = robotEnvelopeSchema.parse(req.body);
    const result = await receiveRobotCall(deps, {
      pathCode: String(req.params.code),
      memberId: auth.member_id,
      applicationToken: auth.application_token,
      userId: auth.user_id,
      readCall: () => parseOrThrow(robotCallSchema, req.body, 'robot call'),
    });
    // A repeated call gets the stored answer back (the workflow already has it: its token is single-use).
    res.status(200).json(result.status === 'queued' ? { status: 'queued' } : { status: 'repeated', answer: result.answer?.values ?? null });
  });
  return router;
}
