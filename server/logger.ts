import { pino } from 'pino';
import { CENSOR, scrubSecrets } from '../src/rules/scrub-secrets.js';

/**
 * The process logger: pino with redaction fed by one list of secret keys (STYLE.md practice 10;
 * SPEC.md section 9: no token, secret or application_token is ever logged). Callers log stable
 * dotted event names as messages, e.g. `log.info({ memberId }, 'install.finished')`.
 *
 * Why not pino `redact` alone: its `*.key` matches exactly one level (`*.access_token` misses
 * `event.auth.access_token`), so covering depth n takes n wildcard paths per key, and every
 * wildcard-first path is run against every logged value. Measured here with 25 keys: depth 3 costs
 * ~50 µs per log line even for `{ memberId }`, depth 5 still leaks the 6th level. So `redact` gets
 * the top-level keys and the serializer paths (cheap: only evaluated when that key is logged), and a
 * single walk over each logged object (`redactSecrets`, a few µs) censors the same keys at any depth
 * and masks secrets inside free text.
 */

/** Every key under which a secret can appear in our log objects; matched case-insensitively at any depth. */
export const SECRET_KEYS: readonly string[] = [
  // OAuth tokens as Bitrix24 sends them in events and robot calls (`auth[...]`) and as the OAuth server answers.
  'access_token',
  'refresh_token',
  'application_token',
  // The same, as posted to the install/app page (form fields).
  'AUTH_ID',
  'REFRESH_ID',
  'APPLICATION_TOKEN',
  // The whole `auth` object of an event or robot call (tokens, and sometimes nothing else worth logging).
  'auth',
  // Robot callback token (answers `bizproc.event.send`).
  'event_token',
  'eventToken',
  // Our own names for the same things (store rows, gateway options, config).
  'accessToken',
  'refreshToken',
  'applicationToken',
  'token',
  'tokens',
  'client_secret',
  'clientSecret',
  'b24ClientSecret',
  'secretKey',
  'password',
  'databaseUrl',
  // HTTP headers.
  'authorization',
  'cookie',
  'set-cookie',
];

export { CENSOR, scrubSecrets };

const SECRET_KEY_SET: ReadonlySet<string> = new Set(SECRET_KEYS.map((k) => k.toLowerCase()));

function pathSegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
}

/** What pino's `redact` gets: every secret key at the top level, and the headers our serializers emit. */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS.map(pathSegment),
  ...['req', 'res'].flatMap((owner) => SECRET_KEYS.map((k) => `${owner}.headers${pathSegment(k).startsWith('[') ? '' : '.'}${pathSegment(k)}`)),
];

// Free-text masking (scrubSecrets) lives in src/rules/scrub-secrets.ts: the installation health
// masks dead jobs' errors with the same patterns.

const MAX_WALK_DEPTH = 16;

function walk(value: unknown, depth: number, seen: Set<object>): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  // Dates, Buffers, URLs …: serialized by their own toJSON, they hold no keyed secrets.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_WALK_DEPTH) return '[too deep to log]';
  if (value instanceof Error) return serializeError(value, depth, seen);
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      let copy: unknown[] | null = null;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const next = walk(item, depth + 1, seen);
        if (next !== item) (copy ??= value.slice())[i] = next;
      }
      return copy ?? value;
    }
    // Plain objects and class instances alike: JSON output is their own enumerable properties.
    let copy: Record<string, unknown> | null = null;
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      const next = SECRET_KEY_SET.has(key.toLowerCase()) ? CENSOR : walk(item, depth + 1, seen);
      if (next !== item) (copy ??= { ...record })[key] = next;
    }
    return copy ?? value;
  } finally {
    seen.delete(value);
  }
}

/** Returns `value` with every SECRET_KEYS entry censored at any depth and secrets in strings masked; unchanged branches are shared, never mutated. */
export function redactSecrets(value: unknown): unknown {
  return walk(value, 0, new Set());
}

// Transport objects of HTTP client errors (axios, as used by b24jssdk, keeps the request with its
// JSON body and `auth` there): never logged.
const ERROR_PROPERTIES_DROPPED = new Set(['config', 'request', 'response', 'headers', 'socket', 'agent', 'options']);

function serializeError(err: Error, depth: number, seen: Set<object>): Record<string, unknown> {
  seen.add(err);
  try {
    const out: Record<string, unknown> = {
      type: err.constructor?.name || err.name,
      message: scrubSecrets(String(err.message)),
      stack: typeof err.stack === 'string' ? scrubSecrets(err.stack) : undefined,
    };
    const record = err as unknown as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (key in out || ERROR_PROPERTIES_DROPPED.has(key)) continue;
      out[key] = SECRET_KEY_SET.has(key.toLowerCase()) ? CENSOR : walk(record[key], depth + 1, seen);
    }
    if (err.cause !== undefined) out.cause = walk(err.cause, depth + 1, seen);
    return out;
  } finally {
    seen.delete(err);
  }
}

function errSerializer(value: unknown): unknown {
  return value instanceof Error ? serializeError(value, 0, new Set()) : redactSecrets(value);
}

interface RequestLike {
  id?: unknown;
  method?: string;
  originalUrl?: string;
  url?: string;
  headers?: unknown;
  socket?: { remoteAddress?: string | undefined } | null;
}

function reqSerializer(req: unknown): unknown {
  if (req === null || typeof req !== 'object') return req;
  const r = req as RequestLike;
  return redactSecrets({
    method: r.method,
    url: r.originalUrl ?? r.url,
    headers: r.headers,
    remoteAddress: r.socket?.remoteAddress,
  });
}

interface ResponseLike {
  statusCode?: number;
  getHeaders?: () => unknown;
}

function resSerializer(res: unknown): unknown {
  if (res === null || typeof res !== 'object') return res;
  const r = res as ResponseLike;
  return redactSecrets({ statusCode: r.statusCode, headers: typeof r.getHeaders === 'function' ? r.getHeaders() : undefined });
}

// Keys whose values pass through a serializer (which redacts its own output) instead of the generic walk.
const SERIALIZED_KEYS = new Set(['err', 'error', 'req', 'res']);

function redactLogObject(obj: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | null = null;
  for (const key of Object.keys(obj)) {
    if (SERIALIZED_KEYS.has(key)) continue;
    const item = obj[key];
    const next = SECRET_KEY_SET.has(key.toLowerCase()) ? CENSOR : redactSecrets(item);
    if (next !== item) (copy ??= { ...obj })[key] = next;
  }
  return copy ?? obj;
}

export function createLogger(opts: { level: string; destination?: pino.DestinationStream }): pino.Logger {
  const options: pino.LoggerOptions = {
    level: opts.level,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACT_PATHS], censor: CENSOR },
    serializers: { err: errSerializer, error: errSerializer, req: reqSerializer, res: resSerializer },
    formatters: { log: redactLogObject },
    hooks: {
      // Messages are meant to be stable event names; a library message passed by mistake is masked.
      logMethod(args, method) {
        const [first, second] = args as unknown[];
        const scrubbed: unknown[] = args.map((a: unknown) => (typeof a === 'string' ? scrubSecrets(a) : a));
        // `log.error(err)` makes err.message the message.
        if (first instanceof Error && typeof second !== 'string') scrubbed.splice(1, 0, scrubSecrets(first.message));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
  };
  const logger = opts.destination ? pino(options, opts.destination) : pino(options);
  // pino runs `formatters.bindings` for the root only; children inherit this override, so
  // `log.child({ portal })` bindings are redacted at any depth too.
  const child = logger.child;
  logger.child = function redactedChild<L extends string = never>(this: pino.Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions<L>): pino.Logger<L> {
    return Reflect.apply(child, this, [redactLogObject(bindings), childOptions]) as pino.Logger<L>;
  };
  return logger;
}
