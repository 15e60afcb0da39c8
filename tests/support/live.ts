/**
 * Sarafan and the sandbox portal over real HTTP on loopback, wired as `npm start` wires them (with
 * server/demo, without the demo shop): Sarafan's OAuth server is the sandbox, the sandbox knows
 * Sarafan as an installable app, events
 * and robot calls travel as form POSTs and REST calls go through b24jssdk. Nothing is mocked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../server/app.js';
import { composeDeps } from '../../server/compose.js';
import { createWorker, type Worker } from '../../server/jobs/worker.js';
import { captureLogs } from './capture-logs.js';
import { openTestStore } from './test-store.js';
import type { Deps, Installation } from '../../src/handlers/ports.js';
import type { Sandbox } from '../../sandbox/server.js';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, installSarafan, startSarafanSandbox } from '../../server/demo/sandbox-demo.js';

export interface Live {
  sandbox: Sandbox;
  sarafanUrl: string;
  deps: Deps;
  worker: Worker;
  logs: string[];
  /** Runs the queue and the portal's deliveries until both are quiet (or throws after timeoutMs, default 60 s). */
  settle(timeoutMs?: number): Promise<void>;
  installation(): Promise<Installation>;
  close(): Promise<void>;
}

export interface LiveOptions {
  /** Install Sarafan into the sandbox without a browser (the wizard POST + installFinish). Default true. */
  install?: boolean;
  /** Run the worker loop in the background (as in production) instead of draining on settle(). */
  backgroundWorker?: boolean;
  limits?: { drainPerSec: number; burst: number } | false;
  tokenLifetimeSec?: number;
  /**
   * How long a short last batch of feedback waits for more (send-feedback.ts). Default 0 here:
   * tests settle without waiting out the production hold; the feedback test runs with it.
   */
  feedbackHoldMs?: number;
}

export async function startLive(opts: LiveOptions = {}): Promise<Live> {
  const { log, logs } = captureLogs();
  // Sarafan's base URL is needed to build it and to register it on the portal, and is known only once it listens.
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const sarafanUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const sandbox = await startSarafanSandbox({
    port: 0,
    dataDir: null,
    appBaseUrl: sarafanUrl,
    limits: opts.limits ?? false,
    ...(opts.tokenLifetimeSec ? { tokenLifetimeSec: opts.tokenLifetimeSec } : {}),
    log: (msg, extra) => logs.push(JSON.stringify({ sandbox: msg, ...extra })),
  });
  const store = await openTestStore('live-test-secret-key-0123456789abcdef');
  const deps = composeDeps({
    store,
    log,
    appBaseUrl: sarafanUrl,
    clientId: DEMO_CLIENT_ID,
    clientSecret: DEMO_CLIENT_SECRET,
    oauthUrl: sandbox.url,
    allowInsecurePortals: true,
    feedbackHoldMs: opts.feedbackHoldMs ?? 0,
  });
  http.on('request', createApp({ ...deps, ready: () => store.ready() }));
  const worker = createWorker(deps, { workerId: 'live-worker', idleMs: 50 });
  if (opts.backgroundWorker) worker.start();

  const live: Live = {
    sandbox,
    sarafanUrl,
    deps,
    worker,
    logs,
    async settle(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        await sandbox.outbound.idle();
        if (!opts.backgroundWorker) await worker.drain();
        await sandbox.outbound.idle();
        const depth = await store.jobs.depth();
        if (depth.queued === 0 && depth.running === 0) return;
        // Background worker busy, or (draining) a job waiting for its retry: look again shortly.
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the queue and the portal did not settle within ${timeoutMs} ms (failed jobs wait for their retry)`);
    },
    async installation() {
      const i = await store.installations.findByMemberId(sandbox.portal.memberId);
      if (!i) throw new Error('Sarafan has no installation for the sandbox portal');
      return i;
    },
    async close() {
      if (opts.backgroundWorker) await worker.stop();
      await sandbox.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await store.close();
    },
  };
  if (opts.install ?? true) {
    await installSarafan(sandbox);
    await live.settle();
  }
  return live;
}
