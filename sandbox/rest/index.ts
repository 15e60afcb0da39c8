/**
 * The sandbox's REST endpoint: `/rest/<method>`, `/rest//<method>`, `/rest/<method>.json`, any
 * HTTP verb, JSON / form / query-string parameters (bracket keys), `auth` in body or query,
 * CORS for app iframes, a per-portal leaky bucket, and Bitrix24's envelope and error shapes.
 */
import { Router, type Request, type Response } from 'express';
import qs from 'qs';
import type { SandboxPortal } from '../portal.js';
import { PortalError } from '../types.js';
import type { Row } from '../types.js';
import { QS_OPTIONS, runBatch } from './batch.js';
import { coreMethods } from './core-methods.js';
import { crmMethods } from './crm-methods.js';
import { invokeIn, isObject, timeBlock, type CallContext, type CallOutcome, type MethodDef } from './registry.js';

export interface RestOptions {
  /** Leaky bucket per portal (default drain 2/s, burst 50); false disables it. */
  limits?: { drainPerSec: number; burst: number } | false;
  /** Counters for benchmarks: REST requests admitted and refused by the bucket. */
  stats?: RestStats;
}

export interface RestStats {
  requests: number;
  throttled: number;
  /** Methods run: one per plain request, one per command inside a batch. */
  commands: number;
  /** Requests per method name (a batch counts under `batch:<inner methods>`, for benchmarks' breakdowns). */
  byMethod: Record<string, number>;
}

export const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Allow-Headers': 'content-type, authorization, x-requested-with',
  'Access-Control-Max-Age': '86400',
};

const BODY_LIMIT = 20 * 1024 * 1024;

/** Every method name the sandbox answers (lower case). */
export function methodTable(): Map<string, MethodDef> {
  const table = new Map<string, MethodDef>();
  for (const [name, def] of Object.entries({ ...coreMethods, ...crmMethods })) table.set(name.toLowerCase(), def);
  const invoke = (method: string, params: Row, ctx: CallContext): CallOutcome => invokeIn(table, method, params, ctx);
  table.set('batch', { handler: (params, ctx) => runBatch(params, ctx, invoke) });
  return table;
}

async function readBody(req: Request): Promise<unknown> {
  if (req.body !== undefined) return req.body;
  if (req.method === 'GET' || req.method === 'HEAD') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new PortalError('INVALID_REQUEST', 'Request body is too large', 413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Query string + body as one parameter object (body wins). */
export async function requestParams(req: Request): Promise<Row> {
  const url = req.originalUrl ?? req.url;
  const q = url.indexOf('?');
  const query = q >= 0 ? (qs.parse(url.slice(q + 1), QS_OPTIONS) as Row) : {};
  const body = await readBody(req);
  let parsed: Row = {};
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    const text = body.toString().trim();
    const type = String(req.headers['content-type'] ?? '').toLowerCase();
    if (text === '') parsed = {};
    else if (type.includes('json') || ((text.startsWith('{') || text.startsWith('[')) && !type.includes('x-www-form-urlencoded'))) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new PortalError('INVALID_REQUEST', 'Malformed JSON body', 400);
      }
      parsed = isObject(json) ? json : {};
    } else if (type.includes('multipart/form-data')) {
      throw new PortalError('INVALID_REQUEST', 'multipart/form-data is not supported by the sandbox; send JSON or a form', 400);
    } else parsed = qs.parse(text, QS_OPTIONS) as Row;
  } else if (isObject(body)) {
    // A body parser mounted before us: rebuild bracket keys a flat parser left behind.
    parsed = Object.keys(body).some((k) => k.includes('[')) ? (qs.parse(qs.stringify(body), QS_OPTIONS) as Row) : body;
  }
  return { ...query, ...parsed };
}

function sendError(res: Response, e: PortalError): void {
  const body: Row = { error: e.code, error_description: e.description };
  if (e.argument) body.argument = e.argument;
  res.status(e.status).json(body);
}

export function restRoutes(portal: SandboxPortal, opts: RestOptions = {}): Router {
  // The bucket drains and the envelope's `time` is measured on the portal's clock.
  const now = portal.now;
  // Read at every request, so a benchmark can switch the limits off for its set-up and on again.
  const limitsNow = () => (opts.limits === false ? null : (opts.limits ?? { drainPerSec: 2, burst: 50 }));
  const table = methodTable();
  const bucket = { level: 0, at: now() };

  /** +1 for this request; false when the bucket is full. */
  const admit = (): boolean => {
    const limits = limitsNow();
    if (!limits) return true;
    const t = now();
    bucket.level = Math.max(0, bucket.level - ((t - bucket.at) / 1000) * limits.drainPerSec);
    bucket.at = t;
    if (bucket.level + 1 > limits.burst) return false;
    bucket.level += 1;
    return true;
  };

  const router = Router();
  router.use('/rest', async (req, res) => {
    res.set(CORS_HEADERS);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    const started = now();
    try {
      if (!admit()) {
        if (opts.stats) opts.stats.throttled++;
        throw new PortalError('QUERY_LIMIT_EXCEEDED', 'Too many requests', 503);
      }
      if (opts.stats) opts.stats.requests++;
      const segments = req.path.split('/').filter(Boolean);
      const last = segments[segments.length - 1] ?? '';
      const method = last.replace(/\.json$/i, '').toLowerCase();
      const params = await requestParams(req);
      if (segments.length >= 3 && /^\d+$/.test(segments[0]!)) {
        throw new PortalError('NO_AUTH_FOUND', 'Wrong authorization data', 401);
      }
      let token = params.auth;
      delete params.auth;
      const header = String(req.headers.authorization ?? '');
      if ((typeof token !== 'string' || !token) && /^Bearer\s+/i.test(header)) token = header.replace(/^Bearer\s+/i, '');
      if (typeof token !== 'string' || !token) throw new PortalError('NO_AUTH_FOUND', 'Wrong authorization data', 401);
      const who = portal.authenticate(token);
      if (who === 'expired') throw new PortalError('expired_token', 'The access token provided has expired.', 401);
      const user = who ? portal.user(who.userId) : null;
      if (!who || !user) throw new PortalError('NO_AUTH_FOUND', 'Wrong authorization data', 401);
      if (!method) throw new PortalError('ERROR_METHOD_NOT_FOUND', 'Method not found!', 404);
      const ctx: CallContext = {
        portal,
        clientId: who.clientId,
        userId: who.userId,
        user,
        app: portal.app(who.clientId),
        actor: { userId: who.userId, clientId: who.clientId },
        now,
      };
      if (opts.stats) {
        const cmd = method === 'batch' && isObject(params.cmd) ? Object.values(params.cmd) : Array.isArray(params.cmd) ? params.cmd : null;
        const inner = cmd ? [...new Set(cmd.map((c) => String(c).split('?')[0]))].sort().join('+') : '';
        opts.stats.commands += cmd ? cmd.length : 1;
        const key = cmd ? `batch:${inner}` : method;
        opts.stats.byMethod[key] = (opts.stats.byMethod[key] ?? 0) + 1;
      }
      const out = invokeIn(table, method, params, ctx);
      const body: Row = { result: out.result };
      if (out.total !== undefined) body.total = out.total;
      if (out.next !== undefined) body.next = out.next;
      body.time = timeBlock(started, now());
      res.status(200).json(body);
    } catch (e) {
      if (e instanceof PortalError) sendError(res, e);
      else {
        console.error('sandbox REST: unexpected failure', e);
        sendError(res, new PortalError('INTERNAL_SERVER_ERROR', 'Internal server error', 500));
      }
    }
  });
  return router;
}
