/**
 * POST /api/members/:entity/:id/enroll (user) and /adjust (admin) (SPEC 3): thin routes over
 * src/handlers/enroll-member.ts and adjust-balance.ts.
 */
import { Router } from 'express';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { adjustRequestSchema } from '../../src/contract/api.js';
import { adjustBalance } from '../../src/handlers/adjust-balance.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import { enrollMember } from '../../src/handlers/enroll-member.js';
import type { Deps } from '../../src/handlers/ports.js';
import { DEFAULT_LEDGER_PAGE, readMember } from '../../src/handlers/read-member.js';
import { caller } from '../middleware/api-auth.js';
import { idempotencyHeaders } from './api-amounts.js';
import { memberParams } from './api-params.js';

/** Mounted behind apiAuth (server/routes/api.ts). */
export function memberWriteRoutes(deps: Deps): Router {
  const router = Router();

  router.post('/api/members/:entity/:id/enroll', async (req, res) => {
    const c = caller(res);
    const { entity, id } = parseOrThrow(memberParams, req.params, 'member request');
    await enrollMember(deps, c.installation, { entity, id });
    res.json(await readMember(deps, c.installation, { entity, id, limit: DEFAULT_LEDGER_PAGE }));
  });

  router.post('/api/members/:entity/:id/adjust', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const { entity, id } = parseOrThrow(memberParams, req.params, 'member request');
    const { amount, comment } = parseOrThrow(adjustRequestSchema, req.body ?? {}, 'adjustment');
    const key = parseOrThrow(idempotencyHeaders, { 'idempotency-key': req.get('idempotency-key') }, 'headers')['idempotency-key'];
    res.json(await adjustBalance(deps, c.installation, { person: { entity, id }, amount, comment, userId: c.userId, ...(key === undefined ? {} : { clientKey: key }) }));
  });

  return router;
}
