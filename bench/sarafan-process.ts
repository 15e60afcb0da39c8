/**
 * Sarafan as its own process for the benchmarks, composed as server/main.ts composes it in
 * production (store, portal gateway over b24jssdk, HTTP app, queue worker with its default batch,
 * linger and idle), so its CPU time is Sarafan's own work and nothing else: the sandbox portal
 * and the benchmark run in the parent. The parent talks to it over the IPC channel:
 *
 * - `queue`: jobs due now, dated in the future, running and dead (a future-dated job — the
 *   `crm.project` guarantee a run leaves for 30 s — is work only if the CRM still lacks it);
 * - `usage`: this process's CPU time, plus on PostgreSQL the CPU time of the server backends of
 *   its database (sampled from /proc while it runs: pool connections come and go);
 * - `credits`: ledger credits recorded since a moment;
 * - `profile`: a V8 CPU profile of the main thread between start and stop (BENCH_PROFILE);
 * - `sql`: time spent in the embedded database per statement text (BENCH_SQL=1, PGlite only);
 * - `stop`: the graceful shutdown of main.ts.
 *
 * BENCH_SETUP_LIMITS=off lifts the SDK's client-side rate limiter, for set-ups run while the
 * sandbox's limits are off (it mirrors a 2/s bucket otherwise, reference §10.5); measured runs
 * always use a fresh process with the production limiter and a full bucket.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createServer } from 'node:http';
import pg from 'pg';
import { createApp, LISTEN_BACKLOG } from '../server/app.js';
import { composeDeps } from '../server/compose.js';
import { createWorker } from '../server/jobs/worker.js';
import { createLogger } from '../server/logger.js';
import { createCrmPorts } from '../src/bitrix/crm.js';
import { createPortalGateways } from '../src/bitrix/gateway.js';
import { openStore } from '../src/store/open-store.js';

export type ChildRequest =
  | { id: number; op: 'queue' }
  | { id: number; op: 'usage' }
  | { id: number; op: 'credits'; since: string }
  | { id: number; op: 'profile'; action: 'start' | 'stop'; file?: string }
  | { id: number; op: 'sql'; reset?: boolean }
  | { id: number; op: 'stop' };

/** Whether the queue has jobs in each state: 1 = at least one, 0 = none (dead: how many). */
export interface QueueState {
  due: number;
  future: number;
  running: number;
  dead: number;
}

export interface Usage {
  /** CPU time (user + system) of this process since it started, ms. */
  processMs: number;
  /** CPU time of the PostgreSQL backends serving this process's database, ms (0 on PGlite). */
  databaseMs: number;
  /** This process's CPU time by thread name (/proc, 10 ms ticks): the main thread apart from V8's and libuv's helpers. */
  threads: Record<string, number>;
}

/** CPU ms of this process's threads, summed by thread name (empty where /proc is not there). */
function threadCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    // Threads in the order they were started: main, V8's platform workers, then libuv's pool (its first use).
    for (const [i, tid] of readdirSync('/proc/self/task').map(Number).sort((a, b) => a - b).entries()) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = tid === process.pid ? 'main' : `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).trim()}#${i}`;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10;
    }
  } catch {
    // Not Linux: the total alone.
  }
  return out;
}

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

/** Statement texts → [executions, ms inside PGlite] (BENCH_SQL=1). */
const sqlStats = new Map<string, [number, number]>();
if (process.env.BENCH_SQL) {
  // Every query reaches PGlite as protocol messages through execProtocolStream; a Parse message
  // names the statement the following ones belong to.
  const { PGlite } = await import('@electric-sql/pglite');
  const proto = PGlite.prototype as unknown as { execProtocolStream: (msg: Uint8Array, o: unknown) => Promise<unknown> };
  const original = proto.execProtocolStream;
  let current = '(no statement yet)';
  proto.execProtocolStream = async function (this: unknown, msg: Uint8Array, o: unknown) {
    if (msg[0] === 0x50) {
      let i = 5;
      while (i < msg.length && msg[i] !== 0) i++;
      const from = ++i;
      while (i < msg.length && msg[i] !== 0) i++;
      current = Buffer.from(msg.subarray(from, i)).toString('utf8').replace(/\s+/g, ' ').replace(/\$\d+(, \$\d+)*/g, '$…').slice(0, 200);
      const seen = sqlStats.get(current) ?? [0, 0];
      seen[0]++;
      sqlStats.set(current, seen);
    }
    const started = performance.now();
    try {
      return await original.call(this, msg, o);
    } finally {
      const seen = sqlStats.get(current) ?? [0, 0];
      seen[1] += performance.now() - started;
      sqlStats.set(current, seen);
    }
  };
}

const port = Number(env('BENCH_SARAFAN_PORT'));
const appBaseUrl = `http://127.0.0.1:${port}`;
const log = createLogger({ level: process.env.LOG_LEVEL ?? 'info' });
const databaseUrl = process.env.BENCH_DATABASE_URL;
const store = await openStore({
  ...(databaseUrl ? { databaseUrl } : { dataDir: env('BENCH_DATA_DIR') }),
  secretKey: 'bench-secret-key-0123456789abcdef0123456789',
  log,
  guardTransactions: false, // as server/main.ts opens it
});
const keys = { clientId: env('BENCH_CLIENT_ID'), clientSecret: env('BENCH_CLIENT_SECRET'), oauthUrl: env('BENCH_OAUTH_URL') };
let deps = composeDeps({ store, log, appBaseUrl, ...keys, allowInsecurePortals: true });
if (process.env.BENCH_SETUP_LIMITS === 'off') {
  const gateways = createPortalGateways({
    installations: store.installations,
    ...keys,
    allowInsecure: true,
    log,
    restrictionParams: { rateLimit: { burstLimit: 1_000_000, drainRate: 1_000_000, adaptiveEnabled: false } },
    observer: deps.metrics,
  });
  deps = { ...deps, gateways, crm: createCrmPorts(gateways) };
}
const server = createServer(createApp({ ...deps, ready: () => store.ready() }));
await new Promise<void>((resolve) => server.listen({ port, host: '127.0.0.1', backlog: Number(process.env.BENCH_BACKLOG ?? LISTEN_BACKLOG) }, resolve));
// BENCH_MAX_DEFER_MS: how long a run may wait for deliveries in flight (0: not at all), to compare.
const maxDeferMs = process.env.BENCH_MAX_DEFER_MS === undefined ? undefined : Number(process.env.BENCH_MAX_DEFER_MS);
// BENCH_BATCH_SIZE: changes per worker run (default the worker's), to compare.
const batchSize = process.env.BENCH_BATCH_SIZE === undefined ? undefined : Number(process.env.BENCH_BATCH_SIZE);
const worker = createWorker(deps, {
  workerId: `bench-${process.pid}-${randomBytes(3).toString('hex')}`,
  ...(maxDeferMs === undefined ? {} : { maxDeferMs }),
  ...(batchSize === undefined ? {} : { batchSize }),
});
worker.start();

// PostgreSQL backends of our database: CPU ticks of each, the highest seen (a backend whose pool
// connection closed keeps its last sample; at most one sampling interval of its work is missed).
const TICK_MS = 10; // USER_HZ = 100 on Linux
const backendTicks = new Map<number, number>();
// The sampler's own connection, left out of the sum: its probes are the bench's work, not Sarafan's.
const probe = databaseUrl ? new pg.Client({ connectionString: databaseUrl }) : null;
if (probe) await probe.connect();
/** The bench's own queries: on PostgreSQL through the sampler's connection (not billed), else the embedded store. */
async function benchQuery<T extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return probe ? (await probe.query(text, params)).rows as T[] : store.rawQuery<T>(text, params);
}
async function sampleBackends(): Promise<void> {
  if (!probe) return;
  const { rows } = await probe.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // After "pid (comm) ": state is field 0, utime is field 11, stime field 12.
      const ticks = Number(fields[11]) + Number(fields[12]);
      if (ticks > (backendTicks.get(pid) ?? -1)) backendTicks.set(pid, ticks);
    } catch {
      // Gone, or not on this machine: nothing to add.
    }
  }
}
const sampler = databaseUrl ? setInterval(() => void sampleBackends().catch(() => {}), 250) : null;

let profiler: Session | null = null;

async function answer(msg: ChildRequest): Promise<unknown> {
  switch (msg.op) {
    case 'queue': {
      // Probed every 100 ms inside the measured process (on the embedded store its cost is billed to
      // Sarafan; on PostgreSQL it runs on the sampler's connection, left out of the sum): each
      // state is one existence probe of the claim index (a burst queues thousands of jobs, and
      // counting them all cost 0.6 ms per deal of the embedded store's 1 000-deal run), and the
      // dead ones a count over their partial index.
      const [row] = await benchQuery<Record<keyof QueueState, number>>(
        `SELECT (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND run_at <= $1 LIMIT 1) x)::int AS due,
                (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND run_at > $1 LIMIT 1) x)::int AS future,
                (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'running' LIMIT 1) x)::int AS running,
                (SELECT count(*) FROM jobs WHERE status = 'dead')::int AS dead`,
        [new Date().toISOString()],
      );
      return row satisfies QueueState | undefined;
    }
    case 'usage': {
      await sampleBackends();
      const cpu = process.cpuUsage();
      let ticks = 0;
      for (const t of backendTicks.values()) ticks += t;
      return { processMs: (cpu.user + cpu.system) / 1000, databaseMs: ticks * TICK_MS, threads: threadCpu() } satisfies Usage;
    }
    case 'credits': {
      const [row] = await benchQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ledger_entries WHERE kind = 'credit' AND created_at >= $1`, [msg.since]);
      return row?.n ?? 0;
    }
    case 'profile': {
      // BENCH_HEAP=1: a sampling profile of what was allocated (collected objects included), not of time.
      const heap = process.env.BENCH_HEAP === '1';
      if (msg.action === 'start') {
        profiler ??= new Session();
        profiler.connect();
        if (heap) {
          await profiler.post('HeapProfiler.enable');
          await profiler.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
        } else {
          await profiler.post('Profiler.enable');
          await profiler.post('Profiler.start');
        }
      } else if (profiler) {
        const { profile } = heap ? await profiler.post('HeapProfiler.stopSampling') : await profiler.post('Profiler.stop');
        if (msg.file) writeFileSync(heap ? msg.file.replace(/\.cpuprofile$/, '.heapprofile') : msg.file, JSON.stringify(profile));
        profiler.disconnect();
      }
      return true;
    }
    case 'sql': {
      const top = [...sqlStats].sort((a, b) => b[1][1] - a[1][1]).map(([sql, [n, ms]]) => ({ ms: Math.round(ms), n, sql }));
      if (msg.reset) sqlStats.clear();
      return top;
    }
    case 'stop': {
      if (sampler) clearInterval(sampler);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections of the portal's deliveries would hold close() open.
      setTimeout(() => server.closeAllConnections(), 1_000).unref();
      await closed;
      await worker.stop();
      await store.close();
      await probe?.end();
      return true;
    }
  }
}

process.on('message', (msg: ChildRequest) => {
  answer(msg).then(
    (result) => process.send?.({ id: msg.id, result }, () => (msg.op === 'stop' ? process.exit(0) : undefined)),
    (e: unknown) => process.send?.({ id: msg.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.send?.({ ready: true });
