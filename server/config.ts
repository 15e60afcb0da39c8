import path from 'node:path';
import { validateDetailed } from 'node-cron';
import { z } from 'zod';

/**
 * The process configuration: one zod schema over the environment, parsed once at start-up.
 * This module is the only reader of `process.env` (STYLE.md practice 1; SPEC.md section 2).
 * A bad environment throws one ConfigError naming every bad key; secret values never appear in it.
 */

export const ROLES = ['web', 'worker', 'all'] as const;
export type Role = (typeof ROLES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const MIN_SECRET_KEY_LENGTH = 32;

interface BaseConfig {
  readonly port: number;
  /** Absolute http(s) URL without a trailing slash. */
  readonly appBaseUrl: string;
  /** Absolute path. */
  readonly dataDir: string;
  /** `null` selects the embedded store. */
  readonly databaseUrl: string | null;
  /** Without a trailing slash. */
  readonly oauthUrl: string;
  readonly allowInsecurePortals: boolean;
  readonly role: Role;
  readonly logLevel: LogLevel;
  /** node-cron schedule (5 or 6 fields) of the periodic reconciliation (SPEC 6). */
  readonly reconcileCron: string;
}

/** No Bitrix24 credentials: the sandbox portal runs. The caller derives and persists a secret key when none is set. */
export interface SandboxConfig extends BaseConfig {
  readonly sandboxMode: true;
  /** SANDBOX_PORT: where the sandbox portal listens (default PORT + 1). */
  readonly sandboxPort: number;
  readonly b24ClientId: null;
  readonly b24ClientSecret: null;
  readonly secretKey: string | null;
}

export interface ProductionConfig extends BaseConfig {
  readonly sandboxMode: false;
  readonly b24ClientId: string;
  readonly b24ClientSecret: string;
  readonly secretKey: string;
}

export type Config = SandboxConfig | ProductionConfig;

export interface ConfigProblem {
  readonly key: string;
  readonly problem: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `  ${p.key}: ${p.problem}`);
    super(`Invalid environment (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Describes a non-secret value for an error message: quoted, shortened, control characters escaped. */
function shown(value: string): string {
  const short = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  const printable = Array.from(short, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : c;
  }).join('');
  return `'${printable}'`;
}

/** Returns a description of what is wrong with `value`, or null when it is fine. */
type Check = (value: string) => string | null;

/** An unset or blank variable is `undefined`; a set one is trimmed, then checked. */
function envVar(check?: Check) {
  return z
    .preprocess((v) => (typeof v === 'string' ? v.trim() || undefined : v), z.string().optional())
    .superRefine((value, ctx) => {
      if (value === undefined || !check) return;
      const problem = check(value);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    });
}

const isPort: Check = (v) => {
  const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  return n >= 1 && n <= 65535 ? null : `expected an integer 1..65535, got ${shown(v)}`;
};

const isHttpUrl: Check = (v) => {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `expected an absolute http(s) URL, got ${shown(v)}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `expected an absolute http(s) URL, got ${shown(v)}`;
  if (url.username || url.password) return 'must not contain credentials';
  if (url.search || url.hash) return `must not contain a query or a fragment, got ${shown(v)}`;
  return null;
};

// DATABASE_URL usually embeds a password: its value is never quoted back.
const isPostgresUrl: Check = (v) => {
  if (!/^postgres(?:ql)?:\/\//i.test(v)) return 'expected a postgres:// or postgresql:// URL';
  try {
    new URL(v);
  } catch {
    return 'expected a postgres:// or postgresql:// URL (it does not parse as a URL)';
  }
  return null;
};

const isSecretKey: Check = (v) =>
  v.length >= MIN_SECRET_KEY_LENGTH
    ? null
    : `must be at least ${MIN_SECRET_KEY_LENGTH} characters, got ${v.length}`;

const BOOLEAN_WORDS = ['true', 'false', '1', '0'];
const isBoolean: Check = (v) =>
  BOOLEAN_WORDS.includes(v.toLowerCase()) ? null : `expected one of true, false, 1, 0, got ${shown(v)}`;

const oneOf =
  (allowed: readonly string[]): Check =>
  (v) =>
    allowed.includes(v.toLowerCase()) ? null : `expected one of ${allowed.join(', ')}, got ${shown(v)}`;

export const DEFAULT_RECONCILE_CRON = '*/5 * * * *';

const isCron: Check = (v) => {
  const fields = v.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    return `expected a node-cron schedule of 5 fields (minute hour day month weekday) or 6 (seconds first), got ${fields} in ${shown(v)}`;
  }
  const { valid, errors } = validateDetailed(v);
  return valid ? null : `not a valid node-cron schedule ${shown(v)}: ${errors.map((e) => e.message).join('; ')}`;
};

function withoutTrailingSlash(url: string): string {
  return new URL(url).href.replace(/\/+$/, '');
}

const EnvSchema = z
  .object({
    PORT: envVar(isPort),
    APP_BASE_URL: envVar(isHttpUrl),
    DATA_DIR: envVar(),
    DATABASE_URL: envVar(isPostgresUrl),
    B24_CLIENT_ID: envVar(),
    B24_CLIENT_SECRET: envVar(),
    B24_OAUTH_URL: envVar(isHttpUrl),
    SARAFAN_SECRET_KEY: envVar(isSecretKey),
    B24_ALLOW_INSECURE_PORTALS: envVar(isBoolean),
    SANDBOX_PORT: envVar(isPort),
    SARAFAN_ROLE: envVar(oneOf(ROLES)),
    LOG_LEVEL: envVar(oneOf(LOG_LEVELS)),
    SARAFAN_RECONCILE_CRON: envVar(isCron),
  })
  .superRefine(
    (env, ctx) => {
      // Credentials decide the mode, so half a pair is a mistake, not sandbox mode.
      if (env.B24_CLIENT_ID !== undefined && env.B24_CLIENT_SECRET === undefined) {
        ctx.addIssue({ code: 'custom', path: ['B24_CLIENT_SECRET'], message: 'required when B24_CLIENT_ID is set (set both or neither)' });
      }
      if (env.B24_CLIENT_SECRET !== undefined && env.B24_CLIENT_ID === undefined) {
        ctx.addIssue({ code: 'custom', path: ['B24_CLIENT_ID'], message: 'required when B24_CLIENT_SECRET is set (set both or neither)' });
      }
      const production = env.B24_CLIENT_ID !== undefined || env.B24_CLIENT_SECRET !== undefined;
      if (!production && env.SANDBOX_PORT !== undefined && env.SANDBOX_PORT === (env.PORT ?? '3000')) {
        ctx.addIssue({ code: 'custom', path: ['SANDBOX_PORT'], message: `must differ from PORT (${env.PORT ?? '3000'}): the sandbox portal is a separate site` });
      }
      if (production && env.SARAFAN_SECRET_KEY === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['SARAFAN_SECRET_KEY'],
          message: `required outside sandbox mode (B24 credentials are set); at least ${MIN_SECRET_KEY_LENGTH} characters`,
        });
      }
    },
    // Cross-key rules run even when single keys failed, so one error lists every problem.
    { when: () => true },
  )
  .transform((env): Config => {
    const port = env.PORT === undefined ? 3000 : Number(env.PORT);
    const base = {
      port,
      appBaseUrl: withoutTrailingSlash(env.APP_BASE_URL ?? `http://localhost:${port}`),
      dataDir: path.resolve(env.DATA_DIR ?? './data'),
      databaseUrl: env.DATABASE_URL ?? null,
      oauthUrl: withoutTrailingSlash(env.B24_OAUTH_URL ?? 'https://oauth.bitrix.info'),
      allowInsecurePortals: ['true', '1'].includes((env.B24_ALLOW_INSECURE_PORTALS ?? 'false').toLowerCase()),
      role: (env.SARAFAN_ROLE?.toLowerCase() ?? 'all') as Role,
      logLevel: (env.LOG_LEVEL?.toLowerCase() ?? 'info') as LogLevel,
      reconcileCron: env.SARAFAN_RECONCILE_CRON?.replace(/\s+/g, ' ') ?? DEFAULT_RECONCILE_CRON,
    };
    if (env.B24_CLIENT_ID !== undefined && env.B24_CLIENT_SECRET !== undefined && env.SARAFAN_SECRET_KEY !== undefined) {
      return {
        ...base,
        sandboxMode: false,
        b24ClientId: env.B24_CLIENT_ID,
        b24ClientSecret: env.B24_CLIENT_SECRET,
        secretKey: env.SARAFAN_SECRET_KEY,
      };
    }
    // Sandbox mode: the local sandbox portal is also the OAuth server, and it lives on loopback.
    const sandboxPort = env.SANDBOX_PORT === undefined ? port + 1 : Number(env.SANDBOX_PORT);
    return {
      ...base,
      oauthUrl: withoutTrailingSlash(env.B24_OAUTH_URL ?? `http://localhost:${sandboxPort}`),
      allowInsecurePortals: true,
      sandboxMode: true,
      sandboxPort,
      b24ClientId: null,
      b24ClientSecret: null,
      secretKey: env.SARAFAN_SECRET_KEY ?? null,
    };
  });

/** Parses and validates the environment; throws ConfigError listing every bad key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = EnvSchema.safeParse(env);
  if (!result.success) {
    // Our own messages never quote secret values; zod's generic ones never quote inputs.
    throw new ConfigError(
      result.error.issues.map((issue) => ({ key: issue.path.map(String).join('.') || '(environment)', problem: issue.message })),
    );
  }
  return Object.freeze(result.data);
}
