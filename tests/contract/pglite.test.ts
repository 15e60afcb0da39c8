/**
 * The store contract on embedded PGlite (in memory), plus what only the on-disk mode has: data
 * surviving a reopen, the data-directory lock, and a wrong secret key failing loudly.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AppError } from '../../src/handlers/errors.js';
import { openStore } from '../../src/store/open-store.js';
import { describeStoreContract } from './store-contract.js';

const SECRET = 'contract-secret-0123456789abcdef';

describeStoreContract('pglite (memory)', () => openStore({ memory: true, secretKey: SECRET }));

describe('pglite on disk', () => {
  const root = mkdtempSync(join(tmpdir(), 'sarafan-store-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  // One directory for every test, a copy of the run's migrated template (tests/support/
  // pglite-template.ts): creating a PGlite and migrating it costs seconds of CPU (once 43 s on a
  // busy machine, past the hang guard); reopening one costs a fraction. Creating a data directory
  // from nothing is what that template's own set-up does on every run.
  const dataDir = join(root, 'nested', 'data');
  beforeAll(() => cpSync(inject('pgliteTemplate'), dataDir, { recursive: true }));

  const install = {
    memberId: 'disk-member',
    domain: 'disk.bitrix24.ru',
    clientEndpoint: 'https://disk.bitrix24.ru/rest/',
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    scope: 'crm',
    userId: 1,
    tokens: { accessToken: 'disk-access-token', refreshToken: 'disk-refresh-token', expiresAt: new Date('2026-03-01T13:00:00Z') },
  };

  it('keeps data across a reopen, refuses a second open while in use, and releases the lock on close', async () => {
    const lockFile = join(dataDir, 'pglite.lock');
    const first = await openStore({ dataDir, secretKey: SECRET });
    try {
      expect(existsSync(lockFile)).toBe(true);
      const created = await first.installations.upsertVerified(install, new Date('2026-03-01T12:00:00Z'));
      await first.members.ensure(created.id, 'contact', 7, new Date('2026-03-01T12:00:00Z'));
      await expect(openStore({ dataDir, secretKey: SECRET })).rejects.toThrow(
        new RegExp(`data directory .* is in use by process ${process.pid}`),
      );
    } finally {
      await first.close();
    }
    expect(existsSync(lockFile)).toBe(false);

    const reopened = await openStore({ dataDir, secretKey: SECRET });
    try {
      expect(await reopened.ready()).toBe(true);
      const found = await reopened.installations.findByMemberId('disk-member');
      expect(found?.tokens).toEqual(install.tokens);
      expect((await reopened.members.findByEntity(found!.id, 'contact', 7))?.contactId).toBe(7);
    } finally {
      await reopened.close();
    }
  });

  it('refuses, instead of hanging, a store call made inside one of its transactions', async () => {
    // PGlite has one connection: such a call would wait for the transaction that waits for it.
    const store = await openStore({ dataDir, secretKey: SECRET });
    try {
      const portal = await store.installations.upsertVerified({ ...install, memberId: 'guard-member' }, new Date('2026-03-01T12:00:00Z'));
      const outcome = await store.transaction(async (tx) => {
        await tx.programs.create(portal.id, { v: 1 }, null, new Date('2026-03-01T12:00:00Z'));
        const outer = await store.programs.current(portal.id).then(() => 'answered', (e: unknown) => e);
        const nested = await store.transaction(async () => 'ran').then((v) => v, (e: unknown) => e);
        return { outer, nested };
      });
      expect(String((outcome.outer as Error).cause ?? outcome.outer)).toMatch(/inside store\.transaction/);
      expect(String(outcome.nested)).toMatch(/inside store\.transaction/);
      // The transaction itself committed, and the store works as before.
      expect((await store.programs.current(portal.id))?.version).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('without the guard (as the server opens it), runs transactions alike and marks nothing', async () => {
    const store = await openStore({ dataDir, secretKey: SECRET, guardTransactions: false });
    try {
      const portal = await store.installations.upsertVerified({ ...install, memberId: 'unguarded-member' }, new Date('2026-03-01T12:00:00Z'));
      await store.transaction((tx) => tx.programs.create(portal.id, { v: 1 }, null, new Date('2026-03-01T12:00:00Z')));
      await expect(store.transaction(async (tx) => {
        await tx.programs.create(portal.id, { v: 2 }, null, new Date('2026-03-01T12:00:00Z'));
        throw new Error('rolled back');
      })).rejects.toThrow('rolled back');
      expect((await store.programs.current(portal.id))?.version).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('takes over the lock of a process that is gone', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'pglite.lock'), `${dead}\n`);
    const store = await openStore({ dataDir, secretKey: SECRET });
    await store.close();
    expect(existsSync(join(dataDir, 'pglite.lock'))).toBe(false);
  });

  it('fails loudly, without the data, when the secret key is wrong', async () => {
    const first = await openStore({ dataDir, secretKey: SECRET });
    await first.installations.upsertVerified(install, new Date('2026-03-01T12:00:00Z'));
    await first.close();
    const wrong = await openStore({ dataDir, secretKey: 'another-secret' });
    try {
      const error = await wrong.installations.findByMemberId('disk-member').then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('internal');
      expect(String((error as AppError).message)).not.toMatch(/disk-(access|refresh)-token|v1:/);
    } finally {
      await wrong.close();
    }
  });
  it('analyzes at open the tables grown past their statistics, and maintain() vacuums and analyzes them all', async () => {
    // PGlite has no autovacuum: without this, the planner sees every table as its first few rows.
    const stats = async (store: Awaited<ReturnType<typeof openStore>>) =>
      (await store.rawQuery<{ tuples: number; pages: number }>(`SELECT reltuples::int AS tuples, relpages AS pages FROM pg_class WHERE relname = 'jobs'`))[0]!;
    const at = new Date('2026-03-01T12:00:00Z');
    const first = await openStore({ dataDir, secretKey: SECRET });
    let portalId: number;
    try {
      portalId = (await first.installations.upsertVerified({ ...install, memberId: 'analyze-member' }, at)).id;
      const before = await stats(first);
      for (let i = 0; i < 12; i++) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => first.jobs.enqueue({ portalId, kind: 'crm.change', key: `deal:${i * 100 + j + 1}`, payload: { pad: 'x'.repeat(200) } }, at)));
      }
      // The statistics still say what they said before the 1 200 rows.
      expect((await stats(first)).tuples).toBe(before.tuples);
    } finally {
      await first.close();
    }
    const logged: { msg: string; obj: Record<string, unknown> }[] = [];
    const log = { info: (obj: Record<string, unknown>, msg: string) => logged.push({ msg, obj }), warn: () => {}, error: () => {}, debug: () => {} };
    const reopened = await openStore({ dataDir, secretKey: SECRET, log: log as never });
    try {
      expect((await stats(reopened)).tuples).toBeGreaterThanOrEqual(1200);
      expect(logged.find((l) => l.msg === 'store.analyzed')?.obj).toMatchObject({ tables: expect.any(Number), ms: expect.any(Number) });
      // Rows deleted and the queue analyzed again: maintain() is what the hourly timer runs.
      await reopened.rawQuery(`DELETE FROM jobs WHERE portal_id = $1`, [portalId]);
      const size = `SELECT pg_relation_size('jobs')::int AS bytes`;
      const deadBytes = (await reopened.rawQuery<{ bytes: number }>(size))[0]!.bytes;
      expect(await reopened.maintain()).toEqual({ ms: expect.any(Number) });
      expect((await stats(reopened)).tuples).toBe(0);
      // The dead rows' pages are reclaimed (VACUUM truncates the emptied table).
      expect((await reopened.rawQuery<{ bytes: number }>(size))[0]!.bytes).toBeLessThan(deadBytes);
    } finally {
      await reopened.close();
    }
    // Nothing grew since: the next open analyzes nothing.
    logged.length = 0;
    const again = await openStore({ dataDir, secretKey: SECRET, log: log as never });
    await again.close();
    expect(logged.some((l) => l.msg === 'store.analyzed')).toBe(false);
  });
});
