/**
 * The only module that calls our server's JSON API (SPEC 3): every request carries the user's
 * Bitrix24 access token and the portal's member_id from the frame; a `401` is retried once after
 * the frame refreshed the tokens. Failures become an `ApiError` with the server's code, message
 * and (for 400) the bad fields, so views can say what went wrong.
 */
import type { FrameAuth } from './frame';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: { path: string; message: string }[] = [],
    /** For 409: which business rule refused (e.g. `insufficient_balance`). */
    readonly reason: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface AuthSource {
  auth(): FrameAuth;
  refreshAuth(): Promise<FrameAuth>;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT';
  body?: unknown;
  /** Sent as `Idempotency-Key` (redemptions): a retried click has no second effect. */
  idempotencyKey?: string;
}

export type Api = <T>(path: string, options?: RequestOptions) => Promise<T>;

async function errorOf(res: Response): Promise<ApiError> {
  let body: { error?: { code?: unknown; message?: unknown; details?: unknown; reason?: unknown } } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const e = body.error ?? {};
  const code = typeof e.code === 'string' ? e.code : `http_${res.status}`;
  const reason = typeof e.reason === 'string' ? e.reason : null;
  const message = typeof e.message === 'string' ? e.message : res.statusText || code;
  const fields = (Array.isArray(e.details) ? e.details : [])
    .filter((f): f is { path: unknown; message: unknown } => typeof f === 'object' && f !== null)
    .map((f) => ({ path: String(f.path ?? ''), message: String(f.message ?? '') }));
  return new ApiError(res.status, code, message, fields, reason);
}

/** An API bound to the frame's tokens; `fetchImpl` is the browser's fetch outside tests. */
export function createApi(source: AuthSource, base = '', fetchImpl: typeof fetch = (...a) => fetch(...a)): Api {
  return async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const send = (auth: FrameAuth): Promise<Response> => {
      const headers: Record<string, string> = {
        Accept: 'application/json',
        Authorization: `Bearer ${auth.accessToken}`,
        'X-Sarafan-Portal': auth.memberId,
      };
      if (options.body !== undefined) headers['Content-Type'] = 'application/json';
      if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
      return fetchImpl(base + path, {
        method: options.method ?? 'GET',
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
    };
    let res = await send(source.auth());
    if (res.status === 401) res = await send(await source.refreshAuth());
    if (!res.ok) throw await errorOf(res);
    return (await res.json()) as T;
  };
}

// ---------------------------------------------------------------------------------------------
// Downloads (the admin page's CSV exports)
// ---------------------------------------------------------------------------------------------

export type Download = (path: string) => Promise<Blob>;

/**
 * A file from our server as a Blob, with the same Bearer auth and single 401 retry as `createApi`.
 * Inside the Bitrix24 iframe a plain link cannot carry the Authorization header (and third-party
 * cookies are off), so the view fetches the file and saves it through an object URL.
 */
export function createDownload(source: AuthSource, base = '', fetchImpl: typeof fetch = (...a) => fetch(...a)): Download {
  return async function download(path: string): Promise<Blob> {
    const send = (auth: FrameAuth): Promise<Response> =>
      fetchImpl(base + path, { method: 'GET', headers: { Authorization: `Bearer ${auth.accessToken}`, 'X-Sarafan-Portal': auth.memberId } });
    let res = await send(source.auth());
    if (res.status === 401) res = await send(await source.refreshAuth());
    if (!res.ok) throw await errorOf(res);
    return res.blob();
  };
}
