/**
 * Sarafan composed as `npm start` composes it in sandbox mode (server/main.ts), for the tests of
 * the demo: its HTTP server on a free port, the demo's OAuth pair, feedback sent at once, an
 * in-memory store and a worker (not started: a test starts it when it wants one). Sarafan's OAuth
 * server is the sandbox portal, so the portal's server listens first (`portalServer`, as
 * SANDBOX_PORT fixes it for npm start) and the test serves the portal on it
 * (startDemoPortal({ server: portalServer, port: portalPort, appBaseUrl, store, log })).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../server/app.js';
import { composeDeps, type ServerDeps } from '../../server/compose.js';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET } from '../../server/demo/sandbox-demo.js';
import { createWorker, type Worker } from '../../server/jobs/worker.js';
import type { SteppedClock } from '../../sandbox/clock.js';
import type { Log } from '../../src/handlers/ports.js';
import { openStore, type SqlStore } from '../../src/store/open-store.js';
import { captureLogs } from './capture-logs.js';

export interface DemoSarafan {
  http: Server;
  deps: ServerDeps;
  store: SqlStore;
  worker: Worker;
  log: Log;
  /** Listening already; the sandbox portal is served on it (Sarafan's OAuth server). */
  portalServer: Server;
  portalPort: number;
  appBaseUrl: string;
  /** Stops the worker and both servers, and closes the store. */
  close(): Promise<void>;
}

/** An HTTP server listening on a free loopback port, and that port. */
async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

const closed = async (server: Server): Promise<void> => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
};

export async function composeDemoSarafan(opts: { secretKey: string; workerId: string; clock?: SteppedClock; lingerMs?: number }): Promise<DemoSarafan> {
  const { log } = captureLogs();
  const { server: portalServer, port: portalPort } = await listening();
  const { server: http, port } = await listening();
  const appBaseUrl = `http://127.0.0.1:${port}`;
  const store = await openStore({ memory: true, secretKey: opts.secretKey });
  const clock = opts.clock;
  const deps = composeDeps({
    store,
    log,
    appBaseUrl,
    clientId: DEMO_CLIENT_ID,
    clientSecret: DEMO_CLIENT_SECRET,
    oauthUrl: `http://127.0.0.1:${portalPort}`,
    allowInsecurePortals: true,
    feedbackHoldMs: 0, // as server/main.ts composes the demo
    ...(clock ? { clock: { now: () => new Date(clock.now()) } } : {}),
  });
  http.on('request', createApp({ ...deps, ready: () => store.ready() }));
  const worker = createWorker(deps, { workerId: opts.workerId, idleMs: 50, ...(opts.lingerMs !== undefined ? { lingerMs: opts.lingerMs } : {}) });
  return {
    http,
    deps,
    store,
    worker,
    log,
    portalServer,
    portalPort,
    appBaseUrl,
    async close() {
      await worker.stop();
      await closed(http);
      await closed(portalServer);
      await store.close();
    },
  };
}
