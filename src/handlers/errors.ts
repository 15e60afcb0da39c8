/**
 * The one error type of Sarafan. Every failure a caller can act on carries a code from this
 * closed set; server/middleware/error-handler.ts maps codes to HTTP in one place.
 */
import { API_ERROR_CODES, type ErrorCode, type ErrorDetail } from '../contract/api.js';

/** The closed set lives in the API contract (src/contract/api.ts), which clients read too. */
export const ERROR_CODES = API_ERROR_CODES;
export type { ErrorCode, ErrorDetail };

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];
  /** For `conflict`: which business rule refused, machine-readable (e.g. `insufficient_balance`). */
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = [], options?: { cause?: unknown; reason?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
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
