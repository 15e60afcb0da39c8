/** POST /api/deals/:id/redeem (SPEC 3): thin route over src/handlers/redeem-bonus.ts. */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import type { Deps } from '../../src/handlers/ports.js';
import { redeemBonus } from '../../src/handlers/redeem-bonus.js';
import { caller } from '../middleware/api-auth.js';
import { idempotencyHeaders, positiveAmount } from './api-amounts.js';
import { dealParams } from './api-params.js';

/** `"max"`: the most the deal's limit and the client's balance allow (decided under the lock). */
const redeemBody = z.object({ amount: z.union([z.literal('max'), positiveAmount], { error: 'must be a positive number with at most two decimals, or "max"' }) });

/** Mounted behind apiAuth (server/routes/api.ts). */
export function redeemRoutes(deps: Deps): Router {
  const router = Router();
  router.post('/api/deals/:id/redeem', async (req, res) => {
    const c = caller(res);
    const { id } = parseOrThrow(dealParams, req.params, 'deal request');
    const { amount } = parseOrThrow(redeemBody, req.body ?? {}, 'redemption');
    const key = parseOrThrow(idempotencyHeaders, { 'idempotency-key': req.get('idempotency-key') }, 'headers')['idempotency-key'];
    const { facts: _facts, ...answer } = await redeemBonus(deps, c.installation, { dealId: id, amount, userId: c.userId, ...(key === undefined ? {} : { clientKey: key }) });
    res.json(answer);
  });
  return router;
}
