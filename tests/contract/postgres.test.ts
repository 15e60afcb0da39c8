/**
 * The store contract on a PostgreSQL server. Each run creates its own database
 * (sarafan_t_<random>) and drops it afterwards, so runs never collide. An unreachable server
 * fails the suite; SARAFAN_SKIP_POSTGRES=1 skips it instead, saying so.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import { describeStoreContract } from './store-contract.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';

const SECRET = 'contract-secret-0123456789abcdef';
const migrationCount = (JSON.parse(readFileSync(new URL('../../src/store/migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] }).entries.length;
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

  describe('postgres maintenance', () => {
    it('leaves VACUUM and ANALYZE to the server: maintain() does nothing', async () => {
      const store = await openStore({ databaseUrl: contractUrl, secretKey: SECRET });
      try {
        expect(await store.maintain()).toBeNull();
      } finally {
        await store.close();
      }
    });
  });

  describe('postgres start-up', () => {
    it('instances starting together against one fresh database all migrate and open', async () => {
      const name = await createDatabase();
      databases.push(name);
      const url = withDatabase(serverUrl, name);
      const stores = await Promise.all(Array.from({ length: 4 }, () => openStore({ databaseUrl: url, secretKey: SECRET })));
      try {
        for (const store of stores) expect(await store.ready()).toBe(true);
        const applied = await stores[0]!.rawQuery<{ n: string }>('SELECT count(*) AS n FROM drizzle.__drizzle_migrations');
        expect(Number(applied[0]?.n)).toBe(migrationCount);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });
  });
}
