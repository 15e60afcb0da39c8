/**
 * `npm run bench`: the SPEC 11 scenarios implemented so far, each checked against its budget.
 * Exits 1 when a budget is missed. Numbers are printed as JSON for closing notes.
 *
 * Event ingest is measured twice on the embedded store: open loop at the budget rate
 * (1 000 events/s for 10 s — the p99 acknowledgement must stay ≤ 50 ms), and closed loop with
 * 32 connections (the most it sustains must be ≥ 1 000 events/s).
 */
import { benchIngest } from './ingest.js';

const BUDGET = { ingestPerSecond: 1000, ingestP99Ms: 50 };
const events = Number(process.env.BENCH_EVENTS ?? 10_000);

const atBudgetRate = await benchIngest({ events, rate: BUDGET.ingestPerSecond });
const saturated = await benchIngest({ events, concurrency: 32 });
const ok =
  atBudgetRate.ackP99 <= BUDGET.ingestP99Ms &&
  atBudgetRate.perSecond >= BUDGET.ingestPerSecond * 0.98 &&
  saturated.perSecond >= BUDGET.ingestPerSecond &&
  [atBudgetRate, saturated].every((r) => r.errors === 0 && r.queued >= r.events);
console.log(JSON.stringify({ scenario: 'event ingest (embedded store)', budget: BUDGET, atBudgetRate, saturated, ok }, null, 2));
if (!ok) process.exitCode = 1;
