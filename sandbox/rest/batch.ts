/**
 * `batch` (reference §3.4): up to 50 `method?query` commands run in order, `$result[key]…`
 * references resolved against earlier results, `halt` stopping at the first error, and the
 * PHP-shaped answer (empty maps as `[]`).
 */
import qs from 'qs';
import { PortalError } from '../types.js';
import type { Row } from '../types.js';
import { asRow, param, phpMap, timeBlock, type CallContext, type CallOutcome } from './registry.js';

export const BATCH_LIMIT = 50;
export const QS_OPTIONS = { depth: 20, arrayLimit: 1000, parameterLimit: 10_000 } as const;

const REF = /\$result\[([^\]]+)\]((?:\[[^\]]*\])*)/g;

function resolve(results: Row, key: string, path: string): unknown {
  let v: unknown = results[key];
  for (const m of path.matchAll(/\[([^\]]*)\]/g)) {
    if (v === null || v === undefined || typeof v !== 'object') return undefined;
    v = (v as Row)[m[1]!];
  }
  return v;
}

/** Replaces `$result[...]` references inside parameter values. */
function substitute(value: unknown, results: Row): unknown {
  if (typeof value === 'string') {
    const whole = /^\$result\[([^\]]+)\]((?:\[[^\]]*\])*)$/.exec(value);
    if (whole) {
      const v = resolve(results, whole[1]!, whole[2] ?? '');
      return v === undefined ? value : v;
    }
    return value.replace(REF, (all, key: string, path: string) => {
      const v = resolve(results, key, path);
      return v === undefined || v === null ? all : typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
  }
  if (Array.isArray(value)) return value.map((x) => substitute(x, results));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, results)]));
  return value;
}

export function isHalt(v: unknown): boolean {
  return v === true || v === 1 || v === '1' || v === 'Y' || v === 'y' || v === 'true';
}

export function runBatch(
  params: Row,
  ctx: CallContext,
  invoke: (method: string, params: Row, ctx: CallContext) => CallOutcome,
): Row {
  const cmd = asRow(param(params, 'cmd')) ?? {};
  const entries = Object.entries(cmd);
  if (entries.length > BATCH_LIMIT) throw new PortalError('ERROR_BATCH_LENGTH_EXCEEDED', `Max batch length exceeded: ${BATCH_LIMIT}`, 400);
  const halt = isHalt(param(params, 'halt'));
  const result: Row = {};
  const resultError: Row = {};
  const resultTotal: Row = {};
  const resultNext: Row = {};
  const resultTime: Row = {};
  for (const [key, raw] of entries) {
    const started = ctx.now();
    const text = typeof raw === 'string' ? raw : '';
    const q = text.indexOf('?');
    const method = (q >= 0 ? text.slice(0, q) : text).trim().replace(/^\/+/, '').replace(/\.json$/, '');
    const query = q >= 0 ? text.slice(q + 1) : '';
    let failed = false;
    try {
      if (method.toLowerCase() === 'batch') {
        throw new PortalError('ERROR_BATCH_METHOD_NOT_ALLOWED', 'Method is not allowed for batch usage', 405);
      }
      if (!method) throw new PortalError('ERROR_METHOD_NOT_FOUND', 'Method not found!', 404);
      const parsed = substitute(qs.parse(query, QS_OPTIONS), result) as Row;
      delete parsed.auth;
      const out = invoke(method, parsed, ctx);
      result[key] = out.result;
      if (out.total !== undefined) resultTotal[key] = out.total;
      if (out.next !== undefined) resultNext[key] = out.next;
    } catch (e) {
      failed = true;
      resultError[key] =
        e instanceof PortalError
          ? { error: e.code, error_description: e.description }
          : { error: 'INTERNAL_SERVER_ERROR', error_description: e instanceof Error ? e.message : String(e) };
    }
    resultTime[key] = timeBlock(started, ctx.now());
    if (failed && halt) break;
  }
  return {
    result: phpMap(result),
    result_error: phpMap(resultError),
    result_total: phpMap(resultTotal),
    result_next: phpMap(resultNext),
    result_time: phpMap(resultTime),
  };
}
