import type { NextFunction, Request, RequestHandler, Response } from 'express';
import qs from 'qs';
import { AppError } from '../../src/handlers/errors.js';

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

/**
 * The common shape of a form body — every key a name with up to MAX_DEPTH `[name]` segments,
 * each key once — parsed without qs, which spends most of an event's parse on generality no
 * Bitrix24 event needs (arrays, merges, compaction). Null for anything else (array indices, empty
 * brackets, duplicate keys, a key that is both a value and an object, an Object.prototype name,
 * more than MAX_PARAMETERS parameters): the caller then parses with qs. Where it answers, the
 * answer is qs's (tests/unit/server/body.test.ts compares them on generated bodies).
 */
const KEY = /^([^[\]]+)((?:\[[^[\]]+\])*)$/;
const SEGMENT = /\[([^[\]]+)\]/g;

function decodeForm(s: string): string {
  const spaced = s.includes('+') ? s.replace(/\+/g, ' ') : s;
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

const plainName = (name: string): boolean => !/^\d+$/.test(name) && !Object.prototype.hasOwnProperty.call(Object.prototype, name);

export function parseSimpleForm(text: string): Record<string, unknown> | null {
  const parts = text.split('&');
  if (parts.length > MAX_PARAMETERS) return null;
  const out: Record<string, unknown> = {};
  for (const part of parts) {
    if (!part) return null;
    const eq = part.indexOf('=');
    const key = decodeForm(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? '' : decodeForm(part.slice(eq + 1));
    const m = KEY.exec(key);
    if (!m) return null;
    const path = [m[1]!];
    if (m[2]) for (const s of m[2].matchAll(SEGMENT)) path.push(s[1]!);
    if (path.length > MAX_DEPTH + 1 || !path.every(plainName)) return null;
    let at = out;
    for (let i = 0; i < path.length - 1; i++) {
      const next = at[path[i]!];
      if (next === undefined) at = at[path[i]!] = {} as Record<string, unknown>;
      else if (typeof next === 'object') at = next as Record<string, unknown>;
      else return null;
    }
    const leaf = path[path.length - 1]!;
    if (at[leaf] !== undefined) return null;
    at[leaf] = value;
  }
  return out;
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

const JSON_START = /^[\s\uFEFF]*[[{]/;

/** Past this many bytes an over-limit body is no longer drained: the connection is dropped. */
export const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

const tooLarge = (): AppError => new AppError('payload_too_large', `The request body exceeds ${BODY_LIMIT_BYTES / (1024 * 1024)} MB`);

/** Marks a request whose body this middleware has read (or refused), so a second use is a no-op. */
const BODY_READ = Symbol('sarafan.bodyRead');
type MarkedRequest = Request & { [BODY_READ]?: true };

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] !== undefined;
}

type ReadOutcome = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'incomplete' };

/** Reads the body into memory, stopping at `limit` bytes (what arrives after that is left to drainThenEnd). */
function readRaw(req: Request, limit: number): Promise<ReadOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (outcome: ReadOutcome): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onIncomplete);
      req.off('close', onIncomplete);
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) settle({ ok: false, reason: 'too_large' });
      else chunks.push(chunk);
    };
    const onEnd = (): void => settle({ ok: true, body: Buffer.concat(chunks, size) });
    const onIncomplete = (): void => settle({ ok: false, reason: 'incomplete' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onIncomplete);
    req.on('close', onIncomplete);
  });
}

/**
 * Lets the answer to a request whose body is still arriving reach the client. Closing a socket
 * with unread bytes in its receive buffer makes the kernel send a reset, and a client still
 * writing its body then gets EPIPE/ECONNRESET and may never read our answer. So the answer is
 * written at once, and `end` — after which Node closes a `Connection: close` socket — waits
 * until the rest of the body has been read and discarded (up to DRAIN_LIMIT_BYTES). The answer
 * goes out chunked, without Content-Length: a client that saw a complete answer would stop
 * sending (Node's http client cancels its pending writes), so it completes only once drained.
 */
function drainThenEnd(req: Request, res: Response): void {
  if (req.complete) return;
  const end = res.end.bind(res) as () => Response;
  let drained = false;
  let endRequested = false;
  let discarded = 0;
  const finish = (): void => {
    if (drained) return;
    drained = true;
    req.off('data', onData);
    if (endRequested) end();
  };
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded > DRAIN_LIMIT_BYTES) req.socket.destroy();
  };
  req.on('data', onData);
  req.once('end', finish);
  req.once('close', finish);
  res.end = function endAfterDrain(this: Response, chunk?: unknown, encoding?: unknown): Response {
    if (drained) return (end as (...args: unknown[]) => Response)(chunk, encoding);
    if (!this.headersSent) this.removeHeader('Content-Length');
    if (chunk !== undefined && typeof chunk !== 'function') this.write(chunk, encoding as BufferEncoding);
    else this.flushHeaders();
    endRequested = true;
    return this;
  } as Response['end'];
  req.resume();
}

/** Answers `error` without waiting for the rest of the body, then drains it (see drainThenEnd). */
function refuse(req: Request, res: Response, next: NextFunction, error: AppError): void {
  res.set('Connection', 'close');
  drainThenEnd(req, res);
  next(error);
}

function parseJson(raw: Buffer, req: Request): unknown {
  const declared = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(req.get('content-type') ?? '')?.[1]?.toLowerCase();
  if (declared !== undefined && declared !== 'utf-8' && declared !== 'utf8') {
    throw new AppError('bad_request', `Unsupported charset "${declared.slice(0, 40)}" for a JSON body`, [{ path: 'body', message: 'charset must be utf-8' }]);
  }
  const text = raw.toString('utf8');
  if (text.trim() === '') return {};
  // Only objects and arrays, as body-parser's `strict` mode: a bare `"x"` or `1` is not a request.
  if (!JSON_START.test(text)) throw new AppError('bad_request', 'Malformed JSON body', [{ path: 'body', message: 'not valid JSON' }]);
  let body: unknown;
  try {
    body = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    // JSON.parse messages quote the body: never echo them.
    throw new AppError('bad_request', 'Malformed JSON body', [{ path: 'body', message: 'not valid JSON' }]);
  }
  const path = tooDeepPath(body);
  if (path !== null) {
    throw new AppError('bad_request', `The request body nests deeper than ${MAX_DEPTH} levels`, [
      { path, message: `nesting deeper than ${MAX_DEPTH} levels` },
    ]);
  }
  return body;
}

/**
 * Reads every request body, whatever the route and content type, within BODY_LIMIT_BYTES, and
 * parses form (qs, bracket keys) and JSON bodies into `req.body`; other content types are read
 * and dropped (`req.body` stays undefined). Mounted once before routing, so no route — not even
 * an unknown one answering 404 — leaves a body unread, which would reset the connection under
 * a client still sending. A body over the limit is answered 413 as soon as that is known (a
 * declared Content-Length, or the byte that crosses it), and drained before the socket closes.
 * Using it again on a route is a no-op.
 */
export function bitrixBody(): RequestHandler {
  return function bitrixBodyParser(req: Request, res: Response, next: NextFunction): void {
    const marked = req as MarkedRequest;
    if (marked[BODY_READ] || !hasBody(req)) return next();
    marked[BODY_READ] = true;

    const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity') {
      return refuse(req, res, next, new AppError('bad_request', 'Compressed request bodies are not accepted', [{ path: 'content-encoding', message: 'must be identity' }]));
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > BODY_LIMIT_BYTES) return refuse(req, res, next, tooLarge());

    readRaw(req, BODY_LIMIT_BYTES).then(
      (outcome) => {
        if (!outcome.ok) {
          if (outcome.reason === 'too_large') return refuse(req, res, next, tooLarge());
          return next(new AppError('bad_request', 'The request body was incomplete'));
        }
        try {
          if (req.is(JSON_TYPES)) req.body = parseJson(outcome.body, req);
          else if (req.is(FORM_TYPE)) {
            const charset = formCharset(req);
            const text = outcome.body.toString(charset === 'utf-8' ? 'utf8' : 'latin1');
            req.body = (charset === 'utf-8' ? parseSimpleForm(text) : null) ?? parseQs(text, charset, 'body');
          }
        } catch (e) {
          return next(e);
        }
        next();
      },
      (e: unknown) => next(e),
    );
  };
}
