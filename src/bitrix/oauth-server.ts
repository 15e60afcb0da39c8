/**
 * The OAuth server (B24_OAUTH_URL, https://oauth.bitrix.info in production): the only party
 * that can confirm a portal's tokens and name its REST endpoint (reference §2, SPEC 9). The
 * client secret goes only here, never to a portal, and the URL comes from configuration,
 * never from a request.
 *
 * Known limits: whether a spent refresh token stays valid is unconfirmed (reference §2), so
 * callers must persist the rotated token before using the new pair and never refresh one
 * portal twice at once (the gateway serializes per portal).
 */
import { z } from 'zod';
import { AppError } from '../handlers/errors.js';
import type { OAuthGrant, OAuthServer } from '../handlers/ports.js';
import { checkPortalEndpoint } from './portal-endpoint.js';

export interface OAuthServerOptions {
  /** B24_OAUTH_URL, e.g. `https://oauth.bitrix.info` (no `/oauth/token/`). */
  oauthUrl: string;
  clientId: string;
  clientSecret: string;
  /** B24_ALLOW_INSECURE_PORTALS: an http OAuth URL and non-public client endpoints are accepted. */
  allowInsecure: boolean;
  fetchImpl?: typeof fetch;
  /** Per request; default 15 s. */
  timeoutMs?: number;
  now?: () => number;
}

/** Bitrix24 sends numbers as numbers or as numeric strings. */
const numeric = z.union([z.number(), z.string().regex(/^-?\d+$/).transform(Number)]);

/** Refresh answer (reference §2); unknown keys (e.g. `domain`, which is the OAuth server) are ignored. */
const grantSchema = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
  expires: numeric.optional(),
  expires_in: numeric.optional(),
  member_id: z.string().min(1),
  client_endpoint: z.string().min(1),
  server_endpoint: z.string().optional(),
  scope: z.string().optional(),
  status: z.string().optional(),
  user_id: z.union([numeric, z.null()]).optional(),
});

/** An OAuth error code fit for a message: short, plain, never something that could be a token. */
function safeCode(value: unknown, refreshToken: string): string {
  const code = typeof value === 'string' ? value : '';
  if (!/^[A-Za-z0-9_.-]{1,40}$/.test(code) || (refreshToken && code.includes(refreshToken))) return 'unknown_error';
  return code;
}

/** The OAuth server's base URL, validated once: https (unless allowInsecure), no credentials, no trailing slash. */
export function normalizeOAuthUrl(oauthUrl: string, allowInsecure: boolean): string {
  let url: URL;
  try {
    url = new URL(oauthUrl);
  } catch {
    throw new AppError('insecure_portal', 'B24_OAUTH_URL is not a valid URL');
  }
  if (url.username || url.password) throw new AppError('insecure_portal', 'B24_OAUTH_URL must not carry credentials');
  if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:')) {
    throw new AppError('insecure_portal', `B24_OAUTH_URL ${url.protocol}//${url.host} is not https`);
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

export function createOAuthServer(opts: OAuthServerOptions): OAuthServer {
  const base = normalizeOAuthUrl(opts.oauthUrl, opts.allowInsecure);
  const tokenUrl = `${base}/oauth/token/`;
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const now = opts.now ?? Date.now;

  async function refresh(refreshToken: string): Promise<OAuthGrant> {
    const body = new URLSearchParams({
      grant_type: 'refresh_token',
      client_id: opts.clientId,
      client_secret: opts.clientSecret,
      refresh_token: refreshToken,
    });
    let status: number;
    let payload: unknown;
    // One deadline for the answer and its body, which settles the refresh by itself: Node's fetch
    // can leave `response.text()` pending forever when its signal aborts mid-body
    // (nodejs/node#56917), and a refresh that never ends stalls every call to the portal.
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const error = new DOMException('The OAuth server did not answer in time', 'TimeoutError');
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    const answer = (async () => {
      const response = await fetchImpl(tokenUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body,
        // A redirect would carry the client secret to another URL: never follow one.
        redirect: 'manual',
        signal: controller.signal,
      });
      return { status: response.status, text: await response.text() };
    })();
    try {
      const { status: answered, text } = await Promise.race([answer, deadline]);
      status = answered;
      try {
        payload = text ? JSON.parse(text) : null;
      } catch {
        payload = null;
      }
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw new AppError('portal_unavailable', timedOut ? 'The OAuth server did not answer in time' : 'The OAuth server could not be reached', [], {
        cause: e,
      });
    } finally {
      clearTimeout(timer);
    }

    const errorCode = payload && typeof payload === 'object' && 'error' in payload ? (payload as { error: unknown }).error : undefined;
    if (status >= 500 || (status >= 300 && status < 400)) {
      throw new AppError('portal_unavailable', `The OAuth server answered HTTP ${status}`);
    }
    if (status >= 400 || (errorCode !== undefined && errorCode !== null && errorCode !== '')) {
      const code = errorCode === undefined ? `http_${status}` : safeCode(errorCode, refreshToken);
      throw new AppError('install_unverified', `The OAuth server did not confirm the install: ${code}`);
    }
    const parsed = grantSchema.safeParse(payload);
    if (!parsed.success) {
      throw new AppError('portal_unavailable', 'The OAuth server answered without a usable grant', [], {
        // Issue paths only: the values would include tokens.
        cause: new Error(parsed.error.issues.map((i) => i.path.join('.')).join(', ')),
      });
    }
    const g = parsed.data;
    const endpoint = checkPortalEndpoint(g.client_endpoint, { allowInsecure: opts.allowInsecure });
    // `expires` (unix s) when it is in the future; else now + expires_in. A past value would make
    // the SDK refresh before every call.
    const at = now();
    const expiresAt =
      g.expires !== undefined && g.expires * 1000 > at
        ? new Date(g.expires * 1000)
        : new Date(at + (g.expires_in !== undefined && g.expires_in > 0 ? g.expires_in : 3600) * 1000);
    return {
      accessToken: g.access_token,
      refreshToken: g.refresh_token,
      expiresAt,
      memberId: g.member_id,
      clientEndpoint: endpoint.href,
      serverEndpoint: g.server_endpoint ?? `${base}/rest/`,
      scope: g.scope ?? '',
      userId: g.user_id === undefined || g.user_id === null ? null : g.user_id,
      status: g.status ?? '',
    };
  }

  return { refresh };
}
