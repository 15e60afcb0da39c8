/**
 * The one error type of Sarafan. Every failure a caller can act on carries a code from this
 * closed set; server/middleware/error-handler.ts maps codes to HTTP in one place.
 */
export const ERROR_CODES = [
  'bad_request', // input failed validation (details name each bad field)
  'unauthorized', // unknown portal, wrong application token, bad user token
  'forbidden', // authenticated but not allowed (non-admin on an admin route)
  'not_found',
  'conflict', // a business rule refused (insufficient balance, over the deal's limit …)
  'payload_too_large',
  'install_unverified', // the OAuth server did not confirm the tokens of an install
  'insecure_portal', // a portal endpoint that is not an https public host
  'portal_error', // the portal answered with an error we cannot recover from
  'portal_unavailable', // the portal or OAuth server could not be reached / kept refusing
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetail {
  /** Dotted path of the offending field, e.g. `data.FIELDS.ID` or `referral.levels.0.percent`. */
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];
  /** For `conflict`: which business rule refused, a stable word callers branch on (`already_used` …). */
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = [], options?: { cause?: unknown; reason?: string }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
    this.reason = options?.reason;
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}

/**
 * An error answered by a portal's REST API (or the transport to it). `code` is Bitrix24's
 * error code, which may be empty for legacy CRM methods ("Not found" with `error: ""`).
 */
export class PortalCallError extends Error {
  readonly method: string;
  readonly code: string;
  readonly status: number;
  readonly description: string;

  constructor(method: string, code: string, status: number, description: string, options?: { cause?: unknown }) {
    super(`${method}: ${code || 'error'} ${description}`.trim(), options);
    this.name = 'PortalCallError';
    this.method = method;
    this.code = code;
    this.status = status;
    this.description = description;
  }
}
