import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import qs from 'qs';
import { AppError } from '../../src/handlers/errors.js';
import { appErrorFromHttpError } from './error-handler.js';

/**
 * Request bodies as Bitrix24 sends them (reference 4.2, 15.6): `application/x-www-form-urlencoded`
 * with bracket keys (`auth[member_id]`, `data[FIELDS][ID]`, `document_id[2]`) parsed into nested
 * objects and arrays, plus JSON for our own API. Bounded (SPEC 9): 1 MB → 413; nesting deeper than
 * 8 levels, more than 1000 parameters or array indices → 400 naming the problem. Nothing is silently
 * flattened or truncated, and every such failure is a 4xx AppError.
 */

export const BODY_LIMIT_BYTES = 1024 * 1024;
export const MAX_DEPTH = 8;
export const MAX_PARAMETERS = 1000;

/**
 * qs settings for form bodies and query strings alike. Express 5 defaults to `extended: false`
 * (flat keys) for urlencoded bodies and to the 'simple' query parser, so neither builds `auth`/`data`.
 * qs keeps keys deeper than `depth` as one literal key and drops parameters past
 * `parameterLimit` unless `strictDepth` / `throwOnLimitExceeded` are set; we want a 400 instead.
 */
export const QS_OPTIONS = Object.freeze({
  depth: MAX_DEPTH,
  strictDepth: true,
  parameterLimit: MAX_PARAMETERS,
  // Array indices up to the parameter limit stay arrays; a larger index is refused, not turned into an object key.
  arrayLimit: MAX_PARAMETERS,
  throwOnLimitExceeded: true,
  // `__proto__`, `constructor`, `hasOwnProperty` … as keys are dropped.
  allowPrototypes: false,
  allowDots: false,
  comma: false,
}) satisfies qs.IParseOptions;

function limitError(e: unknown, where: 'body' | 'query'): AppError | null {
  if (!(e instanceof RangeError)) return null;
  const what = where === 'body' ? 'request body' : 'query string';
  if (/depth/i.test(e.message)) {
    return new AppError('bad_request', `The ${what} nests deeper than ${MAX_DEPTH} levels`, [
      { path: where, message: `nesting deeper than ${MAX_DEPTH} levels` },
    ]);
  }
  if (/parameter limit/i.test(e.message)) {
    return new AppError('bad_request', `The ${what} has more than ${MAX_PARAMETERS} parameters`, [
      { path: where, message: `more than ${MAX_PARAMETERS} parameters` },
    ]);
  }
  if (/array limit/i.test(e.message)) {
    return new AppError('bad_request', `The ${what} has an array index of ${MAX_PARAMETERS} or more`, [
      { path: where, message: `array index of ${MAX_PARAMETERS} or more` },
    ]);
  }
  return new AppError('bad_request', `The ${what} could not be parsed`, [{ path: where, message: 'could not be parsed' }]);
}

function parseQs(text: string, charset: 'utf-8' | 'iso-8859-1', where: 'body' | 'query'): qs.ParsedQs {
  try {
    return qs.parse(text, { ...QS_OPTIONS, charset });
  } catch (e) {
    throw limitError(e, where) ?? e;
  }
}

/** Express `query parser` setting: `app.set('query parser', queryParser)`. Violations surface as 400 when a route reads `req.query`. */
export function queryParser(query: string | null | undefined): qs.ParsedQs {
  return parseQs(query ?? '', 'utf-8', 'query');
}

const FORM_TYPE = 'application/x-www-form-urlencoded';
const JSON_TYPES = ['application/json', 'application/*+json'];

function formCharset(req: Request): 'utf-8' | 'iso-8859-1' {
  const declared = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
  if (declared === undefined || declared === 'utf-8' || declared === 'utf8' || declared === 'us-ascii') return 'utf-8';
  if (declared === 'iso-8859-1' || declared === 'latin1') return 'iso-8859-1';
  throw new AppError('bad_request', `Unsupported charset "${declared.slice(0, 40)}" for a form body`, [
    { path: 'body', message: 'charset must be utf-8 or iso-8859-1' },
  ]);
}

/** Finds the first container nested deeper than MAX_DEPTH (the top-level body is depth 0, like a form's top-level keys). */
function tooDeepPath(body: unknown): string | null {
  const stack: Array<{ value: unknown; depth: number; path: string }> = [{ value: body, depth: 0, path: '' }];
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_DEPTH) return path;
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      // JSON.parse makes `__proto__` an own key; drop it like qs does before anything merges the body.
      if (key === '__proto__') {
        delete record[key];
        continue;
      }
      stack.push({ value: record[key], depth: depth + 1, path: path ? `${path}.${key}` : key });
    }
  }
  return null;
}

function bodyError(e: unknown): unknown {
  const mapped = appErrorFromHttpError(e);
  if (mapped?.code === 'payload_too_large') {
    return new AppError('payload_too_large', `The request body exceeds ${BODY_LIMIT_BYTES / (1024 * 1024)} MB`, [], { cause: e });
  }
  return mapped ?? e;
}

/**
 * Parses form (qs, bracket keys) and JSON bodies into `req.body`, within the limits above.
 * Other content types are left unparsed (`req.body` stays undefined).
 */
export function bitrixBody(): RequestHandler {
  const json = express.json({ limit: BODY_LIMIT_BYTES, strict: true, type: JSON_TYPES });
  // Read raw and parse with our qs settings: body-parser's own extended parser answers 413 for too
  // many parameters and turns long arrays into objects.
  const form = express.raw({ limit: BODY_LIMIT_BYTES, type: FORM_TYPE });

  return function bitrixBodyParser(req: Request, res: Response, next: NextFunction): void {
    json(req, res, (jsonErr?: unknown) => {
      if (jsonErr) return next(bodyError(jsonErr));
      if (req.is(JSON_TYPES) && req.body !== undefined) {
        const path = tooDeepPath(req.body);
        if (path !== null) {
          return next(
            new AppError('bad_request', `The request body nests deeper than ${MAX_DEPTH} levels`, [
              { path, message: `nesting deeper than ${MAX_DEPTH} levels` },
            ]),
          );
        }
      }
      form(req, res, (formErr?: unknown) => {
        if (formErr) return next(bodyError(formErr));
        if (Buffer.isBuffer(req.body) && req.is(FORM_TYPE)) {
          try {
            const charset = formCharset(req);
            req.body = parseQs(req.body.toString(charset === 'utf-8' ? 'utf8' : 'latin1'), charset, 'body');
          } catch (e) {
            return next(e);
          }
        }
        next();
      });
    });
  };
}
