/**
 * Referrals in the JSON API (issue 9), admin only: the list to review (`?status=rejected`) and the
 * override of a rejection. Mounted by api.ts behind its authentication.
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import { DEFAULT_REFERRAL_PAGE, listReferrals, MAX_REFERRAL_PAGE } from '../../src/handlers/list-referrals.js';
import { overrideReferral } from '../../src/handlers/override-referral.js';
import type { Deps } from '../../src/handlers/ports.js';
import { caller } from '../middleware/api-auth.js';
import { positiveId } from './api-params.js';

const MAX_COMMENT = 1_000;

const listQuery = z.object({
  status: z.enum(['active', 'rejected'], { error: 'must be active or rejected' }),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, `must be an integer from 1 to ${MAX_REFERRAL_PAGE}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= MAX_REFERRAL_PAGE, `must be an integer from 1 to ${MAX_REFERRAL_PAGE}`)
    .optional(),
  before: positiveId.optional(),
});

const overrideBody = z.object({
  comment: z
    .string({ error: 'is required' })
    .trim()
    .min(1, 'is required')
    .max(MAX_COMMENT, `must be at most ${MAX_COMMENT} characters`),
});

export function referralRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/api/referrals', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const { status, limit, before } = parseOrThrow(listQuery, req.query, 'referral list');
    res.json(await listReferrals(deps, c.installation.id, { status, limit: limit ?? DEFAULT_REFERRAL_PAGE, ...(before === undefined ? {} : { before }) }));
  });

  router.post('/api/referrals/:id/override', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const { id } = parseOrThrow(z.object({ id: positiveId }), req.params, 'referral');
    const { comment } = parseOrThrow(overrideBody, req.body ?? {}, 'override');
    res.json(await overrideReferral(deps, c.installation.id, id, { userId: c.userId, comment }));
  });

  return router;
}
