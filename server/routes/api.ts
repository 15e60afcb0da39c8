/**
 * The JSON API for the frame UI (SPEC 3), authenticated per request with the user's Bitrix24
 * access token and the portal's member_id (verified on the portal's stored endpoint).
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { bitrixBody } from '../middleware/body.js';
import { authenticateUser, requireAdmin, type ApiCaller } from '../../src/handlers/authenticate-user.js';
import { getProgram, updateProgram } from '../../src/handlers/manage-program.js';
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

export function apiRoutes(deps: Deps): Router {
  const router = Router();
  router.use('/api', bitrixBody(), apiAuth(deps));

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

  return router;
}

