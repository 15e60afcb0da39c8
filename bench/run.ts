/**
 * `npm run bench`: the SPEC 11 scenarios implemented so far, each checked against its budget.
 * Exits 1 when a budget is missed. Numbers are printed as JSON for closing notes.
 *
 * - Event ingest, twice on the embedded store: open loop at the budget rate (1 000 events/s for
 *   10 s — the p99 acknowledgement must stay ≤ 50 ms), and closed loop with 32 connections (the
 *   most it sustains must be ≥ 1 000 events/s).
 * - Crediting N won referred deals (BENCH_DEALS, default 1 000) against the sandbox portal with its
 *   limits on: ≤ 0.1 REST requests per deal, within 1.2 × the time the bucket allows.
 */
import { benchCrediting } from './crediting.js';
import { benchIngest } from './ingest.js';

const BUDGET = { ingestPerSecond: 1000, ingestP99Ms: 50, requestsPerDeal: 0.1, timeFactor: 1.2 };
const events = Number(process.env.BENCH_EVENTS ?? 10_000);
const deals = Number(process.env.BENCH_DEALS ?? 1_000);
const only = process.env.BENCH_ONLY; // 'ingest' | 'crediting'
let failed = false;

if (!only || only === 'ingest') {
  const atBudgetRate = await benchIngest({ events, rate: BUDGET.ingestPerSecond });
  const saturated = await benchIngest({ events, concurrency: 32 });
  const ok =
    atBudgetRate.ackP99 <= BUDGET.ingestP99Ms &&
    atBudgetRate.perSecond >= BUDGET.ingestPerSecond * 0.98 &&
    saturated.perSecond >= BUDGET.ingestPerSecond &&
    [atBudgetRate, saturated].every((r) => r.errors === 0 && r.queued >= r.events);
  console.log(JSON.stringify({ scenario: 'event ingest (embedded store)', budget: BUDGET, atBudgetRate, saturated, ok }, null, 2));
  failed ||= !ok;
}

if (!only || only === 'crediting') {
  const r = await benchCrediting(deals);
  const ok = r.credited === r.deals && r.requestsPerDeal <= BUDGET.requestsPerDeal && r.seconds <= BUDGET.timeFactor * r.allowedSeconds;
  console.log(JSON.stringify({ scenario: `crediting ${deals} won referred deals (sandbox, limits on)`, budget: BUDGET, result: r, ok }, null, 2));
  failed ||= !ok;
}

if (failed) process.exitCode = 1;
