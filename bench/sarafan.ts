/**
 * Starts bench/sarafan-process.ts (Sarafan alone in a process, composed as in production) and
 * talks to it over IPC. Its output (info-level JSON logs, as in production) goes to a file,
 * named when something fails.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ChildRequest, QueueState, Usage } from './sarafan-process.js';

export interface SarafanProcess {
  url: string;
  pid: number;
  logFile: string;
  queue(): Promise<QueueState>;
  usage(): Promise<Usage>;
  credits(since: Date): Promise<number>;
  /** A V8 CPU profile of Sarafan's main thread between start and stop, written to `file`. */
  profile(action: 'start' | 'stop', file?: string): Promise<void>;
  /** Time per statement in the embedded database since the last reset (BENCH_SQL=1). */
  sql(reset?: boolean): Promise<{ ms: number; n: number; sql: string }[]>;
  stop(): Promise<void>;
}

export interface SarafanOptions {
  port: number;
  store: { dataDir: string } | { databaseUrl: string };
  oauthUrl: string;
  clientId: string;
  clientSecret: string;
  logFile: string;
  /** Lift the SDK's client-side limiter (set-ups against a portal whose limits are off). */
  setupLimits?: boolean;
}

/** A free loopback port (the app's URL must be known before it starts: the portal stores it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The Node flags of `npm run start:prod` (package.json): the bench's Sarafan runs as production does. */
const SERVER_NODE_FLAGS: string[] = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
).scripts['start:prod']!
  .split(/\s+/)
  .filter((arg) => arg.startsWith('--'));

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export async function startSarafan(o: SarafanOptions): Promise<SarafanProcess> {
  const out = openSync(o.logFile, 'a');
  const child: ChildProcess = fork(fileURLToPath(new URL('./sarafan-process.ts', import.meta.url)), [], {
    // The Node flags production runs with (the start:prod script's), then BENCH_NODE_FLAGS to compare
    // others (e.g. --single-threaded-gc).
    execArgv: ['--import', 'tsx', ...SERVER_NODE_FLAGS, ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [])],
    stdio: ['ignore', out, out, 'ipc'],
    env: {
      ...process.env,
      BENCH_SARAFAN_PORT: String(o.port),
      BENCH_OAUTH_URL: o.oauthUrl,
      BENCH_CLIENT_ID: o.clientId,
      BENCH_CLIENT_SECRET: o.clientSecret,
      ...('databaseUrl' in o.store ? { BENCH_DATABASE_URL: o.store.databaseUrl } : { BENCH_DATA_DIR: o.store.dataDir }),
      BENCH_SETUP_LIMITS: o.setupLimits ? 'off' : 'on',
    },
  });
  closeSync(out);
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let exited: string | null = null;
  const failAll = (why: string) => {
    exited = why;
    for (const p of pending.values()) p.reject(new Error(`Sarafan's process ${why} (log: ${o.logFile})`));
    pending.clear();
  };
  child.on('exit', (code, signal) => failAll(`exited (${signal ?? code})`));
  child.on('error', (e) => failAll(`failed: ${e.message}`));

  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: { ready?: boolean }) => {
      if (!m.ready) return;
      child.off('message', onMessage);
      resolve();
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`Sarafan's process exited at start (${code}); log: ${o.logFile}`)));
  });
  child.on('message', (m: { id?: number; result?: unknown; error?: string }) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(`Sarafan's process: ${m.error}`));
    else p?.resolve(m.result);
  });

  function ask<T>(req: Omit<ChildRequest, 'id'>): Promise<T> {
    if (exited) return Promise.reject(new Error(`Sarafan's process ${exited} (log: ${o.logFile})`));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...req, id });
    });
  }

  return {
    url: `http://127.0.0.1:${o.port}`,
    pid: child.pid!,
    logFile: o.logFile,
    queue: () => ask<QueueState>({ op: 'queue' }),
    usage: () => ask<Usage>({ op: 'usage' }),
    credits: (since) => ask<number>({ op: 'credits', since: since.toISOString() } as Omit<ChildRequest, 'id'>),
    sql: (reset) => ask<{ ms: number; n: number; sql: string }[]>({ op: 'sql', reset } as Omit<ChildRequest, 'id'>),
    profile: (action, file) => ask<void>({ op: 'profile', action, ...(file ? { file } : {}) } as Omit<ChildRequest, 'id'>),
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await ask<boolean>({ op: 'stop' }).catch(() => undefined);
      await gone;
    },
  };
}
