/**
 * The embedded store the HTTP and live tests run on: a copy of the migrated PGlite data directory
 * the global set-up made (tests/support/pglite-template.ts), removed again on close. Without that
 * set-up (a file run under another config, or the bench outside vitest) it falls back to a fresh
 * in-memory PGlite.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { openStore, type SqlStore } from '../../src/store/open-store.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated PGlite data directory every embedded test store starts from. */
    pgliteTemplate: string;
  }
}

/** The template's directory, or null outside a vitest run (the bench opens live stores too). */
function templateDir(): string | null {
  try {
    return inject('pgliteTemplate') ?? null;
  } catch {
    return null;
  }
}

export async function openTestStore(secretKey: string): Promise<SqlStore> {
  const template = templateDir();
  if (!template) return openStore({ memory: true, secretKey });
  const dir = mkdtempSync(join(tmpdir(), 'sarafan-test-store-'));
  cpSync(template, dir, { recursive: true });
  let store: SqlStore;
  try {
    store = await openStore({ dataDir: dir, secretKey });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const close = store.close.bind(store);
  store.close = async () => {
    try {
      await close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return store;
}
