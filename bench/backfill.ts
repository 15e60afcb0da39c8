/**
 * SPEC 11, "backfill 100 000 deals: ≤ 50 REST requests, ≤ 60 s": the sandbox portal holds N won
 * deals (two pipelines, 20 000 clients) from before Sarafan was installed, put straight into its
 * state (no REST); Sarafan is installed through the wizard with the portal's limits on, and the
 * queue runs the install's backfill. Measured from the end of the wizard (registration done) until
 * the queue is empty: REST requests the portal admitted and the seconds taken. Checked: every
 * won deal is in Sarafan's history.
 *
 * `npx tsx bench/backfill.ts` runs it alone (BENCH_BACKFILL_DEALS, default 100 000).
 */
import { pathToFileURL } from 'node:url';
import type { SqlStore } from '../src/store/open-store.js';
import { DEMO_CLIENT_ID as SANDBOX_CLIENT_ID } from '../server/demo/sandbox-demo.js';
import { startLive } from '../tests/support/live.js';

export interface BackfillResult {
  deals: number;
  recorded: number;
  restRequests: number;
  requestsByMethod: Record<string, number>;
  throttled: number;
  seconds: number;
}

export const BACKFILL_BUDGET = { requests: 50, seconds: 60 };
const LIMITS = { drainPerSec: 2, burst: 50 };
const CLIENTS = 20_000;

export async function benchBackfill(deals: number): Promise<BackfillResult> {
  const live = await startLive({ install: false, limits: false });
  const { portal } = live.sandbox;
  const manager = { userId: 2 };
  try {
    const setupStarted = performance.now();
    const clients: number[] = [];
    for (let i = 0; i < Math.min(CLIENTS, deals); i++) clients.push(portal.addEntity('contact', { NAME: `Клиент ${i + 1}` }, manager));
    for (let i = 0; i < deals; i++) {
      const pipeline = i % 4 === 3 ? { CATEGORY_ID: 1, STAGE_ID: 'C1:WON' } : { STAGE_ID: 'WON' };
      portal.addEntity('deal', { CONTACT_ID: clients[i % clients.length], OPPORTUNITY: 1_000 + (i % 997), ...pipeline }, manager);
    }
    console.error(`backfill: set-up of ${deals} won deals took ${Math.round((performance.now() - setupStarted) / 1000)} s`);

    live.sandbox.setLimits(LIMITS);
    const page = await live.sandbox.outbound.installHeadless(SANDBOX_CLIENT_ID);
    if (page.status !== 200) throw new Error(`the install wizard answered ${page.status}`);
    const before = { ...live.sandbox.stats, byMethod: { ...live.sandbox.stats.byMethod } };
    const started = performance.now();
    await live.settle(30 * 60_000);
    const seconds = (performance.now() - started) / 1000;

    const installation = await live.installation();
    const [row] = await (live.deps.store as SqlStore).rawQuery<{ n: string }>('SELECT count(*) AS n FROM history_deals WHERE portal_id = $1', [installation.id]);
    return {
      deals,
      recorded: Number(row?.n ?? 0),
      restRequests: live.sandbox.stats.requests - before.requests,
      requestsByMethod: Object.fromEntries(
        Object.entries(live.sandbox.stats.byMethod)
          .map(([k, v]) => [k, v - (before.byMethod[k] ?? 0)] as const)
          .filter(([, v]) => v > 0),
      ),
      throttled: live.sandbox.stats.throttled - before.throttled,
      seconds: Math.round(seconds * 10) / 10,
    };
  } finally {
    await live.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const deals = Number(process.env.BENCH_BACKFILL_DEALS ?? 100_000);
  const r = await benchBackfill(deals);
  const ok = r.recorded === r.deals && r.restRequests <= BACKFILL_BUDGET.requests && r.seconds <= BACKFILL_BUDGET.seconds;
  console.log(JSON.stringify({ scenario: `backfill of ${deals} won deals (sandbox, limits on)`, budget: BACKFILL_BUDGET, result: r, ok }, null, 2));
  if (!ok) process.exitCode = 1;
}
