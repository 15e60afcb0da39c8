/**
 * The process: config → logger → store → gateway → createApp → listen, plus the queue worker and
 * the schedules (SARAFAN_ROLE), and a graceful shutdown of HTTP, schedules, worker and store on
 * SIGTERM/SIGINT.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { openStore } from '../src/store/open-store.js';
import { createApp, LISTEN_BACKLOG } from './app.js';
import { composeDeps } from './compose.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createScheduler } from './jobs/scheduler.js';
import { createStoreMaintenance } from './jobs/store-maintenance.js';
import { createWorker } from './jobs/worker.js';
import { createLogger } from './logger.js';
import type { DemoPortal } from './demo/sandbox-demo.js';

/** Sandbox mode has no SARAFAN_SECRET_KEY: one is generated once and kept in DATA_DIR. */
function sandboxSecret(dataDir: string): string {
  const file = path.join(dataDir, 'secret.key');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(dataDir, { recursive: true });
    const key = randomBytes(32).toString('base64url');
    writeFileSync(file, key, { mode: 0o600 });
    return key;
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
  const log = createLogger({ level: config.logLevel });
  const secretKey = config.secretKey ?? sandboxSecret(config.dataDir);
  const store = await openStore({
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { dataDir: config.dataDir }),
    secretKey,
    log,
    // The tests keep the embedded store's transaction guard; the server saves its cost (see the option).
    guardTransactions: false,
  });
  // Sandbox mode only, and dynamically: the demo brings the sandbox portal, which production never loads.
  const demo = config.sandboxMode ? await import('./demo/sandbox-demo.js') : null;
  // One clock for the sandbox portal and Sarafan: a fresh demo replays the shop's last months on
  // it before joining the wall clock (server/demo/shop-history.ts); otherwise it is the wall clock.
  const demoClock = demo ? demo.demoClock(!existsSync(path.join(config.dataDir, 'sandbox', 'portal.json'))) : null;
  const deps = composeDeps({
    ...(demoClock ? { clock: { now: () => new Date(demoClock.now()) } } : {}),
    store,
    log,
    appBaseUrl: config.appBaseUrl,
    // Sandbox mode (no credentials): the local sandbox portal knows Sarafan by the demo's pair.
    clientId: config.b24ClientId ?? demo!.DEMO_CLIENT_ID,
    clientSecret: config.b24ClientSecret ?? demo!.DEMO_CLIENT_SECRET,
    oauthUrl: config.oauthUrl,
    allowInsecurePortals: config.allowInsecurePortals,
    // The demo tells a few people at a time and waits for the queue to be quiet after each step:
    // holding a short feedback batch for more would only slow it down.
    ...(demo ? { feedbackHoldMs: 0 } : {}),
  });

  let server: Server | null = null;
  if (config.role !== 'worker') {
    const app = createApp({ ...deps, ready: () => store.ready(), portalUrl: config.sandboxMode ? `http://localhost:${config.sandboxPort}/` : undefined });
    server = app.listen({ port: config.port, backlog: LISTEN_BACKLOG }, () => {
      log.info({ port: config.port, url: config.appBaseUrl, store: config.databaseUrl ? 'postgres' : 'pglite', sandbox: config.sandboxMode }, 'server.listening');
    });
  }
  const worker =
    config.role !== 'web'
      ? // The embedded store has one process (its lock file): whatever it finds running, a dead process left.
        createWorker(deps, { workerId: `${process.pid}-${randomBytes(3).toString('hex')}`, exclusive: store.driver === 'pglite', ...(demo ? { lingerMs: demo.DEMO_WORKER_LINGER_MS } : {}) })
      : null;
  worker?.start();
  const scheduler = config.role !== 'web' ? createScheduler(deps, { 'reconcile.crm': config.reconcileCron }) : null;
  scheduler?.start();
  // The embedded store's VACUUM (ANALYZE), hourly (a no-op on PostgreSQL).
  const maintenance = createStoreMaintenance(store, log);
  maintenance.start();

  let demoPortal: DemoPortal | null = null;
  let stopping = false;
  const shutdown = async (signal: string, exitCode = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'server.stopping');
    const timer = setTimeout(() => process.exit(1), 15_000);
    timer.unref();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await demoPortal?.sandbox.close();
    await scheduler?.stop();
    await maintenance.stop();
    await worker?.stop();
    await store.close();
    log.info({}, 'server.stopped');
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  if (demo && config.sandboxMode && server) {
    await new Promise<void>((resolve) => (server!.listening ? resolve() : server!.once('listening', () => resolve())));
    try {
      demoPortal = await demo.startDemoPortal({
        port: config.sandboxPort,
        host: 'localhost',
        dataDir: path.join(config.dataDir, 'sandbox'),
        appBaseUrl: config.appBaseUrl,
        store,
        log,
        ...(demoClock ? { clock: demoClock, history: {} } : {}),
      });
    } catch (e) {
      console.error(e instanceof Error ? e.message : e);
      return shutdown('demo.failed', 1);
    }
    // The one line a newcomer needs, printed once the demo is complete (pino logs go to stdout).
    console.error(`\nSarafan is installed in the sandbox portal${demoPortal.seeded ? ' and the demo shop is ready' : ''}: open ${demoPortal.url}\n`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
