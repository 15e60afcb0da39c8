import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // PGlite instances cost ~0.7 GB each: keep parallelism modest on 2-core CI machines.
    maxWorkers: 2,
  },
});
