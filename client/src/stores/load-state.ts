/** The states a view goes through: loading, ready, or an error that says what to do next. */
import { ApiError } from '../api';

export type LoadState = 'loading' | 'ready' | 'error';

export interface ViewError {
  /** i18n key of the message. */
  key: string;
  message: string;
}

export function viewError(e: unknown): ViewError {
  if (e instanceof ApiError) {
    if (e.status === 401) return { key: 'errors.unauthorized', message: e.message };
    if (e.status === 403) return { key: 'errors.forbidden', message: e.message };
    return { key: 'errors.load', message: e.message };
  }
  return { key: 'errors.load', message: e instanceof Error ? e.message : String(e) };
}

/** The i18n key of a refusal (409 reason), else null. */
export function refusalKey(e: unknown): string | null {
  if (!(e instanceof ApiError)) return null;
  const reason = e.reason ?? e.fields[0]?.message ?? null;
  return reason ? `refusals.${reason}` : null;
}
