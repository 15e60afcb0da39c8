/**
 * The one database type every repository is written against. Both drivers (node-postgres and
 * PGlite) produce a `PgDatabase` over the same schema, and a transaction is a `PgDatabase` too,
 * so a repository bound to `Db` runs unchanged on a pool, on PGlite, or inside a transaction
 * (where its own `db.transaction` becomes a savepoint).
 */
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** SQLSTATE of a driver error, looking through drizzle's wrapping (`cause`). */
export function pgErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export const UNIQUE_VIOLATION = '23505';

/**
 * Run `fn` again when it loses a race on a unique index (each attempt must be its own
 * transaction or savepoint, since the error aborts it).
 */
export async function retryOnUniqueViolation<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || pgErrorCode(error) !== UNIQUE_VIOLATION) throw error;
    }
  }
}

/**
 * A timestamptz parameter for hand-written SQL fragments. Drizzle maps Dates only for values
 * bound to a column; raw Date parameters are serialized differently by the two drivers.
 */
export function tsParam(date: Date): SQL {
  return sql`${date.toISOString()}::timestamptz`;
}

/** Rows of a raw `db.execute` result: node-postgres and PGlite both answer `{ rows }`. */
export function rowsOf<T>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/**
 * `column = ANY('{1,2,…}'::bigint[])`: an id list as ONE parameter. drizzle's `inArray` binds a
 * placeholder per id, so a 500-id list costs 500 parameter encodings in drizzle and a 500-item
 * parse in PostgreSQL on every call (measured with `npm run bench`); one fixed-text statement
 * does not. Empty lists match nothing, like `inArray([])`. Ids must be safe integers.
 */
export function anyId(column: SQL | AnyColumn, ids: readonly number[]): SQL {
  return sql`${column} = ANY(${idArray(ids)})`;
}

/** An id list as one `bigint[]` parameter (for `unnest`, `ANY`); see anyId. */
export function idArray(ids: readonly number[]): SQL {
  for (const id of ids) if (!Number.isSafeInteger(id)) throw new RangeError(`not an integer id: ${String(id)}`);
  return sql`${`{${ids.join(',')}}`}::bigint[]`;
}
