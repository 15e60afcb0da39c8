/**
 * Sarafan composed as `npm start` composes it in sandbox mode (server/main.ts), for the tests of
 * the demo: its HTTP server on a free port, the demo's OAuth pair, the sandbox portal's address
 * fixed before either starts (as SANDBOX_PORT is), feedback sent at once, an in-memory store and a
 * worker (not started: a test starts it when it wants one). The test starts the demo portal itself
 * (startDemoPortal with `portalPort`, `appBaseUrl`, `store`, `log`).
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
  /** Where the sandbox portal is to listen (Sarafan's OAuth server). */
  portalPort: number;
  appBaseUrl: string;
  /** Stops the worker and the server, and closes the store. */
  close(): Promise<void>;
}

/** A port nobody listens on now. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export async function composeDemoSarafan(opts: { secretKey: string; workerId: string; clock?: SteppedClock; lingerMs?: number }): Promise<DemoSarafan> {
  const { log } = captureLogs();
  const portalPort = await freePort();
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const appBaseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
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
    portalPort,
    appBaseUrl,
    async close() {
      await worker.stop();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await store.close();
    },
  };
}
