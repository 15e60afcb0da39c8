/**
 * The REST method table of the sandbox and the helpers methods share: the call context,
 * list results (with total/next), parameter readers and the `time` block of the envelope.
 */
import type { SandboxPortal } from '../portal.js';
import { PortalError } from '../types.js';
import type { Actor, Row, SandboxApp, SandboxUser } from '../types.js';
import { isoDateTime } from '../crm.js';

export interface CallContext {
  portal: SandboxPortal;
  clientId: string;
  userId: number;
  user: SandboxUser;
  app: SandboxApp | null;
  actor: Actor;
  now: () => number;
}

/** A list method's answer: `result` plus `total` and (when more rows exist) `next`. */
export class ListResult {
  constructor(
    readonly result: unknown,
    readonly total: number,
    readonly next?: number,
  ) {}
}

export type MethodHandler = (params: Row, ctx: CallContext) => unknown;

export interface MethodDef {
  handler: MethodHandler;
  /** Portal administrators only (403 ACCESS_DENIED for others). */
  admin?: boolean;
}

export type MethodTable = Record<string, MethodDef>;

export interface CallOutcome {
  result: unknown;
  total?: number;
  next?: number;
}

export function requireAdmin(ctx: CallContext): void {
  if (!ctx.user.ADMIN) throw new PortalError('ACCESS_DENIED', 'Access denied!', 403);
}

/** Runs one method of `table` (names are case-insensitive). */
export function invokeIn(table: Map<string, MethodDef>, method: string, params: Row, ctx: CallContext): CallOutcome {
  const def = table.get(method.toLowerCase());
  if (!def) throw new PortalError('ERROR_METHOD_NOT_FOUND', 'Method not found!', 404);
  if (def.admin) requireAdmin(ctx);
  const r = def.handler(params, ctx);
  if (r instanceof ListResult) {
    const out: CallOutcome = { result: r.result, total: r.total };
    if (r.next !== undefined) out.next = r.next;
    return out;
  }
  return { result: r === undefined ? null : r };
}

/** The first present parameter among `names` (Bitrix accepts several spellings). */
export function param(params: Row, ...names: string[]): unknown {
  for (const n of names) if (params[n] !== undefined) return params[n];
  const lower = new Map(Object.entries(params).map(([k, v]) => [k.toLowerCase(), v]));
  for (const n of names) if (lower.has(n.toLowerCase())) return lower.get(n.toLowerCase());
  return undefined;
}

export const isObject = (v: unknown): v is Row => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An object or a (qs-produced) array as an object; anything else → null. */
export function asRow(v: unknown): Row | null {
  if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), x]));
  return isObject(v) ? v : null;
}

/** Arrays may arrive as objects with index keys (qs) or comma strings. */
export function asList(v: unknown): unknown[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v;
  if (isObject(v)) return Object.values(v);
  return [v];
}

export function positiveId(v: unknown): number | null {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : null;
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) {
    const n = Number(v);
    return n > 0 ? n : null;
  }
  return null;
}

export const yes = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 'Y' || v === 'y' || v === 'true';

/** The envelope's `time` block for a call that started at `startMs`. */
export function timeBlock(startMs: number, finishMs: number): Row {
  const start = startMs / 1000;
  const finish = Math.max(finishMs, startMs) / 1000;
  const duration = Math.round((finish - start) * 1e6) / 1e6;
  return {
    start,
    finish,
    duration,
    processing: duration,
    date_start: isoDateTime(startMs),
    date_finish: isoDateTime(finishMs),
    operating_reset_at: Math.floor(start) + 600,
    operating: 0,
  };
}

/** PHP's JSON of an associative array: empty → `[]`, keys 0..n-1 → a list, else an object. */
export function phpMap(obj: Row): unknown {
  const keys = Object.keys(obj);
  if (keys.length === 0) return [];
  if (keys.every((k, i) => k === String(i))) return keys.map((k) => obj[k]);
  return obj;
}
