/**
 * Authentication of the JSON API (SPEC 3): the user's Bitrix24 access token and the portal's
 * member_id, verified on the portal's stored endpoint. Every `/api/…` route file mounts
 * `apiAuth` and reads the verified caller with `caller(res)`.
 */
import type { NextFunction, Request, Response } from 'express';
import { authenticateUser, type ApiCaller } from '../../src/handlers/authenticate-user.js';
import { AppError } from '../../src/handlers/errors.js';
import type { Deps } from '../../src/handlers/ports.js';

declare module 'express-serve-static-core' {
  interface Locals {
    caller?: ApiCaller;
  }
}

export function apiAuth(deps: Deps) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (res.locals.caller) return next();
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

export function caller(res: Response): ApiCaller {
  const c = res.locals.caller;
  if (!c) throw new AppError('unauthorized', 'Not authenticated');
  return c;
}
