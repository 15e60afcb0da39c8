/**
 * Vitest global set-up for the projects whose tests open an embedded store: one PGlite data
 * directory, initialised and migrated once per run, which every such store starts from as a copy
 * (tests/support/test-store.ts). Creating a PGlite from nothing runs initdb in WebAssembly and
 * then every migration, several seconds of CPU each time, which on a busy 2-core machine
 * outlasted the hooks that built the stores; opening a copy costs a fraction of that.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openStore } from '../../src/store/open-store.js';

// Projects (http, e2e) each run this set-up in the one main process: they share the directory.
interface Shared {
  dir: Promise<string>;
  users: number;
}
const slot = globalThis as { sarafanPgliteTemplate?: Shared };

async function createTemplate(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sarafan-pglite-template-'));
  const store = await openStore({ dataDir: dir, secretKey: 'template-only-no-data-0123456789abcdef' });
  await store.close();
  return dir;
}

export default async function setup(project: TestProject): Promise<() => void> {
  const shared = (slot.sarafanPgliteTemplate ??= { dir: createTemplate(), users: 0 });
  shared.users++;
  project.provide('pgliteTemplate', await shared.dir);
  return () => {
    if (--shared.users > 0) return;
    slot.sarafanPgliteTemplate = undefined;
    void shared.dir.then((dir) => rmSync(dir, { recursive: true, force: true }));
  };
}
