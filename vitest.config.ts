import { defineConfig } from 'vitest/config';

/**
 * Six projects, each runnable alone (`npm run test:<name>`, or `vitest run --project <name>`);
 * `npm test` runs them all. Timeouts only catch a hang: no assertion depends on them.
 */
const common = { environment: 'node', testTimeout: 30_000, hookTimeout: 60_000 } as const;

// Opens embedded stores from one migrated PGlite directory made once per run (contract: the on-disk suite).
const pgliteTemplate = ['tests/support/pglite-template.ts'];

export default defineConfig({
  test: {
    projects: [
      { test: { ...common, name: 'unit', include: ['tests/unit/**/*.test.ts'], maxWorkers: 2 } },
      // PGlite instances cost ~0.7 GB each, and the PostgreSQL suite opens pools: 2 workers at most.
      { test: { ...common, name: 'contract', include: ['tests/contract/**/*.test.ts'], maxWorkers: 2, globalSetup: pgliteTemplate } },
      { test: { ...common, name: 'http', include: ['tests/http/**/*.test.ts'], maxWorkers: 2, globalSetup: pgliteTemplate } },
      { test: { ...common, name: 'sandbox', include: ['tests/sandbox/**/*.test.ts'], maxWorkers: 2 } },
      // The Vue client's components and stores, in happy-dom, built by the client's own Vite config.
      { extends: './client/vite.config.ts', test: { ...common, name: 'client', root: '.', environment: 'happy-dom', include: ['tests/client/**/*.test.ts'], maxWorkers: 2 } },
      // Chromium, Sarafan and the sandbox in one process: one file at a time, after the others
      // (a project of one worker runs in vitest's sequential group, last).
      // Its waits are for events, with a 90 s hang guard each (tests/e2e): the test may take longer.
      { test: { ...common, name: 'e2e', include: ['tests/e2e/**/*.test.ts', 'tests/process/**/*.test.ts'], maxWorkers: 1, globalSetup: [...pgliteTemplate, 'tests/support/client-build.ts'], testTimeout: 180_000, hookTimeout: 180_000 } },
    ],
  },
});
