/**
 * Masking secrets inside free text (error messages from libraries, URLs, response bodies). The
 * logger (server/logger.ts) masks every logged string with it, and the installation health shows
 * dead jobs' last errors to admins through it: a job's error is a library's message as it came,
 * and may quote a request with its `auth` token.
 */

export const CENSOR = '[redacted]';

// Names of secrets in free text: tokens of any kind, OAuth client secrets, our secret key, passwords,
// the install form's AUTH_ID / REFRESH_ID, and REST's own `auth` parameter (the access token,
// reference §3.1: `?auth=…` or `"auth":"…"` in a quoted request).
const SECRET_NAME = String.raw`(?:[a-z_]*(?:token|secret_?key|secret|password|passwd)|auth_id|refresh_id|auth)`;
// `access_token=…`, `auth[refresh_token]=…`, `auth%5Bapplication_token%5D=…`, `AUTH_ID=…`, `auth=…`
const SECRET_PARAM = new RegExp(String.raw`(\b(?:auth(?:\[|%5B))?${SECRET_NAME}(?:\]|%5D)?=)[^&\s"'<>;,]+`, 'gi');
// `"access_token":"…"`, `access_token: '…'` (JSON bodies and util.inspect output inside error messages)
const SECRET_PAIR = new RegExp(String.raw`(["']?\b${SECRET_NAME}["']?\s*:\s*)(["'])(?:\\.|(?!\2)[^\\])*\2`, 'gi');
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*/gi;
// `postgres://user:password@host`
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]+:)[^\s@/?#]+@/gi;

const MAYBE_SECRET = /[=:]|bearer|basic/i;

/** Masks secrets inside free text. */
export function scrubSecrets(text: string): string {
  // Fast path for the usual short values: every pattern needs one of these.
  if (!MAYBE_SECRET.test(text)) return text;
  return text
    .replace(SECRET_PARAM, `$1${CENSOR}`)
    .replace(SECRET_PAIR, `$1$2${CENSOR}$2`)
    .replace(AUTH_SCHEME, `$1 ${CENSOR}`)
    .replace(URL_PASSWORD, `$1${CENSOR}@`);
}

/**
 * `text` scrubbed, with every occurrence of the given secrets (e.g. the portal's own tokens,
 * which the caller knows) masked too, whatever the format they were quoted in.
 */
export function maskSecrets(text: string, known: readonly string[] = []): string {
  let out = text;
  // Short values would mask ordinary words; real tokens are long.
  for (const secret of known) if (secret.length >= 8) out = out.split(secret).join(CENSOR);
  return scrubSecrets(out);
}
