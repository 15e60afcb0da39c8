/**
 * The store contract on a PostgreSQL server. Each run creates its own database
 * (sarafan_t_<random>) and drops it afterwards, so runs never collide. An unreachable server
 * fails the suite; SARAFAN_SKIP_POSTGRES=1 skips it instead, saying so.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import { describeStoreContract } from './store-contract.js';

const SECRET = 'contract-secret-0123456789abcdef';
const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The URL without a password, for messages. */
function shown(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres'), connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is unreachable at ${shown(withDatabase(serverUrl, 'postgres'))} (${(error as Error).message}). ` +
        'Start it, point TEST_DATABASE_URL at a server, or set SARAFAN_SKIP_POSTGRES=1 to skip these tests.',
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function createDatabase(): Promise<string> {
  const name = `sarafan_t_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return name;
}

async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

if (process.env.SARAFAN_SKIP_POSTGRES === '1') {
  const reason = 'skipped: SARAFAN_SKIP_POSTGRES=1 is set';
  console.warn(`store contract: postgres — ${reason}`);
  describe.skip(`store contract: postgres — ${reason}`, () => {
    it('runs only against a PostgreSQL server', () => {});
  });
} else {
  const databases: string[] = [];
  let contractUrl = '';

  beforeAll(async () => {
    const name = await createDatabase();
    databases.push(name);
    contractUrl = withDatabase(serverUrl, name);
  });

  afterAll(async () => {
    for (const name of databases) await dropDatabase(name);
  });

  describeStoreContract('postgres', () => openStore({ databaseUrl: contractUrl, secretKey: SECRET }));

  describe('postgres start-up', () => {
    it('instances starting together against one fresh database all migrate and open', async () => {
      const name = await createDatabase();
      databases.push(name);
      const url = withDatabase(serverUrl, name);
      const stores = await Promise.all(Array.from({ length: 4 }, () => openStore({ databaseUrl: url, secretKey: SECRET })));
      try {
        for (const store of stores) expect(await store.ready()).toBe(true);
        const applied = await stores[0]!.rawQuery<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
        expect(Number(applied[0]?.n)).toBe(2);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });
  });
}
