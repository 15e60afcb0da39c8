/**
 * The one database type every repository is written against. Both drivers (node-postgres and
 * PGlite) produce a `PgDatabase` over the same schema, and a transaction is a `PgDatabase` too,
 * so a repository bound to `Db` runs unchanged on a pool, on PGlite, or inside a transaction
 * (where its own `db.transaction` becomes a savepoint).
 */
import { sql, type SQL } from 'drizzle-orm';
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
