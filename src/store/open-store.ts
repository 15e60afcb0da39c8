/**
 * The storage adapter's one entry point: PostgreSQL when a URL is given (production, several
 * instances), else embedded PGlite — the same SQL, schema, migrations and repositories on both
 * (SPEC 2; TOOLCHAIN "Store"). Migrations are applied here, at open.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import type { Log, Store } from '../handlers/ports.js';
import { createRepos, createTxRepos } from './create-repos.js';
import { createTokenCipher } from './crypto.js';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.js';
import type { Db } from './db.js';
import * as schema from './schema.js';

export interface OpenStoreOptions {
  /** `postgres://…`: use that server (pool of 10). Otherwise PGlite. */
  databaseUrl?: string;
  /** PGlite files go to `${dataDir}/pglite`, guarded by `${dataDir}/pglite.lock`. */
  dataDir?: string;
  /** In-memory PGlite (tests). */
  memory?: boolean;
  /** Encrypts tokens at rest (SARAFAN_SECRET_KEY). */
  secretKey: string;
  log?: Log;
  /**
   * PGlite only (default true): a store call made inside one of its own transactions fails at
   * once instead of waiting forever for the one connection the transaction holds. It marks each
   * transaction with an AsyncLocalStorage, and on Node 20 that installs promise hooks which then
   * run on every await of the process. The tests, which run every path, keep it; the server
   * process (server/main.ts) turns it off, as a build drops its assertions.
   */
  guardTransactions?: boolean;
}

/** The Store port plus what only the process layer and the tests may use. */
export interface SqlStore extends Store {
  readonly driver: 'postgres' | 'pglite';
  /**
   * Raw SQL for tests and diagnostics. It bypasses tenant isolation and the ledger's rules:
   * never call it from a use case. On PGlite it waits for a running transaction to finish (and
   * is refused from inside one, like every store-level call).
   */
  rawQuery<T extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /**
   * What PostgreSQL's autovacuum does on a server, for the embedded store, which has none (PGlite
   * runs PostgreSQL in single-user mode): `VACUUM (ANALYZE)` — dead row versions of the queue's
   * and the summaries' updates reclaimed, and the planner's statistics brought up to date (without
   * them every `portal_id = …` looks like a handful of rows, and a batch's lookups by id scan
   * whole tables). Blocks the embedded store while it runs. Null on PostgreSQL: nothing to do.
   */
  maintain(): Promise<{ ms: number } | null>;
}

// Resolved from this module, not the cwd. A build (tsc) must copy this folder next to the output.
const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

/** Session-level advisory lock (single bigint form) held while migrating, so instances starting together take turns. */
const MIGRATION_LOCK_KEY = '7301995220413151207';

function readMigrations(): ReturnType<typeof readMigrationFiles> {
  try {
    return readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
  } catch (error) {
    throw new Error(`openStore: cannot read the SQL migrations in ${MIGRATIONS_FOLDER}`, { cause: error });
  }
}

interface Driver {
  db: Db;
  maintain(): Promise<{ ms: number } | null>;
  /** PGlite has one connection: a store-level call inside store.transaction would wait for itself. */
  singleConnection: boolean;
  rawQuery(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export async function openStore(opts: OpenStoreOptions): Promise<SqlStore> {
  const cipher = createTokenCipher(opts.secretKey);
  const migrations = readMigrations();
  const latestMigration = migrations.at(-1)?.folderMillis ?? 0;

  // Marks the async context of a running transaction callback, so that on PGlite a call that
  // bypasses the transaction fails at once instead of waiting forever (see guardPglite).
  const transactionScope = new AsyncLocalStorage<{ open: boolean }>();
  const insideTransaction = () => transactionScope.getStore()?.open === true;

  let driverName: SqlStore['driver'];
  let driver: Driver;
  if (opts.databaseUrl) {
    driverName = 'postgres';
    driver = await openPostgres(opts.databaseUrl, opts.log);
  } else if (opts.memory || opts.dataDir) {
    driverName = 'pglite';
    driver = await openPglite(opts.memory ? undefined : opts.dataDir, opts.guardTransactions === false ? () => false : insideTransaction);
  } else {
    throw new Error('openStore: give databaseUrl, dataDir or memory');
  }
  opts.log?.info({ driver: driverName, migrations: migrations.length }, 'store.opened');

  const { db } = driver;
  const guarded = driver.singleConnection && opts.guardTransactions !== false;
  let closed: Promise<void> | undefined;

  return {
    driver: driverName,
    ...createRepos(db, cipher, true),

    transaction(fn) {
      // PostgreSQL has a pool, and an unguarded PGlite nothing to check: no scope to mark.
      if (!guarded) return db.transaction(async (tx) => fn(createTxRepos(tx, cipher)));
      if (insideTransaction()) return Promise.reject(outsideTransactionError('store.transaction'));
      const scope = { open: false };
      return transactionScope.run(scope, () =>
        db.transaction(async (tx) => {
          scope.open = true;
          try {
            return await fn(createTxRepos(tx, cipher));
          } finally {
            scope.open = false;
          }
        }),
      );
    },

    async ready() {
      try {
        const [row] = await db
          .select({ latest: sql<number>`max(created_at)`.mapWith(Number) })
          .from(sql`drizzle.__drizzle_migrations`);
        return row !== undefined && row.latest >= latestMigration;
      } catch {
        return false;
      }
    },

    close() {
      closed ??= driver.close();
      return closed;
    },

    rawQuery: <T extends Record<string, unknown>>(text: string, params?: unknown[]) => driver.rawQuery(text, params) as Promise<T[]>,
    maintain: () => driver.maintain(),
  };

  async function openPostgres(url: string, log?: Log): Promise<Driver> {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle client losing its connection emits 'error' on the pool; unhandled, it kills the process.
    pool.on('error', (error) => log?.error({ err: error.message }, 'store.pool_error'));
    try {
      const client = await pool.connect();
      try {
        // drizzle's migrator is not safe against a concurrent one (CREATE SCHEMA/TABLE races).
        await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
        try {
          await migratePg(drizzlePg({ client }), { migrationsFolder: MIGRATIONS_FOLDER });
        } finally {
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
        }
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
    return {
      db: drizzlePg({ client: pool, schema }),
      singleConnection: false,
      rawQuery: async (text, params) => (await pool.query(text, params)).rows,
      maintain: () => Promise.resolve(null), // the server's autovacuum does it
      close: () => pool.end(),
    };
  }

  async function openPglite(dataDir: string | undefined, insideTransaction: () => boolean): Promise<Driver> {
    let lock: DataDirLock | undefined;
    let client: PGlite;
    if (dataDir === undefined) {
      client = await PGlite.create();
    } else {
      mkdirSync(dataDir, { recursive: true });
      lock = acquireDataDirLock(dataDir, opts.log);
      try {
        client = await PGlite.create(join(dataDir, 'pglite'));
      } catch (error) {
        lock.release();
        throw error;
      }
    }
    const close = async () => {
      try {
        await client.close();
      } finally {
        lock?.release();
      }
    };
    const guarded = guardPglite(client, insideTransaction);
    const db = drizzlePglite({ client: guarded, schema });
    const maintain = async (command: string) => {
      const started = performance.now();
      await guarded.exec(command);
      return { ms: Math.round(performance.now() - started) };
    };
    try {
      await migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER });
      // Statistics from the start: tables never analyzed, or grown well past what their statistics
      // say (a store that ran for a while since its last maintenance), are analyzed now.
      const stale = await guarded.query<{ name: string }>(
        `SELECT quote_ident(c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r' AND (c.reltuples < 0 OR pg_relation_size(c.oid) / 8192 > 2 * c.relpages + 8)`,
      );
      if (stale.rows.length) opts.log?.info({ tables: stale.rows.length, ...(await maintain(`ANALYZE ${stale.rows.map((r) => r.name).join(', ')}`)) }, 'store.analyzed');
    } catch (error) {
      await close();
      throw error;
    }
    return {
      db,
      maintain: () => maintain('VACUUM (ANALYZE)'),
      singleConnection: true,
      rawQuery: async (text, params) => (await guarded.query<Record<string, unknown>>(text, params)).rows,
      close,
    };
  }
}

function outsideTransactionError(call: string): Error {
  return new Error(
    `${call} was called on the store inside store.transaction; on PGlite (one connection) it would wait ` +
      'for the transaction forever. Use the repositories given to the transaction callback.',
  );
}

/**
 * The PGlite client as drizzle sees it: top-level queries and transactions are refused while a
 * transaction callback of this store runs in the same async context (queries of the transaction
 * itself go through PGlite's Transaction object, not through this client).
 */
function guardPglite(client: PGlite, insideTransaction: () => boolean): PGlite {
  const guardedMethods = new Set<string | symbol>(['query', 'sql', 'exec', 'transaction']);
  return new Proxy(client, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (!guardedMethods.has(prop)) return method.bind(target);
      return (...args: unknown[]) =>
        insideTransaction() ? Promise.reject(outsideTransactionError(`PGlite ${String(prop)}`)) : method.apply(target, args);
    },
  });
}
