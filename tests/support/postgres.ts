/**
 * A PostgreSQL server for tests: each suite creates its own database (sarafan_t_<random>) and
 * drops it afterwards. An unreachable server is an error naming the URL (never a silent skip).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The URL without a password, for messages. */
export function shown(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

export async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
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

export async function createDatabase(): Promise<string> {
  const name = `sarafan_t_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return name;
}

export async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}
