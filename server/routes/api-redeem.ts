/** POST /api/deals/:id/redeem (SPEC 3): thin route over src/handlers/redeem-bonus.ts. */
import { Router } from 'express';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { redeemRequestSchema, type RedeemAnswer } from '../../src/contract/api.js';
import type { Deps } from '../../src/handlers/ports.js';
import { redeemBonus } from '../../src/handlers/redeem-bonus.js';
import { caller } from '../middleware/api-auth.js';
import { idempotencyHeaders } from './api-amounts.js';
import { dealParams } from './api-params.js';


/** Mounted behind apiAuth (server/routes/api.ts). */
export function redeemRoutes(deps: Deps): Router {
  const router = Router();
  router.post('/api/deals/:id/redeem', async (req, res) => {
    const c = caller(res);
    const { id } = parseOrThrow(dealParams, req.params, 'deal request');
    const { amount } = parseOrThrow(redeemRequestSchema, req.body ?? {}, 'redemption');
    const key = parseOrThrow(idempotencyHeaders, { 'idempotency-key': req.get('idempotency-key') }, 'headers')['idempotency-key'];
    const { facts: _facts, ...answer } = await redeemBonus(deps, c.installation, { dealId: id, amount, userId: c.userId, ...(key === undefined ? {} : { clientKey: key }) });
    res.json(answer satisfies RedeemAnswer);
  });
  return router;
}
