/**
 * One gateway per portal over @bitrix24/b24jssdk (SPEC 6, STYLE.md practice 11): the SDK's
 * `B24OAuth` owns the per-portal rate limiter (leaky bucket, 503/429 waits) and the
 * refresh-on-401 replay; this module owns what the SDK leaves open:
 *
 * - refresh: a custom refresh (`setCustomRefreshAuth`) posts to B24_OAUTH_URL only, checks the
 *   answer, persists the rotated pair through `installations.saveTokens` and only then hands it
 *   to the SDK, so no request ever uses a pair that is not stored. One refresh per portal at a
 *   time; a 401 for a request sent just before a refresh replays with the new pair instead of
 *   rotating again (reference §2: a spent refresh token may be dead).
 * - errors: Bitrix24's `error_description` is recovered when `error` is "" (legacy CRM
 *   "Not found", which the SDK reports as ERR_BAD_REQUEST), and every failure becomes a
 *   PortalCallError.
 * - retries: the SDK retries 503/QUERY_LIMIT_EXCEEDED, 429/OPERATION_TIME_LIMIT, 502/504 and
 *   network errors; 5xx answers carrying a code it treats as fatal (500 INTERNAL_SERVER_ERROR,
 *   ERROR_UNEXPECTED_ANSWER) are retried here with the same backoff.
 * - batch: sent as a raw `batch` call (`halt: 0`, named commands) and parsed here, because the
 *   SDK's batch parser turns a sub-error with an empty code into a success with no result.
 * - list: `start=-1` + `>ID` paging (reference §3.3), page by page through the retrying call.
 * - SSRF: the portal endpoint is checked when a client is created, its name is resolved
 *   before the first call, and every connection re-checks the resolved address.
 *
 * Known limits: the rate limiter lives in this process; several instances calling one portal
 * share the portal's bucket without knowing it (the 503 backoff then absorbs the excess).
 * `whoIs` uses a short-lived client with the user's token, outside the portal's limiter.
 * Retried writes may repeat a write the portal performed before failing (callers are idempotent).
 */
import { createHash } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import qs from 'qs';
import { z } from 'zod';
import {
  AbstractLogger,
  ApiVersion,
  B24OAuth,
  EnumAppStatus,
  LogLevel,
  ParamsFactory,
  RestrictionManager,
  SdkError,
  type AdaptiveConfig,
  type AjaxResult,
  type B24OAuthParams,
  type HandlerRefreshAuth,
  type OperatingLimitConfig,
  type RateLimitConfig,
  type RestrictionParams,
} from '@bitrix24/b24jssdk';
import { AppError, PortalCallError } from '../handlers/errors.js';
import type { Installation, InstallationRepo, Log, PortalTokens, PortalUser } from '../handlers/ports.js';
import type { BatchCommand, BatchOutcome, PortalGateway, PortalGatewayFactory } from './portal-gateway.js';
import { createOAuthServer, normalizeOAuthUrl } from './oauth-server.js';
import { assertResolvesPublic, checkPortalEndpoint, createPublicOnlyLookup, INSECURE_LOOKUP_CODE, type LookupAll } from './portal-endpoint.js';

/**
 * Sees every HTTP request sent to a portal's REST API — each retry and refresh replay too — with
 * the status it got (0 when no answer came) and Bitrix24's error code, if any (operations:
 * `/metrics` counts requests and throttles per portal). It must not throw.
 */
export interface PortalCallObserver {
  requested(memberId: string, outcome: { status: number; error: string | null }): void;
}

/** SDK restriction settings; every key optional, sub-objects merged over the SDK defaults. */
export interface RestrictionOverrides {
  rateLimit?: Partial<RateLimitConfig>;
  operatingLimit?: Partial<OperatingLimitConfig>;
  adaptiveConfig?: Partial<AdaptiveConfig>;
  /** Base backoff (ms) for network errors and 5xx; default 1000. */
  retryDelay?: number;
  retryOnNetworkError?: boolean;
  hardErrorCodes?: string[];
  softErrorCodes?: string[];
}

export interface PortalGatewaysOptions {
  installations: Pick<InstallationRepo, 'saveTokens'>;
  clientId: string;
  clientSecret: string;
  /** B24_OAUTH_URL: every refresh goes here (`/oauth/token/`), whatever the portal says. */
  oauthUrl: string;
  allowInsecure: boolean;
  log: Log;
  restrictionParams?: RestrictionOverrides;
  /** Retries after the first attempt for retryable failures; default 4. */
  maxRetries?: number;
  /** DNS used by the public-address checks (tests inject one). */
  lookup?: LookupAll;
  /** Transport to the OAuth server (tests). */
  fetchImpl?: typeof fetch;
  now?: () => number;
  /** whoIs cache: entries kept (default 10 000) and their lifetime (default 5 min). */
  whoIsCacheSize?: number;
  whoIsTtlMs?: number;
  observer?: PortalCallObserver;
}

/** Fixed page size of list methods (reference §3.3) and batch size limit (§3.4). */
const PAGE = 50;
const BATCH_MAX = 50;
/** A 401 this soon after a rotation came from a request sent with the previous pair. */
const RECENT_ROTATION_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;

interface Client {
  endpoint: string;
  b24: B24OAuth;
  /** The DNS check of this endpoint (kept once it succeeded). */
  checked: Promise<void> | null;
}

interface Portal {
  memberId: string;
  installationId: number;
  /** The pair the SDK holds (or will be handed at its next refresh). */
  tokens: PortalTokens;
  persisted: boolean;
  rotatedAt: number;
  /** Refresh tokens this process rotated away from (the store may still hand them back). */
  spent: string[];
  refreshing: Promise<HandlerRefreshAuth> | null;
  client: Client | null;
}

/** A marker for a refresh the SDK asked for where none may happen (whoIs with a user's token). */
class RefreshRefused extends Error {}

const profileSchema = z.object({
  ID: z.union([z.number().int().positive(), z.string().regex(/^\d+$/).transform(Number)]),
  ADMIN: z.union([z.boolean(), z.enum(['Y', 'N', '1', '0']), z.literal(1), z.literal(0)]).optional(),
});

/** Context keys of SDK log records that carry no request data or secrets. */
const SAFE_SDK_KEYS = ['requestId', 'method', 'wait', 'attempt', 'status', 'limiter', 'times', 'api', 'duration'];

/** Forwards the SDK's own log records to ours at debug, reduced to safe keys. */
class SdkLogForwarder extends AbstractLogger {
  constructor(
    private readonly sink: Log,
    private readonly memberId: string,
  ) {
    super();
  }

  override async log(level: LogLevel, message: string, context?: Record<string, unknown>): Promise<void> {
    const fields: Record<string, unknown> = { memberId: this.memberId, sdkLevel: LogLevel[level] };
    for (const key of SAFE_SDK_KEYS) if (context && context[key] !== undefined) fields[key] = context[key];
    const error = context?.error;
    if (error && typeof error === 'object' && 'code' in error) fields.code = (error as { code: unknown }).code;
    this.sink.debug(fields, `portal.sdk: ${message}`);
  }
}

function restrictionParamsFor(o: RestrictionOverrides | undefined, attempts: number): RestrictionParams {
  const d = ParamsFactory.getDefault();
  return {
    ...d,
    ...(o?.retryDelay !== undefined ? { retryDelay: o.retryDelay } : {}),
    ...(o?.retryOnNetworkError !== undefined ? { retryOnNetworkError: o.retryOnNetworkError } : {}),
    ...(o?.softErrorCodes ? { softErrorCodes: o.softErrorCodes } : {}),
    rateLimit: { ...d.rateLimit!, ...o?.rateLimit },
    operatingLimit: { ...d.operatingLimit!, ...o?.operatingLimit },
    adaptiveConfig: { ...d.adaptiveConfig!, ...o?.adaptiveConfig },
    maxRetries: attempts,
    // A connection refused by the public-address guard is final.
    hardErrorCodes: [...(o?.hardErrorCodes ?? []), INSECURE_LOOKUP_CODE],
  };
}

/** B24OAuth whose axios client gets our transport options (the SDK exposes no other hook). */
function clientClass(httpOptions: object | null): typeof B24OAuth {
  return class PortalB24OAuth extends B24OAuth {
    protected override _getHttpOptions(): null | object {
      return httpOptions;
    }
  };
}

/** Reports each request of this client's axios instance (the SDK's documented `ajaxClient`) to the observer. */
function observeRequests(b24: B24OAuth, memberId: string, observer: PortalCallObserver | undefined): void {
  if (!observer) return;
  const errorOf = (body: unknown): string | null => (isRecord(body) && typeof body.error === 'string' ? body.error : null);
  const report = (status: unknown, body: unknown): void => {
    try {
      observer.requested(memberId, { status: typeof status === 'number' ? status : 0, error: errorOf(body) });
    } catch {
      // Counting must never fail a portal call.
    }
  };
  b24.getHttpClient(ApiVersion.v2).ajaxClient.interceptors.response.use(
    (response) => {
      report(response.status, response.data);
      return response;
    },
    (e: unknown) => {
      const response = isRecord(e) && isRecord(e.response) ? e.response : null;
      report(response?.status, response?.data);
      return Promise.reject(e);
    },
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The body the portal answered, from the axios error the SDK keeps as `originalError`. */
function responseBody(original: unknown): unknown {
  if (!isRecord(original)) return undefined;
  const response = original.response;
  return isRecord(response) ? response.data : undefined;
}

function originalOf(e: unknown): unknown {
  return e instanceof SdkError ? e.originalError : undefined;
}

/** Our own refusal (insecure endpoint, OAuth refusal) behind an SDK wrapper, if any. */
function appErrorOf(e: unknown): AppError | null {
  if (e instanceof AppError) return e;
  const original = originalOf(e);
  return original instanceof AppError ? original : null;
}

const TRANSPORT_CODES = new Set(['NETWORK_ERROR', 'JSSDK_AXIOS_ERROR', 'ERR_NETWORK', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** Every failure of a portal call as a PortalCallError, with Bitrix24's own code and description when it sent them. */
export function toPortalCallError(method: string, e: unknown): PortalCallError {
  if (e instanceof PortalCallError) return e;
  const own = appErrorOf(e);
  if (own) return new PortalCallError(method, own.code, 0, own.message, { cause: own });
  if (e instanceof SdkError) {
    const body = responseBody(e.originalError);
    if (isRecord(body) && typeof body.error === 'string') {
      const description = typeof body.error_description === 'string' ? body.error_description : '';
      return new PortalCallError(method, body.error, e.status, description || (body.error ? '' : e.message));
    }
    if (e.status === 0 && TRANSPORT_CODES.has(e.code)) return new PortalCallError(method, 'NETWORK_ERROR', 0, e.message);
    return new PortalCallError(method, e.code, e.status, e.message);
  }
  return new PortalCallError(method, 'UNKNOWN_ERROR', 0, e instanceof Error ? e.message : String(e));
}

export function createPortalGateways(opts: PortalGatewaysOptions): PortalGatewayFactory {
  const oauthBase = normalizeOAuthUrl(opts.oauthUrl, opts.allowInsecure);
  const serverEndpoint = `${oauthBase}/rest/`;
  const oauth = createOAuthServer({
    oauthUrl: oauthBase,
    clientId: opts.clientId,
    clientSecret: opts.clientSecret,
    allowInsecure: opts.allowInsecure,
    ...(opts.fetchImpl ? { fetchImpl: opts.fetchImpl } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const now = opts.now ?? Date.now;
  const log = opts.log;
  const maxRetries = Math.max(0, opts.maxRetries ?? 4);
  const retryDelay = opts.restrictionParams?.retryDelay ?? 1000;
  const hardCodes = new Set([...RestrictionManager.BUILT_IN_HARD_ERROR_CODES, ...(opts.restrictionParams?.hardErrorCodes ?? [])]);
  const lookup = opts.lookup;
  const Client = clientClass(
    opts.allowInsecure ? null : { httpsAgent: new HttpsAgent({ keepAlive: true, lookup: createPublicOnlyLookup(lookup) }) },
  );
  const portals = new Map<string, Portal>();
  const whoIsCache = new Map<string, { memberId: string; user: PortalUser; expiresAt: number }>();
  const whoIsCacheSize = opts.whoIsCacheSize ?? 10_000;
  const whoIsTtlMs = opts.whoIsTtlMs ?? 5 * 60_000;

  /**
   * The SDK checks a token's `expires` against the wall clock (AuthOAuthManager.getAuthData),
   * while Sarafan and the portal agree on `now()` (the sandbox demo replays months of history
   * on a clock running behind the wall clock). The SDK is told the remaining lifetime on its own
   * clock; with the system clock this is the stored value.
   */
  const sdkExpires = (expiresAt: Date): number => Math.floor((Date.now() + expiresAt.getTime() - now()) / 1000);

  function oauthParams(memberId: string, endpoint: string, tokens: PortalTokens, inst: Installation | null): B24OAuthParams {
    return {
      applicationToken: '',
      userId: inst?.userId ?? 0,
      memberId,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expires: sdkExpires(tokens.expiresAt),
      expiresIn: Math.max(0, Math.round((tokens.expiresAt.getTime() - now()) / 1000)),
      scope: inst?.scope ?? '',
      domain: new URL(endpoint).host,
      clientEndpoint: endpoint,
      // Refreshes (were they ever left to the SDK) go to B24_OAUTH_URL, never to a host from an answer.
      serverEndpoint,
      status: EnumAppStatus.Free,
    };
  }

  function refreshPayload(p: Portal): HandlerRefreshAuth {
    return {
      access_token: p.tokens.accessToken,
      refresh_token: p.tokens.refreshToken,
      expires: String(sdkExpires(p.tokens.expiresAt)),
      expires_in: String(Math.max(0, Math.round((p.tokens.expiresAt.getTime() - now()) / 1000))),
      client_endpoint: p.client?.endpoint ?? '',
      server_endpoint: serverEndpoint,
      member_id: p.memberId,
      scope: '',
      status: EnumAppStatus.Free,
      domain: '',
    };
  }

  async function persist(p: Portal): Promise<void> {
    try {
      await opts.installations.saveTokens(p.installationId, p.tokens);
      p.persisted = true;
    } catch (e) {
      let error = e instanceof Error ? e.message : String(e);
      for (const secret of [p.tokens.accessToken, p.tokens.refreshToken]) error = error.split(secret).join('***');
      log.error({ memberId: p.memberId, portalId: p.installationId, error }, 'gateway.tokens_persist_failed');
      throw e;
    }
  }

  /** The SDK's refresh for one portal: one at a time, persisted before the SDK sees the pair. */
  function refresh(p: Portal): Promise<HandlerRefreshAuth> {
    if (p.refreshing) return p.refreshing;
    const run = (async () => {
      if (p.rotatedAt && now() - p.rotatedAt < RECENT_ROTATION_MS && p.tokens.expiresAt.getTime() > now()) {
        if (!p.persisted) await persist(p);
        return refreshPayload(p);
      }
      const grant = await oauth.refresh(p.tokens.refreshToken);
      if (grant.memberId !== p.memberId) {
        throw new AppError('install_unverified', 'The OAuth server answered the refresh for another portal');
      }
      // Hold the new pair at once: the previous refresh token may be spent even if storing fails.
      p.spent = [p.tokens.refreshToken, ...p.spent].slice(0, 8);
      p.tokens = { accessToken: grant.accessToken, refreshToken: grant.refreshToken, expiresAt: grant.expiresAt };
      p.rotatedAt = now();
      p.persisted = false;
      await persist(p);
      log.info({ memberId: p.memberId, portalId: p.installationId }, 'gateway.tokens_rotated');
      // The SDK keeps calling the stored endpoint; a renamed portal is picked up when the
      // installation's endpoint is updated (the port has no way to store it from here).
      const stored = p.client ? new URL(p.client.endpoint).host : null;
      const confirmed = new URL(grant.clientEndpoint).host;
      if (stored && stored !== confirmed) log.warn({ memberId: p.memberId, portalId: p.installationId, stored, confirmed }, 'gateway.endpoint_changed');
      return refreshPayload(p);
    })();
    p.refreshing = run;
    run.then(
      () => (p.refreshing = null),
      () => (p.refreshing = null),
    );
    return run;
  }

  function createClient(p: Portal, inst: Installation): Client {
    checkPortalEndpoint(inst.clientEndpoint, { allowInsecure: opts.allowInsecure });
    const b24 = new Client(
      oauthParams(p.memberId, inst.clientEndpoint, p.tokens, inst),
      // The SDK never needs our secret: refreshes go through `refresh` above.
      { clientId: opts.clientId, clientSecret: '' },
      { restrictionParams: restrictionParamsFor(opts.restrictionParams, maxRetries + 1) },
    );
    b24.offClientSideWarning();
    b24.setLogger(new SdkLogForwarder(log, p.memberId));
    b24.setCustomRefreshAuth(() => refresh(p));
    observeRequests(b24, p.memberId, opts.observer);
    return { endpoint: inst.clientEndpoint, b24, checked: null };
  }

  /** The portal's record and client, created or renewed from the installation as needed. */
  function acquire(inst: Installation): { p: Portal; client: Client } {
    let p = portals.get(inst.memberId);
    if (p && p.installationId !== inst.id) {
      portals.delete(inst.memberId);
      p = undefined;
    }
    if (!p) {
      if (!inst.tokens) throw new AppError('unauthorized', 'The portal has no tokens (not verified or uninstalled)');
      p = { memberId: inst.memberId, installationId: inst.id, tokens: inst.tokens, persisted: true, rotatedAt: 0, spent: [], refreshing: null, client: null };
      portals.set(inst.memberId, p);
    } else if (!p.refreshing && inst.tokens && inst.tokens.refreshToken !== p.tokens.refreshToken && !p.spent.includes(inst.tokens.refreshToken)) {
      // A pair this process never held: another instance rotated it (ours is spent) or a reinstall stored it.
      p.tokens = inst.tokens;
      p.persisted = true;
      p.client = null;
    }
    if (!p.client || p.client.endpoint !== inst.clientEndpoint) p.client = createClient(p, inst);
    return { p, client: p.client };
  }

  /**
   * Refuses a host that resolves to a non-public address before the first call. A name that
   * does not resolve is left to the connection (which cannot reach anything then, and whose
   * own lookup applies the same rule), so it is checked again next time.
   */
  async function checkResolution(hostname: string): Promise<'public' | 'unresolved'> {
    try {
      await assertResolvesPublic(hostname, lookup);
      return 'public';
    } catch (e) {
      if (e instanceof AppError && e.code === 'portal_unavailable') return 'unresolved';
      throw e;
    }
  }

  async function ready(client: Client): Promise<void> {
    if (opts.allowInsecure) return;
    if (!client.checked) {
      const check = checkResolution(new URL(client.endpoint).hostname).then((outcome) => {
        if (outcome === 'unresolved' && client.checked === check) client.checked = null;
      });
      client.checked = check;
      check.catch(() => {
        if (client.checked === check) client.checked = null;
      });
    }
    await client.checked;
  }

  /** Failures the SDK gave up on at once but that are worth another try. */
  function retryableHere(e: unknown): boolean {
    const own = appErrorOf(e);
    if (own) return own.code === 'portal_unavailable';
    if (!(e instanceof SdkError)) return false;
    const status = e.status;
    // The SDK itself retries 503/429, network errors and 5xx with codes it does not know.
    return status >= 500 && status !== 503 && hardCodes.has(e.code) && e.code !== 'PORTAL_DELETED';
  }

  function backoff(attempt: number): number {
    const base = Math.min(MAX_BACKOFF_MS, retryDelay * 2 ** attempt);
    return Math.max(10, Math.round(base * (0.9 + Math.random() * 0.2)));
  }

  async function callRaw(inst: Installation, method: string, params: Record<string, unknown>): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        const { client } = acquire(inst);
        await ready(client);
        const res: AjaxResult = await client.b24.actions.v2.call.make({ method, params });
        if (!res.isSuccess) throw res.getErrors().next().value ?? new SdkError({ code: 'UNKNOWN_ERROR', description: 'The call failed', status: 0 });
        return res.getData()?.result;
      } catch (e) {
        if (attempt < maxRetries && retryableHere(e)) {
          const wait = backoff(attempt);
          const failure = toPortalCallError(method, e);
          log.warn({ memberId: inst.memberId, method, attempt: attempt + 1, code: failure.code, status: failure.status, wait }, 'gateway.retry');
          await sleep(wait);
          continue;
        }
        throw toPortalCallError(method, e);
      }
    }
  }

  async function batch(inst: Installation, commands: BatchCommand[]): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = [];
    for (let from = 0; from < commands.length; from += BATCH_MAX) {
      const chunk = commands.slice(from, from + BATCH_MAX);
      const cmd: Record<string, string> = {};
      chunk.forEach((c, i) => {
        cmd[`c${i}`] = `${c.method}?${qs.stringify(c.params ?? {})}`;
      });
      const answer = await callRaw(inst, 'batch', { halt: 0, cmd });
      const results = isRecord(answer) && isRecord(answer.result) ? answer.result : {};
      // PHP serializes an empty map as [], which isRecord treats as "no entries".
      const errors = isRecord(answer) && isRecord(answer.result_error) ? answer.result_error : {};
      chunk.forEach((_c, i) => {
        const key = `c${i}`;
        const err = errors[key];
        if (err !== undefined && err !== null) {
          if (typeof err === 'string') outcomes.push({ ok: false, error: err, description: '' });
          else if (isRecord(err)) {
            outcomes.push({
              ok: false,
              error: typeof err.error === 'string' ? err.error : String(err.error ?? ''),
              description: typeof err.error_description === 'string' ? err.error_description : '',
            });
          } else outcomes.push({ ok: false, error: 'UNEXPECTED_ANSWER', description: 'Unreadable batch error' });
        } else if (key in results) {
          outcomes.push({ ok: true, result: results[key] });
        } else {
          outcomes.push({ ok: false, error: 'NO_RESULT', description: 'The batch answer has no result for this command' });
        }
      });
    }
    return outcomes;
  }

  async function list<T>(inst: Installation, method: string, params: Record<string, unknown>, idKey: string, itemsKey: string | undefined): Promise<T[]> {
    const { order: _order, start: _start, filter: ownFilter, ...rest } = params;
    const filter: Record<string, unknown> = isRecord(ownFilter) ? { ...ownFilter } : {};
    const moreKey = `>${idKey}`;
    const from = Number(filter[moreKey]);
    let cursor = Number.isFinite(from) && from > 0 ? from : 0;
    const request: Record<string, unknown> = { ...rest, order: { [idKey]: 'ASC' }, filter, start: -1 };
    const select = rest.select;
    if (Array.isArray(select) && select.length && !select.includes(idKey) && !select.includes('*')) request.select = [...select, idKey];
    const rows: T[] = [];
    for (;;) {
      filter[moreKey] = cursor;
      const answer = await callRaw(inst, method, request);
      const page = itemsKey ? (isRecord(answer) ? answer[itemsKey] : undefined) : answer;
      if (!Array.isArray(page)) throw new PortalCallError(method, 'UNEXPECTED_ANSWER', 200, `The list answer has no rows${itemsKey ? ` in ${itemsKey}` : ''}`);
      rows.push(...(page as T[]));
      if (page.length < PAGE) return rows;
      const last: unknown = page[page.length - 1];
      const id = Number.parseInt(String(isRecord(last) ? last[idKey] : ''), 10);
      if (!Number.isFinite(id) || id <= cursor) {
        throw new PortalCallError(method, 'UNEXPECTED_ANSWER', 200, `List rows carry no increasing numeric ${idKey}`);
      }
      cursor = id;
    }
  }

  function forInstallation(inst: Installation): PortalGateway {
    return {
      call: async <T>(method: string, params: Record<string, unknown> = {}) => (await callRaw(inst, method, params)) as T,
      batch: (commands) => batch(inst, commands),
      list: <T>(method: string, params: Record<string, unknown>, o: { idKey?: string; itemsKey?: string } = {}) =>
        list<T>(inst, method, params, o.idKey ?? 'ID', o.itemsKey),
    };
  }

  function forget(memberId: string): void {
    portals.delete(memberId);
    for (const [key, entry] of whoIsCache) if (entry.memberId === memberId) whoIsCache.delete(key);
  }

  function refused(e: unknown): boolean {
    if (e instanceof RefreshRefused || originalOf(e) instanceof RefreshRefused) return true;
    return e instanceof SdkError && (e.status === 401 || e.status === 403);
  }

  async function whoIs(inst: Pick<Installation, 'memberId' | 'clientEndpoint'>, userAccessToken: string): Promise<PortalUser | null> {
    if (!userAccessToken) return null;
    const key = createHash('sha256').update(inst.memberId).update('\0').update(userAccessToken).digest('hex');
    const hit = whoIsCache.get(key);
    if (hit && hit.expiresAt > now()) return hit.user;
    if (hit) whoIsCache.delete(key);

    const endpoint = checkPortalEndpoint(inst.clientEndpoint, { allowInsecure: opts.allowInsecure });
    if (!opts.allowInsecure) await checkResolution(endpoint.hostname);
    const tokens: PortalTokens = { accessToken: userAccessToken, refreshToken: '', expiresAt: new Date(now() + 3600_000) };
    // A user's token never meets our secret: no secret given, and any refresh is refused.
    const b24 = new Client(oauthParams(inst.memberId, inst.clientEndpoint, tokens, null), { clientId: opts.clientId, clientSecret: '' }, {
      restrictionParams: restrictionParamsFor(opts.restrictionParams, 2),
    });
    b24.offClientSideWarning();
    b24.setLogger(new SdkLogForwarder(log, inst.memberId));
    b24.setCustomRefreshAuth(() => Promise.reject(new RefreshRefused('user tokens are not refreshed')));
    observeRequests(b24, inst.memberId, opts.observer);

    let result: unknown;
    try {
      const res: AjaxResult = await b24.actions.v2.call.make({ method: 'profile', params: {} });
      if (!res.isSuccess) throw res.getErrors().next().value ?? new SdkError({ code: 'UNKNOWN_ERROR', description: 'profile failed', status: 0 });
      result = res.getData()?.result;
    } catch (e) {
      if (refused(e)) return null;
      const failure = toPortalCallError('profile', e);
      const transient = failure.status === 0 || failure.status === 408 || failure.status === 429 || failure.status >= 500;
      throw new AppError(transient ? 'portal_unavailable' : 'portal_error', `The portal could not check the user: ${failure.message}`, [], {
        cause: failure,
      });
    }
    const parsed = profileSchema.safeParse(result);
    if (!parsed.success) throw new AppError('portal_error', 'The portal answered profile without a user id');
    const admin = parsed.data.ADMIN;
    const user: PortalUser = { userId: parsed.data.ID, isAdmin: admin === true || admin === 'Y' || admin === '1' || admin === 1 };

    whoIsCache.set(key, { memberId: inst.memberId, user, expiresAt: now() + whoIsTtlMs });
    while (whoIsCache.size > whoIsCacheSize) {
      const oldest = whoIsCache.keys().next().value;
      if (oldest === undefined) break;
      whoIsCache.delete(oldest);
    }
    return user;
  }

  return { forInstallation, forget, whoIs };
}
