/**
 * What the CRM card tabs read besides a member and a deal (SPEC 7): GET /api/session,
 * GET /api/codes/:code and GET /api/members/:entity/:id/referrals, for any authenticated user.
 * Thin routes over src/handlers/read-session.ts, check-referral-code.ts and read-referral-tree.ts;
 * mounted behind apiAuth (server/routes/api.ts).
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import type { CodeCheckAnswer, ReferralTreeAnswer, SessionAnswer } from '../../src/contract/api.js';
import { checkReferralCode } from '../../src/handlers/check-referral-code.js';
import type { Deps } from '../../src/handlers/ports.js';
import { readReferralTree } from '../../src/handlers/read-referral-tree.js';
import { readSession } from '../../src/handlers/read-session.js';
import { caller } from '../middleware/api-auth.js';
import { memberParams } from './api-params.js';

/** The code as typed; whether it is well-formed is the answer (`malformed`), not a 400. */
const codeParams = z.object({ code: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters') });

export function cardApiRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/api/session', async (_req, res) => {
    res.json((await readSession(deps, caller(res))) satisfies SessionAnswer);
  });

  router.get('/api/codes/:code', async (req, res) => {
    const c = caller(res);
    const { code } = parseOrThrow(codeParams, req.params, 'referral code');
    res.json((await checkReferralCode(deps, c.installation, code)) satisfies CodeCheckAnswer);
  });

  router.get('/api/members/:entity/:id/referrals', async (req, res) => {
    const c = caller(res);
    const person = parseOrThrow(memberParams, req.params, 'member request');
    res.json((await readReferralTree(deps, c.installation, person)) satisfies ReferralTreeAnswer);
  });

  return router;
}
