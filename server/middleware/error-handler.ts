import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import type { ErrorBody } from '../../src/contract/api.js';
import { AppError, isAppError, type ErrorCode } from '../../src/handlers/errors.js';
import { scrubSecrets } from '../logger.js';

/**
 * The one place where error codes become HTTP (STYLE.md practice 9). AppErrors answer with their
 * code; anything else is a 500 `internal` with a request id, logged with its stack, never swallowed.
 */

export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case 'bad_request':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'not_found':
      return 404;
    case 'conflict':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'install_unverified':
      return 401;
    case 'insecure_portal':
      return 400;
    case 'portal_error':
      return 502;
    case 'portal_unavailable':
      return 503;
    case 'internal':
      return 500;
    default: {
      // A new ErrorCode without a status here fails to compile.
      const _exhaustive: never = code;
      return 500;
    }
  }
}

/** The error answer's shape is the API contract's (src/contract/api.ts). */
export type { ErrorBody };

/** The part of the logger this module needs (pino's Logger and the handlers' Log both fit). */
export interface ErrorLog {
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

const REQUEST_ID_HEADER = 'X-Request-Id';
// An id from a proxy is kept only when it cannot inject anything into logs or headers.
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** The request id of this request (set by `requestId()`), or undefined before it ran. */
export function requestIdOf(res: Response): string | undefined {
  const id: unknown = res.locals.requestId;
  return typeof id === 'string' ? id : undefined;
}

/** Gives every request an id (an acceptable incoming `X-Request-Id`, else a UUID) in `res.locals.requestId` and the response header. */
export function requestId(): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get(REQUEST_ID_HEADER);
    const id = incoming !== undefined && ACCEPTABLE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.set(REQUEST_ID_HEADER, id);
    next();
  };
}

/** Last route: anything unmatched is a 404 in the common error shape. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `No route for ${req.method} ${req.path}`));
};

interface HttpErrorLike {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  type?: unknown;
  message?: unknown;
}

/**
 * Maps a client error raised by Express or body-parser (http-errors: `status` 4xx, `expose: true`)
 * to an AppError, so malformed requests answer 4xx, never 500. Server-side http-errors (5xx) and
 * anything else give null.
 */
export function appErrorFromHttpError(e: unknown): AppError | null {
  if (e === null || typeof e !== 'object' || isAppError(e)) return null;
  const err = e as HttpErrorLike;
  const status = typeof err.status === 'number' ? err.status : typeof err.statusCode === 'number' ? err.statusCode : NaN;
  if (!(status >= 400 && status < 500) || err.expose !== true) return null;
  const options = { cause: e };
  switch (err.type) {
    case 'entity.too.large':
      return new AppError('payload_too_large', 'The request body is too large', [], options);
    case 'entity.parse.failed':
      // JSON.parse messages quote the body: never echo them.
      return new AppError('bad_request', 'Malformed JSON body', [{ path: 'body', message: 'not valid JSON' }], options);
    case 'parameters.too.many':
      return new AppError('bad_request', 'The request body has too many parameters', [{ path: 'body', message: 'too many parameters' }], options);
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new AppError('bad_request', scrubSecrets(String(err.message)), [{ path: 'body', message: 'unsupported encoding' }], options);
    case 'request.aborted':
    case 'request.size.invalid':
      return new AppError('bad_request', 'The request body was incomplete', [], options);
  }
  const code: ErrorCode =
    status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 404 ? 'not_found' : status === 409 ? 'conflict' : status === 413 ? 'payload_too_large' : 'bad_request';
  return new AppError(code, scrubSecrets(String(err.message ?? 'Bad request')), [], options);
}

/** What is logged of an error: type, message and stack (with causes), secrets masked. */
function describe(e: unknown, depth = 0): Record<string, unknown> {
  if (e instanceof Error) {
    const out: Record<string, unknown> = { type: e.name, message: scrubSecrets(e.message), stack: scrubSecrets(e.stack ?? '') };
    if (isAppError(e)) out.code = e.code;
    if (e.cause !== undefined && depth < 3) out.cause = describe(e.cause, depth + 1);
    return out;
  }
  return { type: typeof e, message: scrubSecrets(String(e)) };
}

/** The final error middleware: `app.use(errorHandler(log))`. */
export function errorHandler(log: ErrorLog): ErrorRequestHandler {
  return (e: unknown, req: Request, res: Response, next: NextFunction) => {
    const requestId = requestIdOf(res) ?? randomUUID();
    const appError = isAppError(e) ? e : appErrorFromHttpError(e);
    const where = { requestId, method: req.method, path: req.path };

    if (res.headersSent) {
      // Too late for a JSON answer: Express's final handler closes the connection.
      log.error({ ...where, err: describe(e) }, 'http.error_after_headers');
      next(e);
      return;
    }

    let body: ErrorBody;
    if (appError && appError.code !== 'internal') {
      const status = httpStatusFor(appError.code);
      body = {
        error: {
          code: appError.code,
          message: scrubSecrets(appError.message),
          details: appError.details.map((d) => ({ path: d.path, message: scrubSecrets(d.message) })),
          requestId,
          ...(appError.reason === undefined ? {} : { reason: appError.reason }),
        },
      };
      if (status >= 500) log.error({ ...where, status, code: appError.code, err: describe(e) }, 'http.failed');
      else log.warn({ ...where, status, code: appError.code, message: body.error.message }, 'http.rejected');
      res.status(status).json(body);
      return;
    }

    // Unknown errors and AppError('internal'): no internals leak to the caller; the id finds the log line.
    log.error({ ...where, status: 500, code: 'internal', err: describe(e) }, 'http.unhandled_error');
    body = { error: { code: 'internal', message: 'Internal server error', details: [], requestId } };
    res.status(500).json(body);
  };
}
