/**
 * Builds Sarafan for HTTP tests the way main.ts does — real store (embedded PGlite started from
 * the migrated template, or PostgreSQL), real gateway over b24jssdk, real logger — with msw
 * playing the portal and the OAuth server.
 */
import { fileURLToPath } from 'node:url';
import { setupServer } from 'msw/node';
import { createApp } from '../../server/app.js';
import { composeDeps, type ServerDeps } from '../../server/compose.js';
import { createWorker, type Worker } from '../../server/jobs/worker.js';
import { captureLogs } from './capture-logs.js';
import { openStore } from '../../src/store/open-store.js';
import { openTestStore } from './test-store.js';
import type { Clock, Store } from '../../src/handlers/ports.js';
import { CLIENT_ID, CLIENT_SECRET, MswPortal, OAUTH_URL } from './msw-portal.js';

export const APP_BASE_URL = 'https://sarafan.example.com';
/** A built client's manifest and assets in miniature (tests/fixtures/client): HTTP tests need no build. */
export const CLIENT_FIXTURE = fileURLToPath(new URL('../fixtures/client', import.meta.url));

export interface Harness {
  app: ReturnType<typeof createApp>;
  deps: ServerDeps;
  store: Store;
  portal: MswPortal;
  worker: Worker;
  msw: ReturnType<typeof setupServer>;
  /** Every log line written so far (JSON strings). */
  logs: string[];
  close(): Promise<void>;
}

export async function createHarness(opts: { databaseUrl?: string; clock?: Clock; clientDir?: string } = {}): Promise<Harness> {
  const { log, logs } = captureLogs();
  const secretKey = 'test-secret-key-0123456789abcdef0123456789';
  const store = opts.databaseUrl ? await openStore({ databaseUrl: opts.databaseUrl, secretKey }) : await openTestStore(secretKey);
  const portal = new MswPortal();
  const msw = setupServer(...portal.handlers());
  // Only requests to the app under test (supertest on loopback) pass; any other unexpected
  // request fails the test.
  msw.listen({
    onUnhandledRequest(req, print) {
      const host = new URL(req.url).hostname;
      if (host === '127.0.0.1' || host === '::1' || host === '[::1]' || host === 'localhost') return;
      print.error();
    },
  });
  const deps = composeDeps({
    store,
    log,
    appBaseUrl: APP_BASE_URL,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    oauthUrl: OAUTH_URL,
    allowInsecurePortals: false,
    maxRetries: 1,
    ...(opts.clock ? { clock: opts.clock } : {}),
    // Feedback goes out on the drain that queued it (tests/unit covers the hold of a short batch).
    feedbackHoldMs: 0,
  });
  const app = createApp({ ...deps, ready: () => store.ready(), clientDir: opts.clientDir ?? CLIENT_FIXTURE });
  const worker = createWorker(deps, { workerId: 'test-worker' });
  return {
    app,
    deps,
    store,
    portal,
    worker,
    msw,
    logs,
    async close() {
      msw.close();
      await store.close();
    },
  };
}
