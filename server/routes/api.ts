/**
 * The JSON API for the frame UI (SPEC 3), authenticated per request with the user's Bitrix24
 * access token and the portal's member_id (verified on the portal's stored endpoint).
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { authenticateUser, requireAdmin, type ApiCaller } from '../../src/handlers/authenticate-user.js';
import { getProgram, updateProgram } from '../../src/handlers/manage-program.js';
import { readDeal } from '../../src/handlers/read-deal.js';
import { DEFAULT_LEDGER_PAGE, MAX_LEDGER_PAGE, readMember } from '../../src/handlers/read-member.js';
import { AppError } from '../../src/handlers/errors.js';
import type { Deps } from '../../src/handlers/ports.js';

declare module 'express-serve-static-core' {
  interface Locals {
    caller?: ApiCaller;
  }
}

function apiAuth(deps: Deps) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.get('authorization') ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const memberId = req.get('x-sarafan-portal')?.trim();
    if (!token || !memberId) {
      throw new AppError('unauthorized', 'Authorization: Bearer <token> and X-Sarafan-Portal are required');
    }
    res.locals.caller = await authenticateUser(deps, memberId, token);
    next();
  };
}

function caller(res: Response): ApiCaller {
  const c = res.locals.caller;
  if (!c) throw new AppError('unauthorized', 'Not authenticated');
  return c;
}

/** A Bitrix24 entity id in a path or query: digits only, a positive safe integer. */
const positiveId = z
  .string()
  .regex(/^\d{1,15}$/, 'must be a positive integer')
  .transform(Number)
  .refine((n) => n > 0 && Number.isSafeInteger(n), 'must be a positive integer');

const memberParams = z.object({
  entity: z.enum(['contact', 'lead'], { error: 'must be contact or lead' }),
  id: positiveId,
});

const ledgerQuery = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, `must be an integer from 1 to ${MAX_LEDGER_PAGE}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= MAX_LEDGER_PAGE, `must be an integer from 1 to ${MAX_LEDGER_PAGE}`)
    .optional(),
  before: positiveId.optional(),
});

const dealParams = z.object({ id: positiveId });

export function apiRoutes(deps: Deps): Router {
  const router = Router();
  router.use('/api', apiAuth(deps));

  router.get('/api/program', async (_req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await getProgram(deps, c.installation.id));
  });

  router.put('/api/program', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await updateProgram(deps, c.installation.id, req.body, c.userId));
  });

  router.get('/api/members/:entity/:id', async (req, res) => {
    const c = caller(res);
    const { entity, id } = parseOrThrow(memberParams, req.params, 'member request');
    const { limit, before } = parseOrThrow(ledgerQuery, req.query, 'ledger page');
    res.json(await readMember(deps, c.installation, { entity, id, limit: limit ?? DEFAULT_LEDGER_PAGE, ...(before === undefined ? {} : { before }) }));
  });

  router.get('/api/deals/:id', async (req, res) => {
    const c = caller(res);
    const { id } = parseOrThrow(dealParams, req.params, 'deal request');
    res.json(await readDeal(deps, c.installation, id));
  });

  return router;
}

