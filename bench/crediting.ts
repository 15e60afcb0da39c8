/**
 * SPEC 11, "crediting won referred deals on one portal": one referrer, N referred clients each
 * with a deal in progress; the N deals are won at once (a robot's bulk change, so token-less
 * events) and Sarafan credits the referrer and writes everything the wins owe back to the CRM.
 *
 * Sarafan runs alone in a child process composed as in production (bench/sarafan-process.ts) on
 * the embedded store (PGlite files in a temporary DATA_DIR) or on a fresh PostgreSQL database;
 * the sandbox portal runs in this process and delivers its events over HTTP, as Bitrix24 does.
 *
 * Set-up (not measured): the sandbox's limits off and the SDK's limiter lifted, the referrer and
 * the clients are created through the portal facade in chunks, and their events flow to Sarafan,
 * which attributes every client (checked on the CRM: every client and deal shows the referrer).
 * Then Sarafan is restarted with the production limiter — a fresh SDK bucket, as after any
 * start — and the portal's limits are switched on (2/s, burst 50; its bucket is empty). The fresh
 * process first credits WARM_UP_DEALS deals of a second referrer (reported as its cold start: V8
 * compiles the hot paths then), and the buckets are left to fill up again before the measure.
 *
 * Measured, from the moment the deals are won:
 * - wall time until the CRM shows every credit (each deal's reward, the referrer's balance and
 *   referral count, each new member's code), compared with what the portal's limit allows for the
 *   requests made plus Sarafan's processing: max(0, requests − burst) / drain + processing;
 * - processing: Sarafan's CPU time (its process, plus the PostgreSQL backends of its database)
 *   from the wins until the queue has no due work and the portal has nothing in flight — its own
 *   work on every event of the burst and on the echoes of its writes; waiting for the portal's
 *   bucket, for the network or in the worker's linger costs no CPU and is not counted;
 * - REST requests (the sandbox's count) per deal; deliveries the portal gave up on (an event lost).
 * The machine's load average is recorded with each run: CPU and wall times on a busy machine are
 * longer than on a quiet one. The process's CPU is also split by thread (main, V8's background
 * compiler and collector threads, libuv's pool). BENCH_NODE_FLAGS passes V8 flags to compare.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { F } from '../src/bitrix/crm-fields.js';
import { DEMO_CLIENT_ID as SANDBOX_CLIENT_ID, DEMO_CLIENT_SECRET as SANDBOX_CLIENT_SECRET, sarafanApp } from '../server/demo/sandbox-demo.js';
import { startSandbox, type Sandbox } from '../sandbox/server.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../tests/support/postgres.js';
import { freePort, startSarafan, type SarafanProcess } from './sarafan.js';

export const LIMITS = { drainPerSec: 2, burst: 50 };
/** Deals a fresh Sarafan process credits before the measured burst (see the warm-up below). */
export const WARM_UP_DEALS = 250;

export interface CreditingResult {
  deals: number;
  store: 'embedded' | 'postgres';
  /** From the wins until the CRM shows every credit. */
  wallSeconds: number;
  /** From the wins until nothing is due in the queue and the portal has nothing in flight. */
  quietSeconds: number;
  /** max(0, requests − burst) / drain + processing seconds. */
  allowedSeconds: number;
  processing: { cpuMs: number; sarafanMs: number; databaseMs: number; msPerDeal: number; threadsMs: Record<string, number> };
  /** The fresh process's first WARM_UP_DEALS deals (Sarafan's process only, PostgreSQL left out): its compilation included. */
  coldStart: { deals: number; sarafanMsPerDeal: number };
  /** Every REST request the portal admitted, the loop's and the feedback's. */
  restRequests: number;
  /** The loop's requests (reads, projections) per deal: the SPEC 11 budget, feedback left out. */
  requestsPerDeal: number;
  /**
   * Feedback in the CRM (issue 9): `batch` requests made only of timeline comments and
   * notifications, counted apart so the loop's budget stays visible.
   */
  feedbackRequests: number;
  feedbackRequestsPerDeal: number;
  /** Methods run, batch commands counted one by one. */
  commands: number;
  requestsByMethod: Record<string, number>;
  throttled: number;
  /** Ledger credits recorded during the measurement. */
  credited: number;
  /** Deals whose CRM fields show their credit at the end. */
  shownInCrm: number;
  /**
   * Event deliveries during the measurement, as the portal saw them: how long Sarafan took to
   * answer (ms) and how many the portal gave up on (no answer within its 10 s: for Bitrix24 a
   * lost event, although Sarafan may still have queued it).
   */
  deliveries: { count: number; p50: number; p99: number; max: number; failed: number; histogram: Record<string, number> };
  /**
   * The same deliveries as Sarafan timed them (its sarafan_event_ack_seconds histogram, from the
   * body read to the answer): answers within each bound, cumulative. Far below the portal's
   * figures, the time went before Sarafan read the request (connection, the portal's own load).
   */
  serverAck: Record<string, number>;
  setupSeconds: number;
  loadAverage: { atStart: number[]; atEnd: number[] };
  logFile: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const minor = (v: unknown): number => Math.round(Number(Array.isArray(v) ? v[0] : v) * 100) || 0;
const round = (n: number, places = 1) => Math.round(n * 10 ** places) / 10 ** places;
const progress = (msg: string) => console.error(`  ${msg}`);

export async function benchCrediting(opts: { deals: number; store: 'embedded' | 'postgres'; setupChunk?: number }): Promise<CreditingResult> {
  const { deals } = opts;
  const chunk = opts.setupChunk ?? Number(process.env.BENCH_SETUP_CHUNK ?? 250);
  const work = mkdtempSync(path.join(tmpdir(), 'sarafan-bench-crediting-'));
  const logFile = path.join(work, 'sarafan.log');
  let failedDeliveries = 0;
  // The portal's deliveries, timed as the portal sees them (its outbound takes the global fetch).
  const deliveryMs: number[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const t0 = performance.now();
    try {
      return await realFetch(input, init);
    } finally {
      if (String(input).endsWith('/b24/events')) deliveryMs.push(performance.now() - t0);
    }
  }) as typeof fetch;
  const sandbox = await startSandbox({
    port: 0,
    dataDir: null,
    limits: false,
    log: (msg) => {
      if (msg === 'event.delivery_failed') failedDeliveries++;
    },
  }).finally(() => {
    globalThis.fetch = realFetch;
  });
  const port = await freePort();
  sandbox.portal.upsertApp(sarafanApp(`http://127.0.0.1:${port}`));
  const database = opts.store === 'postgres' ? await createDatabase() : null;
  const storeOption = database ? { databaseUrl: withDatabase(serverUrl, database) } : { dataDir: path.join(work, 'data') };
  const start = (setupLimits: boolean) =>
    startSarafan({ port, store: storeOption, oauthUrl: sandbox.url, clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET, logFile, setupLimits });
  let sarafan: SarafanProcess | null = null;
  const { portal } = sandbox;
  const manager = { userId: 2 };
  try {
    // ---- set-up ------------------------------------------------------------------------------
    const setupStarted = performance.now();
    sarafan = await start(true);
    const page = await sandbox.outbound.installHeadless(SANDBOX_CLIENT_ID);
    if (page.status !== 200) throw new Error(`the install wizard answered ${page.status} (log: ${logFile})`);
    await waitQuiet(sandbox, sarafan, 120_000, 'the install');

    const enrolledReferrer = async (name: string): Promise<{ referrer: number; code: string }> => {
      const referrer = portal.addEntity('contact', { NAME: name }, manager);
      const first = portal.addEntity('deal', { CONTACT_ID: referrer, OPPORTUNITY: 1000 }, manager);
      portal.updateEntity('deal', first, { STAGE_ID: 'WON' }, manager);
      await waitQuiet(sandbox, sarafan!, 120_000, `the enrolment of ${name}`);
      const code = String(portal.getEntity('contact', referrer)?.[F.CODE] ?? '');
      if (!code) throw new Error(`${name} was not enrolled during set-up (log: ${logFile})`);
      return { referrer, code };
    };
    const { referrer, code } = await enrolledReferrer('Реферер');
    // The warm-up's clients have a referrer of their own: the measured one's balance and count stay its N deals'.
    const warm = await enrolledReferrer('Реферер разминки');

    /** Referred clients, each with a deal in progress, created in chunks whose events have all arrived. */
    const referredClients = async (n: number, referrerCode: string, label: string) => {
      const clients: number[] = [];
      const ids: number[] = [];
      for (let from = 0; from < n; from += chunk) {
        for (let i = from; i < Math.min(n, from + chunk); i++) {
          const contact = portal.addEntity('contact', { NAME: `${label} ${i + 1}`, [F.REF_CODE]: referrerCode }, manager);
          clients.push(contact);
          ids.push(portal.addEntity('deal', { CONTACT_ID: contact, OPPORTUNITY: 10_000 + i, STAGE_ID: 'EXECUTING' }, manager));
        }
        // A chunk at a time: the set-up's events must all arrive (an event Bitrix24 cannot deliver in
        // time is lost), and the measurement must start from clients Sarafan has attributed.
        await waitQuiet(sandbox, sarafan!, 600_000, `set-up of ${label} ${from + 1}–${Math.min(n, from + chunk)}`);
        if ((from / chunk) % 8 === 7) progress(`set-up: ${Math.min(n, from + chunk)}/${n} ${label}`);
      }
      return { clients, ids };
    };
    const { clients, ids } = await referredClients(deals, code, 'Клиент');
    const warmUp = await referredClients(WARM_UP_DEALS, warm.code, 'Разминка');
    const attributed = [
      ...clients.map((id) => ({ id, referrerRef: `C_${referrer}` })),
      ...warmUp.clients.map((id) => ({ id, referrerRef: `C_${warm.referrer}` })),
    ];
    for (let round = 0; ; round++) {
      const missing = [
        ...attributed.filter(({ id, referrerRef }) => portal.getEntity('contact', id)?.[F.REFERRER] !== referrerRef).map(({ id }) => ['contact', id] as const),
        ...[...ids, ...warmUp.ids].filter((id) => !portal.getEntity('deal', id)?.[F.REFERRER]).map((id) => ['deal', id] as const),
      ];
      if (!missing.length) break;
      if (round === 3) throw new Error(`set-up: ${missing.length} clients or deals still show no referrer (log: ${logFile})`);
      progress(`set-up: ${missing.length} entities not attributed yet (their events were lost): touching them again`);
      for (const [entity, id] of missing) portal.updateEntity(entity, id, { COMMENTS: `set-up ${round + 1}` }, manager);
      await waitQuiet(sandbox, sarafan, 600_000, 'the set-up repair');
    }
    await sarafan.stop();
    const setupSeconds = round((performance.now() - setupStarted) / 1000);
    progress(`set-up of ${deals} referred clients took ${setupSeconds} s, ${sandbox.stats.requests} REST requests`);

    // ---- warm-up: a fresh process's first deals (not the budget's measure) -------------------
    // A server runs for days; its first minutes pay V8's compilation of the hot paths (measured:
    // about 900 functions optimized in the first seconds, on 4 background threads). So the fresh
    // process first credits WARM_UP_DEALS deals of another referrer — their cost is reported
    // as the cold start — then waits until the portal's bucket and the SDK's own would be full
    // again (burst / drain), and the measured burst starts from a warm process and full buckets.
    sarafan = await start(false);
    sandbox.setLimits(LIMITS);
    const coldBefore = await sarafan.usage();
    for (const id of warmUp.ids) portal.updateEntity('deal', id, { STAGE_ID: 'WON' }, { userId: 0, byRobot: true });
    await waitQuiet(sandbox, sarafan, 10 * 60_000, 'the warm-up');
    const coldMs = (await sarafan.usage()).processMs - coldBefore.processMs;
    const warmCredited = warmUp.ids.filter((id) => minor(portal.getEntity('deal', id)?.[F.REWARD]) > 0).length;
    if (warmCredited !== WARM_UP_DEALS) throw new Error(`the warm-up credited ${warmCredited} of ${WARM_UP_DEALS} deals (log: ${logFile})`);
    await sleep((LIMITS.burst / LIMITS.drainPerSec) * 1000);
    sandbox.setLimits(LIMITS);

    // ---- measured ------------------------------------------------------------------------------
    const expected = {
      balance: ids.reduce((s, _id, i) => s + minor((10_000 + i) / 10), 0),
      rewards: new Map(ids.map((id, i) => [id, minor((10_000 + i) / 10)])),
    };
    const shown = () => {
      let n = 0;
      ids.forEach((id, i) => {
        if (minor(portal.getEntity('deal', id)?.[F.REWARD]) === expected.rewards.get(id) && portal.getEntity('contact', clients[i]!)?.[F.CODE]) n++;
      });
      return n;
    };
    const referrerDone = () => {
      const row = portal.getEntity('contact', referrer);
      return minor(row?.[F.BALANCE]) === expected.balance && Number(row?.[F.REFERRALS]) === deals;
    };
    const before = { ...sandbox.stats, byMethod: { ...sandbox.stats.byMethod } };
    const failedBefore = failedDeliveries;
    deliveryMs.length = 0;
    const usageBefore = await sarafan.usage();
    const ackBefore = await eventAckHistogram(sarafan.url);
    const loadAtStart = loadavg().map((l) => round(l, 2));
    // BENCH_PROFILE=dir: a CPU profile of Sarafan over the measured part, for finding its costs.
    const profileDir = process.env.BENCH_PROFILE;
    if (profileDir) await sarafan.profile('start');
    if (process.env.BENCH_SQL) await sarafan.sql(true);
    const wonAt = new Date();
    const started = performance.now();
    for (const id of ids) portal.updateEntity('deal', id, { STAGE_ID: 'WON' }, { userId: 0, byRobot: true });

    // The CRM is watched on its own timer: the wall time ends when it shows every credit.
    let doneAt: number | null = null;
    const watch = setInterval(() => {
      if (doneAt === null && referrerDone() && shown() === deals) doneAt = performance.now();
    }, 50);
    let quietAt: number;
    try {
      // Each probe is a query in Sarafan's process, billed to it on the embedded store (about 2 ms):
      // once a second it costs the measure some 0.05 ms per deal, and the quiet moment (where the
      // CPU measure ends; idle time costs nothing) is known to a second.
      quietAt = await waitQuiet(sandbox, sarafan, 30 * 60_000, 'the crediting', () => doneAt !== null, 1_000);
    } finally {
      clearInterval(watch);
    }
    if (doneAt === null && referrerDone() && shown() === deals) doneAt = performance.now();
    const usageAfter = await sarafan.usage();
    // The measured burst's answers alone (the process answered the warm-up's before).
    const serverAck = Object.fromEntries(Object.entries(await eventAckHistogram(sarafan.url)).map(([le, n]) => [le, n - (ackBefore[le] ?? 0)]));
    if (profileDir) await sarafan.profile('stop', path.join(profileDir, `crediting-${opts.store}-${deals}-${Date.now()}.cpuprofile`));
    const credited = await sarafan.credits(wonAt);
    if (process.env.BENCH_SQL) {
      const top = await sarafan.sql();
      const total = top.reduce((s, t) => s + t.ms, 0);
      progress(`embedded database: ${total} ms in ${top.reduce((s, t) => s + t.n, 0)} statements; the costliest:`);
      for (const t of top.slice(0, 25)) progress(`${String(t.ms).padStart(6)} ms ${String(t.n).padStart(6)} × ${t.sql}`);
    }
    const restRequests = sandbox.stats.requests - before.requests;
    const byMethod = Object.fromEntries(
      Object.entries(sandbox.stats.byMethod)
        .map(([k, v]) => [k, v - (before.byMethod[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    );
    const feedbackRequests = Object.entries(byMethod)
      .filter(([k]) => isFeedbackBatch(k))
      .reduce((s, [, v]) => s + v, 0);
    const sarafanMs = usageAfter.processMs - usageBefore.processMs;
    const databaseMs = usageAfter.databaseMs - usageBefore.databaseMs;
    const cpuMs = sarafanMs + databaseMs;
    const result: CreditingResult = {
      deals,
      store: opts.store,
      wallSeconds: doneAt === null ? NaN : round((doneAt - started) / 1000, 2),
      quietSeconds: round((quietAt - started) / 1000, 2),
      allowedSeconds: round(Math.max(0, restRequests - LIMITS.burst) / LIMITS.drainPerSec + cpuMs / 1000, 2),
      processing: {
        cpuMs: Math.round(cpuMs),
        sarafanMs: Math.round(sarafanMs),
        databaseMs: Math.round(databaseMs),
        msPerDeal: round(cpuMs / deals, 2),
        threadsMs: Object.fromEntries(Object.entries(usageAfter.threads).map(([name, ms]) => [name, ms - (usageBefore.threads[name] ?? 0)])),
      },
      coldStart: { deals: WARM_UP_DEALS, sarafanMsPerDeal: round(coldMs / WARM_UP_DEALS, 2) },
      restRequests,
      requestsPerDeal: round((restRequests - feedbackRequests) / deals, 4),
      feedbackRequests,
      feedbackRequestsPerDeal: round(feedbackRequests / deals, 4),
      commands: sandbox.stats.commands - before.commands,
      requestsByMethod: byMethod,
      throttled: sandbox.stats.throttled - before.throttled,
      credited,
      shownInCrm: shown(),
      deliveries: { count: deliveryMs.length, ...percentiles(deliveryMs), failed: failedDeliveries - failedBefore, histogram: histogram(deliveryMs) },
      serverAck,
      setupSeconds,
      loadAverage: { atStart: loadAtStart, atEnd: loadavg().map((l) => round(l, 2)) },
      logFile,
    };
    return result;
  } finally {
    await sarafan?.stop().catch(() => undefined);
    await sandbox.close();
    if (database) await dropDatabase(database).catch(() => undefined);
    if (!process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
  }
}

const FEEDBACK_METHODS = new Set(['crm.timeline.comment.add', 'im.notify.system.add']);

/** A `batch:<inner methods>` key of the sandbox's counts made only of feedback commands. */
export function isFeedbackBatch(key: string): boolean {
  if (!key.startsWith('batch:')) return false;
  const inner = key.slice('batch:'.length).split('+');
  return inner.length > 0 && inner.every((m) => FEEDBACK_METHODS.has(m));
}

/** Sarafan's own acknowledgement histogram (every status), `le` in seconds → answers within it. */
async function eventAckHistogram(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^sarafan_event_ack_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+)/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

/** Answer times by band: the 1 s, 3 s and 7 s marks are where a dropped connection attempt is retried (TCP's SYN back-off). */
function histogram(xs: number[]): Record<string, number> {
  const bands: [string, number][] = [['<100ms', 100], ['<1s', 1000], ['<3s', 3000], ['<7s', 7000], ['<10s', 10_000], ['≥10s', Infinity]];
  const out: Record<string, number> = Object.fromEntries(bands.map(([k]) => [k, 0]));
  for (const x of xs) out[bands.find(([, limit]) => x < limit)![0]]!++;
  return out;
}

function percentiles(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? round(s[Math.min(s.length - 1, Math.floor(p * s.length))]!) : NaN);
  return { p50: q(0.5), p99: q(0.99), max: s.length ? round(s[s.length - 1]!) : NaN };
}

/**
 * Resolves (with the performance.now() of that moment) once the portal has nothing in flight and
 * Sarafan's queue has nothing due or running. A future-dated job (the `crm.project` guarantee a
 * run leaves behind) is waited for only while `satisfied` says the CRM still lacks something:
 * then it is the work that will bring it. Throws, naming what it waited for and the queue's
 * state, after `timeoutMs` (a safety net: a stopped run is reported, not waited on forever).
 */
export async function waitQuiet(sandbox: Sandbox, sarafan: SarafanProcess, timeoutMs: number, what: string, satisfied?: () => boolean, pollMs = 100): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const lastDelivery = () => sandbox.outbound.deliveries.at(-1)?.id ?? 0;
  for (;;) {
    await sandbox.outbound.idle();
    const seen = lastDelivery();
    const q = await sarafan.queue();
    await sandbox.outbound.idle();
    const quiet = q.due === 0 && q.running === 0 && lastDelivery() === seen;
    if (quiet && (q.future === 0 || !satisfied || satisfied())) return performance.now();
    if (performance.now() > deadline) {
      throw new Error(`${what} did not finish within ${Math.round(timeoutMs / 1000)} s: queue ${JSON.stringify(q)} (log: ${sarafan.logFile})`);
    }
    await sleep(pollMs);
  }
}
