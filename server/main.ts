/**
 * The process: config → logger → store → gateway → createApp → listen, plus the queue worker
 * (SARAFAN_ROLE), and a graceful shutdown of HTTP, worker and store on SIGTERM/SIGINT.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import { openStore } from '../src/store/open-store.js';
import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, sarafanApp } from '../sandbox/apps.js';
import { seedDemo } from '../sandbox/seed.js';
import { startSandbox, type Sandbox } from '../sandbox/server.js';
import { createApp, LISTEN_BACKLOG } from './app.js';
import { composeDeps } from './compose.js';
import { ConfigError, loadConfig, type Config, type SandboxConfig } from './config.js';
import { createWorker } from './jobs/worker.js';
import { createLogger } from './logger.js';

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
  });
  const deps = composeDeps({
    store,
    log,
    appBaseUrl: config.appBaseUrl,
    // Sandbox mode (no credentials): the local sandbox portal knows Sarafan by this pair.
    clientId: config.b24ClientId ?? SANDBOX_CLIENT_ID,
    clientSecret: config.b24ClientSecret ?? SANDBOX_CLIENT_SECRET,
    oauthUrl: config.oauthUrl,
    allowInsecurePortals: config.allowInsecurePortals,
  });

  let server: Server | null = null;
  if (config.role !== 'worker') {
    const app = createApp({ ...deps, ready: () => store.ready() });
    server = app.listen({ port: config.port, backlog: LISTEN_BACKLOG }, () => {
      log.info({ port: config.port, url: config.appBaseUrl, store: config.databaseUrl ? 'postgres' : 'pglite', sandbox: config.sandboxMode }, 'server.listening');
      console.error(`Sarafan is running at ${config.appBaseUrl}`);
    });
  }
  const worker = config.role !== 'web' ? createWorker(deps, { workerId: `${process.pid}-${randomBytes(3).toString('hex')}` }) : null;
  worker?.start();

  let sandbox: Sandbox | null = null;
  if (config.sandboxMode && server) {
    await new Promise<void>((resolve) => (server!.listening ? resolve() : server!.once('listening', () => resolve())));
    sandbox = await startSandboxPortal(config, log);
  }

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'server.stopping');
    const timer = setTimeout(() => process.exit(1), 15_000);
    timer.unref();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await sandbox?.close();
    await worker?.stop();
    await store.close();
    log.info({}, 'server.stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * Sandbox mode: the sandbox portal on SANDBOX_PORT, Sarafan installed into it on first start
 * (the wizard POST and installFinish, as the portal's install slider would do), and the demo
 * seeded into an empty portal. State persists in DATA_DIR/sandbox.
 */
async function startSandboxPortal(config: SandboxConfig, log: ReturnType<typeof createLogger>): Promise<Sandbox> {
  const sandbox = await startSandbox({
    port: config.sandboxPort,
    host: 'localhost',
    dataDir: path.join(config.dataDir, 'sandbox'),
    apps: [sarafanApp(config.appBaseUrl)],
    log: (msg, extra) => log.warn({ ...extra }, `sandbox.${msg}`),
  });
  if (!sandbox.portal.app(SANDBOX_CLIENT_ID)?.installed) {
    const page = await sandbox.outbound.installHeadless(SANDBOX_CLIENT_ID);
    if (page.status !== 200) log.error({ status: page.status }, 'sandbox.install_failed');
    else log.info({}, 'sandbox.installed');
  }
  console.error(`\nSandbox portal with Sarafan installed: open ${sandbox.url}/\n`);
  void seedDemo(sandbox.portal, { log: (m) => console.error(m) }).catch((e: unknown) => log.error({ error: String(e) }, 'sandbox.seed_failed'));
  return sandbox;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
