/**
 * SPEC 11 — event ingest: ≥ 1 000 events/s with p99 ack ≤ 50 ms on the embedded store.
 * Sarafan (createApp + on-disk PGlite, no worker) serves in this process; a worker thread posts
 * real ONCRMDEALUPDATE form bodies (distinct deals, so nothing coalesces) over keep-alive HTTP,
 * after a warm-up on the same connections.
 *
 * The budget's figure is the acknowledgement time measured in the server (request parsed →
 * response finished). The sender shares the machine's two cores with the server, so its view —
 * reported too, from sending and (open loop) from when the event was due — also holds its own
 * scheduling; and a request that must first open a connection waits for the server to accept it,
 * which the server cannot time (counted apart).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createApp } from '../server/app.js';
import { composeDeps } from '../server/compose.js';
import { createLogger } from '../server/logger.js';
import { openStore } from '../src/store/open-store.js';

export interface Latency {
  p50: number;
  p99: number;
  max: number;
}

export interface IngestResult {
  events: number;
  seconds: number;
  perSecond: number;
  /** Server-side acknowledgement, ms: request parsed → response finished (the budget's figure). */
  ack: Latency;
  /** As the sender saw it, ms: sent → answered (its own scheduling on the shared cores included). */
  sender: Latency;
  /** Open loop: due → answered, ms — also counting how late the sender itself sent. */
  senderFromDue: Latency | null;
  /** Requests that had to open a connection, and their sender-side latency. */
  newConnections: { count: number } & Latency;
  errors: number;
  queued: number;
}

const LOADER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { port, total, concurrency, rate, warmup, warmConnections, body } = workerData;
// FIFO keeps every pooled connection in use, so none idles into the server's keep-alive timeout:
// the run measures requests on open connections, as a sender keeping them would see them.
const agent = new http.Agent({ keepAlive: true, scheduling: 'fifo', maxSockets: Math.max(concurrency, warmConnections, rate ? 256 : 0) });
// Per request (ms, on this thread's clock): when it was due (open loop), sent, and answered,
// and whether it had to open a connection.
let due = [], sent = [], done = [], fresh = [], errors = 0;
const now = () => Number(process.hrtime.bigint()) / 1e6;
function one(i, dueAt) {
  return new Promise((resolve) => {
    const payload = body.replace('__ID__', String(i + 1));
    due[i] = dueAt ?? now(); sent[i] = now();
    const req = http.request({ host: '127.0.0.1', port, path: '/b24/events', method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => { done[i] = now(); if (res.statusCode !== 200) errors++; resolve(); });
    });
    req.on('socket', () => { fresh[i] = !req.reusedSocket; });
    req.on('error', () => { errors++; done[i] = now(); resolve(); });
    req.end(payload);
  });
}
function closed(n, lanes, offset) {
  let next = 0;
  const lane = async () => { while (next < n) { const i = next++; await one(offset + i); } };
  return Promise.all(Array.from({ length: lanes }, lane));
}
// Open loop: event i is due at t0 + i/rate whatever the server's speed (as Bitrix24's queue
// server sends); closed loop: \`concurrency\` lanes send as fast as answers come.
async function paced(n, offset) {
  const t0 = now(); const inflight = [];
  for (let i = 0; i < n; i++) {
    const at = t0 + (i * 1000) / rate;
    const wait = at - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(one(offset + i, at));
  }
  await Promise.all(inflight);
}
(async () => {
  // Warm-up on this agent (JIT, PGlite caches, the connections), not measured.
  await closed(warmup, warmConnections, 1_000_000);
  due = []; sent = []; done = []; fresh = []; errors = 0;
  parentPort.postMessage({ warm: true });
  await new Promise((r) => parentPort.once('message', r));
  const t0 = now();
  if (rate) await paced(total, 0); else await closed(total, concurrency, 0);
  parentPort.postMessage({ due, sent, done, fresh, errors, ms: now() - t0 });
  agent.destroy();
})();
`;

/** `rate` (events/s) → open loop at that rate; otherwise closed loop with `concurrency` lanes. */
export async function benchIngest(opts: { events?: number; concurrency?: number; rate?: number } = {}): Promise<IngestResult> {
  const total = opts.events ?? 10_000;
  const concurrency = opts.concurrency ?? 32;
  const rate = opts.rate ?? 0;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sarafan-bench-'));
  const log = createLogger({ level: 'warn' });
  const store = await openStore({ ...(process.env.BENCH_MEMORY ? { memory: true } : { dataDir }), secretKey: 'bench-secret-key-0123456789abcdef0123456789' });
  try {
    const now = new Date();
    const inst = await store.installations.upsertVerified(
      {
        memberId: 'bench-member',
        domain: 'bench.bitrix24.ru',
        clientEndpoint: 'https://bench.bitrix24.ru/rest/',
        serverEndpoint: 'https://oauth.bitrix.info/rest/',
        scope: 'crm',
        userId: 1,
        tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: new Date(now.getTime() + 3_600_000) },
        applicationToken: 'bench-application-token',
      },
      now,
    );
    await store.installations.activate(inst.id, now);
    const deps = composeDeps({
      store,
      log,
      appBaseUrl: 'https://sarafan.example.com',
      clientId: 'bench',
      clientSecret: 'bench',
      oauthUrl: 'https://oauth.bitrix.info',
      allowInsecurePortals: false,
    });
    const app = createApp({ ...deps, ready: () => store.ready() });
    const acks: number[] = [];
    let recording = false;
    const server = createServer((req, res) => {
      const t0 = process.hrtime.bigint();
      if (recording) res.on('finish', () => acks.push(Number(process.hrtime.bigint() - t0) / 1e6));
      app(req, res);
    }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const body =
      'event=ONCRMDEALUPDATE&event_handler_id=201&data[FIELDS][ID]=__ID__&ts=1736405807' +
      '&auth[domain]=bench.bitrix24.ru&auth[client_endpoint]=https://bench.bitrix24.ru/rest/' +
      '&auth[server_endpoint]=https://oauth.bitrix.info/rest/&auth[member_id]=bench-member' +
      '&auth[application_token]=bench-application-token&auth[status]=F&auth[scope]=crm';
    const run = await runLoader({ port, total, concurrency, rate, warmup: 1000, warmConnections: rate ? 64 : concurrency, body }, () => (recording = true));
    server.close();
    const fromSent = run.done.map((d, i) => d - run.sent[i]!);
    const depth = await store.jobs.depth(inst.id);
    return {
      events: total,
      seconds: round(run.ms / 1000),
      perSecond: Math.round(total / (run.ms / 1000)),
      ack: latency(acks),
      sender: latency(fromSent),
      senderFromDue: rate ? latency(run.done.map((d, i) => d - run.due[i]!)) : null,
      newConnections: { count: run.fresh.filter(Boolean).length, ...latency(fromSent.filter((_x, i) => run.fresh[i])) },
      errors: run.errors,
      queued: depth.queued,
    };
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function latency(xs: number[]): Latency {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? round(s[Math.min(s.length - 1, Math.floor(p * s.length))]!) : NaN);
  return { p50: q(0.5), p99: q(0.99), max: s.length ? round(s[s.length - 1]!) : NaN };
}

interface LoaderRun {
  due: number[];
  sent: number[];
  done: number[];
  fresh: boolean[];
  errors: number;
  ms: number;
}

interface LoaderPlan {
  port: number;
  total: number;
  concurrency: number;
  rate: number;
  warmup: number;
  warmConnections: number;
  body: string;
}

/** Warms up, calls `warm` (from then on the server records), runs the measured part. */
function runLoader(plan: LoaderPlan, warm: () => void): Promise<LoaderRun> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOADER, { eval: true, workerData: plan });
    w.on('message', (m: LoaderRun | { warm: true }) => {
      if ('warm' in m) {
        warm();
        w.postMessage('go');
        return;
      }
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}
