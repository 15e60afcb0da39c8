/**
 * `npm run bench`: every SPEC 11 / issue 8 scenario, each run to its end whatever happened to the
 * others (a scenario that throws is a failed row), then the JSON details and ONE table
 * (scenario | measured | budget | ok). Exits 1 when a budget is missed.
 *
 * Scenarios (BENCH_ONLY=ingest,crediting,postgres,large,baseline,backfill,rfm,card-tab,analytics picks some):
 * - ingest: event ingest on the embedded store, open loop at 1 000 events/s (p99 of the server's
 *   acknowledgement ≤ 50 ms) and closed loop with 32 connections (≥ 1 000 events/s); BENCH_EVENTS.
 * - crediting / postgres: BENCH_DEALS (default 1 000) won referred deals of one referrer, on the
 *   embedded store and on PostgreSQL (a fresh database on TEST_DATABASE_URL's server): ≤ 5 ms of
 *   processing per deal, ≤ 0.1 REST requests per deal, wall time ≤ 1.2 × what the portal's limit
 *   allows for the requests plus the processing, every credit shown in the CRM.
 * - large: the same at BENCH_LARGE_DEALS (default 10 000) on the embedded store, and the cost per
 *   deal against the 1 000-deal run (linear: at most 1.3 × — the runs are minutes apart on a
 *   shared machine). Only with BENCH_LARGE=1 or when named in BENCH_ONLY: its set-up of 10 000
 *   attributed clients takes several minutes.
 * - baseline: the do-it-yourself business process (bench/baseline.ts) for BENCH_DEALS deals, run
 *   for BENCH_BASELINE_DEALS (default 40) and extrapolated; Sarafan must be ≥ 30 × faster.
 * - backfill: the install's history read of BENCH_BACKFILL_DEALS (100 000) won deals, limits on.
 * - rfm: the nightly RFM job (bench/rfm.ts) for BENCH_RFM_CLIENTS (100 000) clients: requests per night
 *   (changed segments / 50), its time, and the R/F/M query's time on PostgreSQL.
 * - card-tab: the CRM card tab (bench/card-tab.ts). The JavaScript each placement's entry loads
 *   before its content (deal, person = contact and lead, main; Russian, with its messages and the
 *   kit's locale), gzip level 9, split into the kit, the SDK, Vue and our code through source maps
 *   (≤ 200 KB, never > 250; CSS reported apart); and, in headless Chromium against the sandbox
 *   portal, the time from the frame's navigation start to the tab's content on screen, with the
 *   cache disabled (cold) and enabled (warm), BENCH_CARD_TAB_OPENS (default 10) opens of each of
 *   the deal, contact and lead tabs: p90 ≤ 1 000 ms.
 * - analytics: GET /api/analytics's queries on PostgreSQL over 1 000 000 ledger entries and
 *   100 000 members (bench/analytics.ts): median and max of 5 runs each, and of the whole
 *   endpoint; every one ≤ 300 ms.
 *
 * Times are wall-clock and CPU times on whatever machine runs this: each result records the load
 * average, and the table ends with it.
 */
import { loadavg } from 'node:os';
import { BACKFILL_BUDGET, benchBackfill } from './backfill.js';
import { benchBaseline, type BaselineResult } from './baseline.js';
import { benchCardTabBundle, benchCardTabVisible, bundleMeasured, CARD_TAB_BUDGET } from './card-tab.js';
import { benchCrediting, type CreditingResult } from './crediting.js';
import { benchIngest } from './ingest.js';
import { ANALYTICS_BUDGET_MS, benchAnalytics } from './analytics.js';
import { benchRfm, rfmOk } from './rfm.js';

const BUDGET = {
  ingestPerSecond: 1000,
  ingestP99Ms: 50,
  processingMsPerDeal: 5,
  requestsPerDeal: 0.1,
  timeFactor: 1.2,
  linearFactor: 1.3,
  baselineRatio: 30,
};
const events = Number(process.env.BENCH_EVENTS ?? 10_000);
const deals = Number(process.env.BENCH_DEALS ?? 1_000);
const largeDeals = Number(process.env.BENCH_LARGE_DEALS ?? 10_000);
const baselineDeals = Number(process.env.BENCH_BASELINE_DEALS ?? 40);
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
const wanted = (name: string, byDefault = true) => (only ? only.has(name) : byDefault);

interface Row {
  scenario: string;
  measured: string;
  budget: string;
  /** null: not run (not a failure). */
  ok: boolean | null;
}

const rows: Row[] = [];
const details: Record<string, unknown> = {};
const loads: string[] = [];
const fmt = (n: number, places = 1) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: places, minimumFractionDigits: 0 }).replace(/,/g, ' ') : 'n/a');

async function scenario(name: string, budget: string, run: () => Promise<void>): Promise<void> {
  console.error(`\n▶ ${name} (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
  const started = performance.now();
  try {
    await run();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`✗ ${name}: ${e instanceof Error ? (e.stack ?? message) : message}`);
    rows.push({ scenario: name, measured: `failed: ${message.split('\n')[0]!.slice(0, 160)}`, budget, ok: false });
    details[name] = { error: message };
  }
  console.error(`  ${name}: ${fmt((performance.now() - started) / 1000)} s`);
  loads.push(`${name} ${loadavg()[0]!.toFixed(2)}`);
}

function creditingRows(label: string, r: CreditingResult): void {
  const allowed = BUDGET.timeFactor * r.allowedSeconds;
  rows.push(
    {
      scenario: `${label} · processing`,
      measured: `${fmt(r.processing.msPerDeal, 2)} ms/deal CPU (Sarafan ${fmt(r.processing.sarafanMs / r.deals, 2)}${r.store === 'postgres' ? ` + PostgreSQL ${fmt(r.processing.databaseMs / r.deals, 2)}` : ''}); fresh process's first ${r.coldStart.deals}: Sarafan ${fmt(r.coldStart.sarafanMsPerDeal, 2)}`,
      budget: `≤ ${BUDGET.processingMsPerDeal} ms/deal`,
      ok: r.processing.msPerDeal <= BUDGET.processingMsPerDeal,
    },
    {
      scenario: `${label} · REST requests`,
      measured: `${fmt(r.requestsPerDeal, 3)}/deal (${r.restRequests - r.feedbackRequests} of ${r.restRequests}, ${r.throttled} refused)`,
      budget: `≤ ${BUDGET.requestsPerDeal}/deal`,
      ok: r.requestsPerDeal <= BUDGET.requestsPerDeal,
    },
    {
      // Timeline comments on each deal and referrer and a notification per credit: 3 commands a deal,
      // 50 per batch. Counted apart from the loop's budget; they share the portal's bucket.
      scenario: `${label} · feedback requests`,
      measured: `${fmt(r.feedbackRequestsPerDeal, 3)}/deal (${r.feedbackRequests})`,
      budget: '3 messages/deal in batches of 50 (≤ 0.06/deal)',
      ok: r.feedbackRequestsPerDeal <= 0.061,
    },
    {
      scenario: `${label} · wall time`,
      measured: `${fmt(r.wallSeconds, 2)} s to the last credit shown (quiet at ${fmt(r.quietSeconds, 2)} s)`,
      budget: `≤ ${BUDGET.timeFactor} × ${fmt(r.allowedSeconds, 2)} s = ${fmt(allowed, 2)} s`,
      ok: r.wallSeconds <= allowed,
    },
    {
      scenario: `${label} · credited`,
      measured: `${r.shownInCrm}/${r.deals} shown in the CRM, ${r.credited} ledger credits; ${r.deliveries.count} deliveries, answered p99 ${fmt(r.deliveries.p99, 0)} ms (Sarafan: ${r.serverAck['0.05'] ?? 0} within 50 ms, ${r.serverAck['1'] ?? 0} within 1 s), ${r.deliveries.failed} given up`,
      budget: 'every deal',
      ok: r.shownInCrm === r.deals && r.credited === r.deals,
    },
  );
}

const credited = new Map<string, CreditingResult>();

if (wanted('ingest')) {
  await scenario('ingest · open loop', `p99 ack ≤ ${BUDGET.ingestP99Ms} ms at ${BUDGET.ingestPerSecond}/s`, async () => {
    const r = await benchIngest({ events, rate: BUDGET.ingestPerSecond });
    details['ingest · open loop'] = r;
    rows.push({
      scenario: `ingest · open loop ${BUDGET.ingestPerSecond}/s, embedded`,
      measured: `p99 ack ${fmt(r.ack.p99)} ms (server; sender saw ${fmt(r.sender.p99)} ms), ${fmt(r.perSecond, 0)}/s, ${r.errors} errors`,
      budget: `p99 ≤ ${BUDGET.ingestP99Ms} ms at ≥ ${BUDGET.ingestPerSecond * 0.98}/s`,
      ok: r.ack.p99 <= BUDGET.ingestP99Ms && r.perSecond >= BUDGET.ingestPerSecond * 0.98 && r.errors === 0 && r.queued >= r.events,
    });
  });
  await scenario('ingest · closed loop', `≥ ${BUDGET.ingestPerSecond} events/s`, async () => {
    const r = await benchIngest({ events, concurrency: 32 });
    details['ingest · closed loop'] = r;
    rows.push({
      scenario: 'ingest · closed loop, 32 connections, embedded',
      measured: `${fmt(r.perSecond, 0)} events/s, ${r.errors} errors`,
      budget: `≥ ${BUDGET.ingestPerSecond}/s`,
      ok: r.perSecond >= BUDGET.ingestPerSecond && r.errors === 0 && r.queued >= r.events,
    });
  });
}

for (const [key, store] of [['crediting', 'embedded'], ['postgres', 'postgres']] as const) {
  if (!wanted(key)) continue;
  const label = `crediting ${fmt(deals, 0)} · ${store}`;
  await scenario(label, 'see the rows', async () => {
    const r = await benchCrediting({ deals, store });
    details[label] = r;
    credited.set(store, r);
    creditingRows(label, r);
  });
}

if (wanted('large', process.env.BENCH_LARGE === '1')) {
  const label = `crediting ${fmt(largeDeals, 0)} · embedded`;
  await scenario(label, 'see the rows', async () => {
    const r = await benchCrediting({ deals: largeDeals, store: 'embedded' });
    details[label] = r;
    creditingRows(label, r);
    const small = credited.get('embedded');
    const ratio = small ? r.processing.msPerDeal / small.processing.msPerDeal : NaN;
    rows.push({
      scenario: `crediting ${fmt(largeDeals, 0)} vs ${fmt(deals, 0)} · cost per deal`,
      measured: small ? `${fmt(r.processing.msPerDeal, 2)} vs ${fmt(small.processing.msPerDeal, 2)} ms/deal (× ${fmt(ratio, 2)}); ${fmt(r.requestsPerDeal, 3)} vs ${fmt(small.requestsPerDeal, 3)} requests/deal` : `no ${fmt(deals, 0)}-deal run to compare with`,
      budget: `≤ ${BUDGET.linearFactor} ×`,
      ok: small ? ratio <= BUDGET.linearFactor && r.requestsPerDeal <= BUDGET.requestsPerDeal : false,
    });
  });
}

if (wanted('baseline')) {
  const label = `DIY business process · ${fmt(deals, 0)} deals`;
  await scenario(label, `Sarafan ≥ ${BUDGET.baselineRatio} × faster`, async () => {
    const b: BaselineResult = await benchBaseline({ deals, run: baselineDeals });
    const sarafan = credited.get('embedded');
    const ratio = sarafan ? b.wallSeconds / sarafan.wallSeconds : NaN;
    details[label] = { ...b, sarafanWallSeconds: sarafan?.wallSeconds ?? null, ratio };
    rows.push({
      scenario: label,
      measured:
        `${fmt(b.wallSeconds, 0)} s (${b.extrapolated ? `ran ${b.ranDeals} deals in ${fmt(b.ranSeconds)} s, the rest extrapolated at ${fmt(b.steadySecondsPerDeal, 2)} s/deal` : 'all run'})` +
        (sarafan ? ` vs Sarafan ${fmt(sarafan.wallSeconds, 2)} s: × ${fmt(ratio, 0)}` : ' (no embedded crediting run to compare with)'),
      budget: `≥ ${BUDGET.baselineRatio} ×`,
      ok: sarafan ? ratio >= BUDGET.baselineRatio : null,
    });
  });
}

// ---- backfill ------------------------------------------------------------------------------
// The install's history read (SPEC 11: 100 000 deals in ≤ 50 REST requests and ≤ 60 s).
if (wanted('backfill')) {
  const deals = Number(process.env.BENCH_BACKFILL_DEALS ?? 100_000);
  await scenario(`backfill · ${fmt(deals, 0)} deals`, `≤ ${BACKFILL_BUDGET.requests} requests, ≤ ${BACKFILL_BUDGET.seconds} s`, async () => {
    const r = await benchBackfill(deals);
    details[`backfill ${deals}`] = r;
    const ok = r.recorded === r.deals && r.restRequests <= BACKFILL_BUDGET.requests && r.seconds <= BACKFILL_BUDGET.seconds;
    rows.push({
      scenario: `backfill · ${fmt(deals, 0)} deals`,
      measured: `${r.restRequests} requests, ${fmt(r.seconds)} s, ${fmt(r.recorded, 0)} recorded`,
      budget: `≤ ${BACKFILL_BUDGET.requests} requests, ≤ ${BACKFILL_BUDGET.seconds} s`,
      ok,
    });
  });
}

// ---- RFM segments --------------------------------------------------------------------------
// Issue 12: the nightly RFM job for 100 000 clients writes changed segments only, 50 per batch.
if (wanted('rfm')) {
  const clients = Number(process.env.BENCH_RFM_CLIENTS ?? 100_000);
  const label = `rfm · ${fmt(clients, 0)} clients`;
  await scenario(label, 'ceil(changed / 50) requests a night', async () => {
    const r = await benchRfm(clients);
    details[label] = r;
    r.nights.forEach((n, i) => {
      rows.push({
        scenario: `${label} · night ${i + 1}${n.limits ? '' : ' (limits off)'}`,
        measured: `${fmt(n.written, 0)} written in ${n.jobRequests} requests; job ${fmt(n.jobSeconds)} s, of which R/F/M ${fmt(n.factsSeconds)} s and writes ${fmt(n.writeSeconds)} s (the limit allows ${fmt(n.allowedSeconds)} s); ${n.totalRequests} requests in all`,
        budget: `${n.expectedBatches} requests (ceil(${n.written} / 50))`,
        ok: n.jobRequests === n.expectedBatches,
      });
    });
    const pg = r.postgres;
    rows.push({
      scenario: `${label} · R/F/M query, PostgreSQL`,
      measured: 'error' in pg ? pg.error : `${fmt(pg.factsMs.median, 0)} ms median (best ${fmt(pg.factsMs.best, 0)}) over ${fmt(pg.deals, 0)} deals`,
      budget: 'one query per portal',
      ok: !('error' in pg) && rfmOk(r),
    });
  });
}

// ---- card tab ------------------------------------------------------------------------------
// SPEC 11: ≤ 200 KB gzip of JavaScript before content (never above 250), content visible ≤ 1 s
// after the frame opens.
if (wanted('card-tab')) {
  const jsBudget = `≤ ${CARD_TAB_BUDGET.jsKb} KB (never > ${CARD_TAB_BUDGET.jsNeverKb})`;
  await scenario('card tab JS before content', jsBudget, async () => {
    const r = await benchCardTabBundle();
    details['card tab JS before content'] = r;
    for (const e of r.entries) {
      // Russian is reported (it also loads the kit's locale); the budget holds for either language.
      const largest = Math.max(e.ru.gzipBytes, e.en.gzipBytes) / 1000;
      if (e.entry === 'main') {
        // SPEC 11's budget is the CRM card tabs'. The admin page (placement DEFAULT, issue 12:
        // the settings form validates with the server's zod schema, the kit's form controls) is
        // reported for the record, not judged against it.
        rows.push({ scenario: 'admin page JS before content (not a card tab)', measured: bundleMeasured(e), budget: 'reported', ok: true });
        continue;
      }
      rows.push({ scenario: `card tab JS before content · ${e.entry}`, measured: bundleMeasured(e), budget: jsBudget, ok: largest <= CARD_TAB_BUDGET.jsKb });
    }
  });
  const visibleBudget = `p90 ≤ ${fmt(CARD_TAB_BUDGET.visibleMs, 0)} ms`;
  await scenario('card tab content visible', visibleBudget, async () => {
    const r = await benchCardTabVisible();
    details['card tab content visible'] = r;
    for (const [tab, { cold, warm }] of Object.entries(r.tabs)) {
      for (const [label, t] of [['', warm], [', cold cache', cold]] as const) {
        rows.push({
          scenario: `card tab content visible · ${tab}${label}`,
          measured: `median ${fmt(t.frame.median, 0)} ms, p90 ${fmt(t.frame.p90, 0)} ms of ${t.frame.n} (from the click: ${fmt(t.click.median, 0)} / ${fmt(t.click.p90, 0)} ms)`,
          budget: visibleBudget,
          ok: t.frame.p90 <= CARD_TAB_BUDGET.visibleMs,
        });
      }
    }
  });
}

// ---- analytics -----------------------------------------------------------------------------
// SPEC 11: every dashboard query ≤ 300 ms on 1 000 000 ledger entries / 100 000 members (PostgreSQL).
if (wanted('analytics')) {
  const budget = `≤ ${ANALYTICS_BUDGET_MS} ms (median and max of 5)`;
  await scenario('analytics · postgres', budget, async () => {
    const r = await benchAnalytics();
    details['analytics · postgres'] = r;
    for (const t of [...r.timings, r.endpoint]) {
      rows.push({
        scenario: `analytics · ${t.query}`,
        measured: `median ${fmt(t.medianMs, 1)} ms, max ${fmt(t.maxMs, 1)} ms`,
        budget,
        ok: t.maxMs <= ANALYTICS_BUDGET_MS,
      });
    }
  });
}

console.log(JSON.stringify({ budget: BUDGET, results: details }, null, 2));
printTable(rows);
console.log(`load average (1 min) after each scenario: ${loads.join('; ')} — on ${(await import('node:os')).cpus().length} CPUs`);
if (rows.some((r) => r.ok === false)) process.exitCode = 1;

function printTable(all: Row[]): void {
  const head: Row = { scenario: 'scenario', measured: 'measured', budget: 'budget', ok: null };
  const okText = (r: Row) => (r === head ? 'ok' : r.ok === null ? '–' : r.ok ? 'ok' : 'FAIL');
  const w = {
    scenario: Math.max(...[head, ...all].map((r) => r.scenario.length)),
    measured: Math.max(...[head, ...all].map((r) => r.measured.length)),
    budget: Math.max(...[head, ...all].map((r) => r.budget.length)),
  };
  const line = (r: Row) => `| ${r.scenario.padEnd(w.scenario)} | ${r.measured.padEnd(w.measured)} | ${r.budget.padEnd(w.budget)} | ${okText(r).padEnd(4)} |`;
  const rule = `|${'-'.repeat(w.scenario + 2)}|${'-'.repeat(w.measured + 2)}|${'-'.repeat(w.budget + 2)}|------|`;
  console.log(['', line(head), rule, ...all.map(line)].join('\n'));
}
