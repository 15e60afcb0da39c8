/**
 * SPEC 11 — event ingest: ≥ 1 000 events/s with p99 ack ≤ 50 ms on the embedded store.
 * Sarafan (createApp + on-disk PGlite, no worker) serves in this process; a worker thread on
 * the other core posts real ONCRMDEALUPDATE form bodies (distinct deals, so nothing coalesces)
 * over keep-alive HTTP. The acknowledgement time is measured in the server (request parsed →
 * response finished); the sender's view is reported too.
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

export interface IngestResult {
  events: number;
  seconds: number;
  perSecond: number;
  /** Server-side acknowledgement: request parsed → response finished (the budget's figure). */
  ackP50: number;
  ackP99: number;
  ackMax: number;
  /** As the sender saw it (includes the sender's own scheduling on a shared 2-core machine). */
  p50: number;
  p99: number;
  max: number;
  errors: number;
  queued: number;
}

const LOADER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { port, total, concurrency, rate, body } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: rate ? 256 : concurrency });
const lat = []; let next = 0; let errors = 0;
function one(id) {
  return new Promise((resolve) => {
    const payload = body.replace('__ID__', String(id));
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, path: '/b24/events', method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => { lat.push(Number(process.hrtime.bigint() - t0) / 1e6); if (res.statusCode !== 200) errors++; resolve(); });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end(payload);
  });
}
async function lane() { while (next < total) { const id = ++next; await one(id); } }
// Open loop: event i is sent at t0 + i/rate whatever the server's speed (as Bitrix24's queue
// server does); closed loop: \`concurrency\` lanes send as fast as answers come.
async function paced() {
  const t0 = Date.now(); const inflight = [];
  for (let i = 1; i <= total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(one(i));
  }
  await Promise.all(inflight);
}
(async () => {
  const t0 = Date.now();
  if (rate) await paced(); else await Promise.all(Array.from({ length: concurrency }, lane));
  parentPort.postMessage({ lat, errors, ms: Date.now() - t0 });
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
    // Warm-up (JIT, PGlite caches), not measured.
    await runLoader(port, 500, concurrency, 0, body);
    recording = true;
    const run = await runLoader(port, total, concurrency, rate, body);
    server.close();
    const lat = run.lat.sort((a, b) => a - b);
    const q = (p: number, xs = lat) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
    acks.sort((a, b) => a - b);
    const depth = await store.jobs.depth(inst.id);
    return {
      events: total,
      seconds: run.ms / 1000,
      perSecond: Math.round(total / (run.ms / 1000)),
      ackP50: round(q(0.5, acks)),
      ackP99: round(q(0.99, acks)),
      ackMax: round(acks[acks.length - 1]!),
      p50: round(q(0.5)),
      p99: round(q(0.99)),
      max: round(lat[lat.length - 1]!),
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

function runLoader(port: number, total: number, concurrency: number, rate: number, body: string): Promise<{ lat: number[]; errors: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOADER, { eval: true, workerData: { port, total, concurrency, rate, body } });
    w.once('message', (m) => {
      resolve(m as { lat: number[]; errors: number; ms: number });
      void w.terminate();
    });
    w.once('error', reject);
  });
}
