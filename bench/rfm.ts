/**
 * Issue 12, "the nightly RFM job for 100 000 members stays within the portal's request budget
 * (changed segments only, 50 per batch)": the sandbox portal holds N contacts, Sarafan is
 * installed through the wizard, and the install's history holds their won deals (1–4 each, over
 * 500 days, put straight into the store: the backfill's cost is bench/backfill.ts's business).
 *
 * - Night 1: every client gets a segment: ceil(N / 50) `batch` requests of `crm.contact.update`.
 *   Run with the portal's limits off by default (2 000 requests at 2/s is a quarter of an hour;
 *   BENCH_RFM_FIRST_LIMITS=1 turns them on); the time the limit allows is reported beside it.
 * - Night 2, limits on (2/s, burst 50): ~5 % of the clients won a deal yesterday, which moves
 *   about 3 % of them to another segment: ceil(changed / 50) batch requests, nothing per client.
 *
 * Each night counts the job's own requests (segment writes). The portal's ONCRMCONTACTUPDATE events
 * for those writes (the loop reads the contacts back and writes nothing: SPEC 6, own writes never
 * loop) are the loop's cost: unbound by default, kept with BENCH_RFM_EVENTS=1 (then in
 * `totalRequests`).
 *
 * Then the R/F/M query alone on PostgreSQL (a fresh database on TEST_DATABASE_URL's server) with
 * the same volume plus Sarafan's own deals for a fifth of the clients: best and median of 5 runs.
 *
 * `npx tsx bench/rfm.ts` runs it alone (BENCH_RFM_CLIENTS, default 100 000).
 */
import { pathToFileURL } from 'node:url';
import { createScheduler } from '../server/jobs/scheduler.js';
import { DEMO_CLIENT_ID as SANDBOX_CLIENT_ID } from '../server/demo/sandbox-demo.js';
import { openStore, type SqlStore } from '../src/store/open-store.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../tests/support/postgres.js';
import { startLive, type Live } from '../tests/support/live.js';

export interface RfmNight {
  limits: boolean;
  /** Segments written (set or cleared) by the job. */
  written: number;
  /** The job's own requests: its segment-write batches (and nothing else: it reads the store only). */
  jobRequests: number;
  expectedBatches: number;
  /** Everything the portal admitted until the queue was quiet, by method (the events' read-back included). */
  totalRequests: number;
  requestsByMethod: Record<string, number>;
  throttled: number;
  /** The job's run (as it logs it), of which the R/F/M query (embedded store); from the tick to a quiet queue. */
  jobSeconds: number;
  factsSeconds: number;
  /** The job's writes alone: what the portal's limit governs. */
  writeSeconds: number;
  settledSeconds: number;
  /** What the portal's limit allows for the job's requests: (requests − burst) / 2 per second. */
  allowedSeconds: number;
}

export interface RfmResult {
  clients: number;
  historyDeals: number;
  nights: RfmNight[];
  distribution: Record<string, number>;
  postgres: { clients: number; deals: number; factsMs: { best: number; median: number }; saveComputedMs: number; pendingWritesMs: number } | { error: string };
}

const LIMITS = { drainPerSec: 2, burst: 50 };
const DAY_SQL = "interval '1 day'";

/** Won deals of client `ord` (1-based): 1 + ord % 4 of them, the last (ord × 7919) % 500 days ago, then every 15 days back. */
function historySql(portalId: number, ids: string, dealBase: number): string {
  return `
    INSERT INTO history_deals (portal_id, deal_id, contact_id, lead_id, category_id, amount, currency, won_at, created_at)
    SELECT ${portalId}, ${dealBase} + row_number() OVER (), c.id, NULL, 0, 100000 + (c.ord % 50) * 500000, 'RUB',
           now() - ((c.ord * 7919) % 500) * ${DAY_SQL} - k * 15 * ${DAY_SQL}, NULL
      FROM unnest('${ids}'::int[]) WITH ORDINALITY AS c(id, ord), generate_series(0, (c.ord % 4)::int) AS k`;
}

async function night(live: Live, store: SqlStore, portalId: number, limits: boolean): Promise<RfmNight> {
  live.sandbox.setLimits(limits ? LIMITS : false);
  const before = { ...live.sandbox.stats, byMethod: { ...live.sandbox.stats.byMethod } };
  const started = performance.now();
  const tickAt = new Date(Math.floor(Date.now() / 1000) * 1000);
  const ticked = await createScheduler(live.deps, {}).tick('segments.rfm', tickAt);
  if (!ticked.claimed || ticked.enqueued !== 1) throw new Error(`the tick enqueued ${ticked.enqueued}`);
  // The portal answers each write with ONCRMCONTACTUPDATE, whose jobs the same drain runs; the job's
  // own time is its run in the queue (claimed → done), its requests the update batches.
  await live.settle(60 * 60_000);
  const settledSeconds = (performance.now() - started) / 1000;
  const delta = (method: string) => (live.sandbox.stats.byMethod[method] ?? 0) - (before.byMethod[method] ?? 0);
  const jobRequests = delta('batch:crm.contact.update') + delta('batch:crm.lead.update');
  // The job logs its own durations (segments.computed).
  const line = [...live.logs].reverse().find((l) => l.includes('"segments.computed"'));
  const logged = line ? (JSON.parse(line) as { totalMs?: number; factsMs?: number; writeMs?: number; written?: number }) : {};
  const written = Number(logged.written ?? NaN);
  const jobSeconds = Number(logged.totalMs ?? NaN) / 1000;
  const factsSeconds = Number(logged.factsMs ?? NaN) / 1000;
  const writeSeconds = Number(logged.writeMs ?? NaN) / 1000;
  const [dead] = await store.rawQuery<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE portal_id = $1 AND kind = 'segments.rfm' AND status <> 'done'", [portalId]);
  if (Number(dead?.n)) throw new Error('the segments.rfm job did not finish');
  return {
    limits,
    written,
    jobRequests,
    expectedBatches: Math.ceil(written / 50),
    totalRequests: live.sandbox.stats.requests - before.requests,
    requestsByMethod: Object.fromEntries(
      Object.entries(live.sandbox.stats.byMethod)
        .map(([k, v]) => [k, v - (before.byMethod[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    ),
    throttled: live.sandbox.stats.throttled - before.throttled,
    jobSeconds: Math.round(jobSeconds * 10) / 10,
    factsSeconds: Math.round(factsSeconds * 100) / 100,
    writeSeconds: Math.round(writeSeconds * 10) / 10,
    settledSeconds: Math.round(settledSeconds * 10) / 10,
    allowedSeconds: Math.max(0, jobRequests - LIMITS.burst) / LIMITS.drainPerSec,
  };
}

export async function postgresFacts(clients: number): Promise<RfmResult['postgres']> {
  let name: string;
  try {
    name = await createDatabase();
  } catch (e) {
    return { error: `no PostgreSQL at ${serverUrl}: ${e instanceof Error ? e.message : String(e)}` };
  }
  const store = await openStore({ databaseUrl: withDatabase(serverUrl, name), secretKey: 'bench-secret-key-0123456789abcdef' });
  try {
    const [inst] = await store.rawQuery<{ id: number }>(
      "INSERT INTO installations (member_id, domain, client_endpoint, server_endpoint, status, created_at, updated_at) VALUES ('bench-rfm', 'rfm.example', 'https://rfm.example/rest/', 'https://oauth.example/rest/', 'active', now(), now()) RETURNING id",
    );
    const pid = inst!.id;
    const ids = `{${Array.from({ length: clients }, (_, i) => i + 1).join(',')}}`;
    await store.rawQuery(historySql(pid, ids, 0));
    // Sarafan's own deals for every fifth client (members first): the query's other half.
    await store.rawQuery(`INSERT INTO members (portal_id, contact_id, created_at) SELECT ${pid}, g, now() FROM generate_series(5, ${clients}, 5) AS g`);
    await store.rawQuery(
      `INSERT INTO deals (portal_id, deal_id, client_member_id, category_id, stage_id, stage_semantic, amount, currency, won, deleted, first_won_at, updated_at, seen_at)
       SELECT ${pid}, 10000000 + m.id, m.id, 0, 'WON', 'S', 250000, 'RUB', true, false, now() - (m.id % 60) * ${DAY_SQL}, now(), now() FROM members m WHERE m.portal_id = ${pid}`,
    );
    await store.rawQuery('ANALYZE');
    const [deals] = await store.rawQuery<{ n: number }>(`SELECT (SELECT count(*) FROM history_deals WHERE portal_id = ${pid}) + (SELECT count(*) FROM deals WHERE portal_id = ${pid}) AS n`);
    const times: number[] = [];
    let facts = await store.segments.clientFacts(pid, { currency: 'RUB', rates: [] });
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      facts = await store.segments.clientFacts(pid, { currency: 'RUB', rates: [{ currency: 'USD', rate: '90' }] });
      times.push(performance.now() - t);
    }
    if (facts.length !== clients) throw new Error(`PostgreSQL: ${facts.length} clients, expected ${clients}`);
    times.sort((a, b) => a - b);
    const rows = facts.map((f) => ({ client: f.client, segment: 'loyal' as const }));
    let t = performance.now();
    await store.segments.saveComputed(pid, rows, new Date());
    const saveComputedMs = performance.now() - t;
    t = performance.now();
    await store.segments.pendingWrites(pid);
    const pendingWritesMs = performance.now() - t;
    const round = (n: number) => Math.round(n * 10) / 10;
    return { clients, deals: Number(deals?.n), factsMs: { best: round(times[0]!), median: round(times[2]!) }, saveComputedMs: round(saveComputedMs), pendingWritesMs: round(pendingWritesMs) };
  } finally {
    await store.close();
    await dropDatabase(name);
  }
}

export async function benchRfm(clients: number): Promise<RfmResult> {
  const live = await startLive({ install: false, limits: false });
  const { portal } = live.sandbox;
  try {
    const setupStarted = performance.now();
    const ids: number[] = [];
    // Before the install: no handler is bound yet, so adding them sends no event.
    for (let i = 0; i < clients; i++) ids.push(portal.addEntity('contact', { NAME: `Клиент ${i + 1}` }, { userId: 2 }));
    const page = await live.sandbox.outbound.installHeadless(SANDBOX_CLIENT_ID);
    if (page.status !== 200) throw new Error(`the install wizard answered ${page.status}`);
    await live.settle(10 * 60_000);
    const installation = await live.installation();
    const store = live.deps.store as SqlStore;
    await store.rawQuery(historySql(installation.id, `{${ids.join(',')}}`, 0));
    const [counted] = await store.rawQuery<{ n: number }>('SELECT count(*)::int AS n FROM history_deals WHERE portal_id = $1', [installation.id]);
    console.error(`rfm: set-up of ${clients} clients, ${counted?.n} won deals took ${Math.round((performance.now() - setupStarted) / 1000)} s`);

    // The portal answers every write with ONCRMCONTACTUPDATE, and the loop reads those contacts back
    // (the loop's cost, not the job's: 2 500 contacts per request when they arrive together). Measured
    // with BENCH_RFM_EVENTS=1; by default the binding is removed so the nights measure the job alone.
    if (process.env.BENCH_RFM_EVENTS !== '1') portal.unbindEvents(SANDBOX_CLIENT_ID, { event: 'ONCRMCONTACTUPDATE' });
    const nights: RfmNight[] = [];
    nights.push(await night(live, store, installation.id, process.env.BENCH_RFM_FIRST_LIMITS === '1'));
    console.error(`rfm: night 1 ${JSON.stringify(nights[0])}`);
    // Every 20th client won a deal yesterday: the ones who were sleeping, at risk or lost move.
    await store.rawQuery(
      `INSERT INTO history_deals (portal_id, deal_id, contact_id, lead_id, category_id, amount, currency, won_at, created_at)
       SELECT $1, 50000000 + c.ord, c.id, NULL, 0, 100000, 'RUB', now() - ${DAY_SQL}, NULL
         FROM unnest('{${ids.join(',')}}'::int[]) WITH ORDINALITY AS c(id, ord) WHERE c.ord % 20 = 0`,
      [installation.id],
    );
    // A night later the SDK's own bucket (2/s, burst 50, reference §10.5) is full again; night 1
    // left it empty, so wait until it would be (burst / drain) rather than bill night 2 for it.
    await new Promise((resolve) => setTimeout(resolve, (LIMITS.burst / LIMITS.drainPerSec) * 1000));
    nights.push(await night(live, store, installation.id, true));
    console.error(`rfm: night 2 ${JSON.stringify(nights[1])}`);
    const distribution = Object.fromEntries((await store.segments.distribution(installation.id)).counts.map((c) => [c.segment, c.members]));
    return { clients, historyDeals: Number(counted?.n), nights, distribution, postgres: await postgresFacts(clients) };
  } finally {
    await live.close();
  }
}

/** Every night exactly its batches; night 2 (limits on) within 1.2 × what the limit allows. */
export function rfmOk(r: RfmResult): boolean {
  const [first, second] = r.nights;
  return (
    !!first && !!second &&
    first.written === r.clients &&
    first.jobRequests === first.expectedBatches &&
    second.jobRequests === second.expectedBatches &&
    // The writes within 1.2 × what the limit allows, plus two seconds of round trips (a night within the burst is allowed 0 s).
    second.writeSeconds <= 1.2 * second.allowedSeconds + 2 &&
    !('error' in r.postgres)
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const clients = Number(process.env.BENCH_RFM_CLIENTS ?? 100_000);
  const r = await benchRfm(clients);
  console.log(JSON.stringify({ scenario: `nightly RFM segments of ${clients} clients (sandbox)`, result: r, ok: rfmOk(r) }, null, 2));
  if (!rfmOk(r)) process.exitCode = 1;
}
