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
});
