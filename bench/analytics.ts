/**
 * The analytics bench (SPEC 11, issue 12): on PostgreSQL with 1 000 000 ledger entries and
 * 100 000 members, every dashboard query answers in ≤ 300 ms, and so does the whole endpoint's SQL.
 *
 * A fresh database on TEST_DATABASE_URL's server is migrated and filled by generate_series SQL
 * (one portal; volumes below, shaped like two years of a busy program: 100 000 members, 150 000
 * deals of which 40 000 referred, 1 000 000 ledger entries over 2 years with holds, spends and a
 * 365-day expiry, 200 000 link clicks, 5 000 deals of the install's history), ANALYZEd, then each
 * query of src/store/analytics-repo.ts is timed 5 times for the default period (the last 12
 * months), and the whole handler (read-analytics.ts) 5 times.
 *
 * Generating takes minutes, so the filled database is kept under a fixed name
 * (`sarafan_bench_analytics`) with a version marker row; a later run whose marker matches
 * GENERATION reuses it (opening it applies any newer migration, so a migration's backfill is
 * measured on the full volume). Bump GENERATION when the data below changes;
 * BENCH_ANALYTICS_FRESH=1 regenerates, BENCH_ANALYTICS_DROP=1 drops the database afterwards.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { readAnalytics } from '../src/handlers/read-analytics.js';
import type { AnalyticsQuery } from '../src/handlers/ports.js';
import { defaultPeriod, ratesInto, tierThresholds } from '../src/rules/analytics.js';
import { DAY_MS, decideExpiry } from '../src/rules/expiry.js';
import { refreshExpiryOutlook } from '../src/handlers/refresh-expiry-outlook.js';
import { DEFAULT_PROGRAM } from '../src/rules/program.js';
import { openStore } from '../src/store/open-store.js';
import { admin, dropDatabase, serverUrl, withDatabase } from '../tests/support/postgres.js';

export const ANALYTICS_BUDGET_MS = 300;

export const ANALYTICS_VOLUME = {
  members: 100_000,
  deals: 150_000,
  referredDeals: 40_000,
  ledgerEntries: 1_000_000,
  clicks: 200_000,
  historyDeals: 5_000,
};

export interface AnalyticsTiming {
  query: string;
  medianMs: number;
  maxMs: number;
  runs: number[];
}

export interface AnalyticsBenchResult {
  volume: typeof ANALYTICS_VOLUME;
  generateSeconds: number;
  /** Opening the database, i.e. applying the migrations it lacks (a new migration's backfill). */
  migrateSeconds: number;
  /** The expiry job's outlook refresh of every stale member (on the first run after 0014: all of them). */
  outlookSeconds: number;
  timings: AnalyticsTiming[];
  /** The whole endpoint's handler (its queries run together on the pool). */
  endpoint: AnalyticsTiming;
  answer: { funnel: unknown; referredRevenue: number; rewardCost: number; liability: unknown };
}

const NOW = new Date('2026-12-01T12:00:00.000Z');
const DATABASE = 'sarafan_bench_analytics';
const GENERATION = 1;

/** The kept database's portal id when it holds this GENERATION's data, else null (created empty if missing). */
async function keptDatabase(): Promise<number | null> {
  const fresh = process.env.BENCH_ANALYTICS_FRESH === '1';
  if (fresh) await dropDatabase(DATABASE);
  const exists = await admin(async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])).rowCount === 1);
  if (!exists) {
    await admin((c) => c.query(`CREATE DATABASE ${DATABASE}`));
    return null;
  }
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, DATABASE) });
  await client.connect();
  try {
    const marker = await client.query<{ portal_id: number }>(
      `SELECT portal_id FROM bench_analytics_marker WHERE generation = $1`,
      [GENERATION],
    ).catch(() => ({ rows: [] as { portal_id: number }[] }));
    if (marker.rows[0]) return marker.rows[0].portal_id;
  } finally {
    await client.end();
  }
  // Stale or half-generated: start again.
  await dropDatabase(DATABASE);
  await admin((c) => c.query(`CREATE DATABASE ${DATABASE}`));
  return null;
}
const RUNS = 5;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function time(query: string, fn: () => Promise<unknown>): Promise<AnalyticsTiming> {
  await fn(); // a warm-up run: plans cached, pages in the buffer cache as on a running server
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await fn();
    runs.push(performance.now() - started);
  }
  return { query, medianMs: median(runs), maxMs: Math.max(...runs), runs };
}

export async function benchAnalytics(): Promise<AnalyticsBenchResult> {
  const kept = await keptDatabase();
  const opening = performance.now();
  const store = await openStore({ databaseUrl: withDatabase(serverUrl, DATABASE), secretKey: 'bench-analytics-secret-0123456789' });
  const migrateSeconds = (performance.now() - opening) / 1000;
  try {
    const pid = kept ?? (await generate(store));
    const program = { tiers: BENCH_TIERS };
    console.error(`  analytics: ${kept === null ? 'generated' : 'reused'} ${DATABASE}; opening it (migrations) took ${migrateSeconds.toFixed(1)} s`);
    return await measure(store, pid, program, migrateSeconds);
  } finally {
    await store.close();
    if (process.env.BENCH_ANALYTICS_DROP === '1') await dropDatabase(DATABASE).catch(() => undefined);
  }
}

const BENCH_TIERS = {
  basis: 'won_amount' as const,
  levels: [
    { name: 'Silver', from: 50_000, cashbackPercent: 1 },
    { name: 'Gold', from: 200_000, cashbackPercent: 2 },
    { name: 'Platinum', from: 500_000, cashbackPercent: 3 },
  ],
};

type Store = Awaited<ReturnType<typeof openStore>>;

async function generate(store: Store): Promise<number> {
  {
    const portal = await store.installations.upsertVerified(
      {
        memberId: 'bench-analytics',
        domain: 'bench.bitrix24.ru',
        clientEndpoint: 'https://bench.bitrix24.ru/rest/',
        serverEndpoint: 'https://oauth.bitrix.info/rest/',
        scope: 'crm',
        userId: 1,
        tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: NOW },
      },
      NOW,
    );
    const pid = portal.id;
    const program = { ...DEFAULT_PROGRAM, tiers: BENCH_TIERS, expiry: { days: 365 } };
    await store.programs.create(pid, program, null, new Date(NOW.getTime() - 800 * DAY_MS));
    await store.portalSettings.save(pid, {
      utcOffsetMinutes: 180,
      currencies: [
        { currency: 'RUB', amount: '1', amountCnt: 1, base: true },
        { currency: 'USD', amount: '92.5', amountCnt: 1, base: false },
      ],
      readAt: NOW,
    });

    const started = performance.now();
    const v = ANALYTICS_VOLUME;
    const sql = (text: string) => store.rawQuery(text, [pid, NOW.toISOString()]);
    // Two years back from now, as a random instant: $2 is now.
    const within = (days: number) => `($2::timestamptz - random() * interval '${days} days')`;
    console.error('  analytics: generating members, referrals, deals …');
    await sql(`INSERT INTO members (portal_id, contact_id, lead_id, code, joined_at, created_at)
      SELECT $1, CASE WHEN g % 10 = 0 THEN NULL ELSE g END, CASE WHEN g % 10 = 0 THEN g ELSE NULL END,
             'C' || g, ${within(730)}, ${within(730)}
      FROM generate_series(1, ${v.members}) g`);
    // Members 50 001 … 90 000 were referred by one of the first 5 000.
    await sql(`INSERT INTO referrals (portal_id, referee_member_id, referrer_member_id, code, source, source_ref, status, created_at)
      SELECT $1, m.id, r.id, r.code, 'deal', 'deal:' || g, 'active', ${within(730)}
      FROM generate_series(1, ${v.referredDeals}) g
      JOIN members m ON m.portal_id = $1 AND m.code = 'C' || (50000 + g)
      JOIN members r ON r.portal_id = $1 AND r.code = 'C' || (1 + g % 5000)`);
    // Deals 1 … 40 000 are the referees' (referred); the rest spread over every member. 70 % won,
    // 2 % deleted, 5 % in USD with a rate fixed on first win, three pipelines.
    await sql(`INSERT INTO deals (portal_id, deal_id, client_member_id, category_id, stage_id, stage_semantic, amount, currency,
                                  won, deleted, first_won_at, program_version, referral_id, updated_at, fx_currency, fx_rate, seen_at)
      SELECT $1, g, m.id, g % 3, CASE WHEN won THEN 'WON' ELSE 'NEW' END, CASE WHEN won THEN 'S' ELSE 'P' END,
             (1000 + (g * 7919) % 200000) * 100, CASE WHEN g % 20 = 0 THEN 'USD' ELSE 'RUB' END,
             won, g % 50 = 0, CASE WHEN won THEN seen + interval '3 days' END, 1, rf.id, seen + interval '3 days',
             CASE WHEN g % 20 = 0 AND won THEN 'USD' END, CASE WHEN g % 20 = 0 AND won THEN '91.2500000000' END, seen
      FROM (SELECT g, g % 10 < 7 AS won, ${within(730)} AS seen FROM generate_series(1, ${v.deals}) g) s
      JOIN members m ON m.portal_id = $1 AND m.code = 'C' || CASE WHEN g <= ${v.referredDeals} THEN 50000 + g ELSE 1 + g % ${v.members} END
      LEFT JOIN referrals rf ON rf.portal_id = $1 AND rf.referee_member_id = m.id AND rf.status = 'active' AND g <= ${v.referredDeals}`);
    console.error('  analytics: generating 1 000 000 ledger entries …');
    // Reasons: referral 30 %, cashback 35 %, welcome 10 %, coupon 2 %, promo 5 %, redemption 15 %
    // and reversals 3 %; 5 % held 14 days; credits expire 365 days after they became available.
    await sql(`INSERT INTO ledger_entries (portal_id, member_id, amount, reason, kind, deal_id, level, program_version,
                                           idempotency_key, available_at, expires_at, caused_by, created_at)
      SELECT $1, 1 + (g * 31) % ${v.members}, CASE WHEN r IN ('redemption') OR rev THEN -amount ELSE amount END, r,
             CASE WHEN rev THEN 'reversal' WHEN r = 'redemption' THEN 'correction' ELSE 'credit' END,
             CASE WHEN r IN ('promo', 'coupon') THEN NULL ELSE 1 + g % ${v.deals} END, CASE WHEN r IN ('referral', 'coupon') THEN 1 ELSE 0 END, 1,
             'b' || g, avail, CASE WHEN r = 'redemption' OR rev THEN NULL ELSE avail + interval '365 days' END, 'bench', created
      FROM (
        SELECT g, created, created + CASE WHEN g % 20 = 0 THEN interval '14 days' ELSE interval '0' END AS avail,
               (100 + (g::bigint * 104729) % 9900) * 100 AS amount,
               CASE WHEN p < 30 THEN 'referral' WHEN p < 65 THEN 'cashback' WHEN p < 75 THEN 'welcome' WHEN p < 77 THEN 'coupon'
                    WHEN p < 82 THEN 'promo' ELSE 'redemption' END AS r,
               p >= 97 AS rev
        FROM (SELECT g, (g * 7) % 100 AS p, ${within(730)} AS created FROM generate_series(1, ${v.ledgerEntries}) g) x
      ) y`);
    console.error('  analytics: generating clicks and history …');
    await sql(`INSERT INTO referral_clicks (portal_id, member_id, code, clicked_at, visitor_hash, agent_class)
      SELECT $1, 1 + g % 5000, 'C' || (1 + g % 5000), ${within(730)}, md5(g::text), 'desktop'
      FROM generate_series(1, ${v.clicks}) g`);
    // Half the history is of people who are members now (and 1 000 deals Sarafan also saw).
    await sql(`INSERT INTO history_deals (portal_id, deal_id, contact_id, lead_id, category_id, amount, currency, won_at)
      SELECT $1, CASE WHEN g <= 1000 THEN 40000 + g ELSE 1000000 + g END, CASE WHEN g % 2 = 0 THEN g * 11 ELSE 200000 + g END, NULL,
             g % 3, (500 + g % 50000) * 100, 'RUB', $2::timestamptz - interval '800 days' + random() * interval '700 days'
      FROM generate_series(1, ${v.historyDeals}) g`);
    // A running server's tables are autovacuumed: the visibility map lets index-only scans skip the heap.
    await store.rawQuery('VACUUM ANALYZE');
    const generateSeconds = (performance.now() - started) / 1000;
    const [counts] = await store.rawQuery<{ members: string; deals: string; ledger: string }>(
      'SELECT (SELECT count(*) FROM members) AS members, (SELECT count(*) FROM deals) AS deals, (SELECT count(*) FROM ledger_entries) AS ledger',
    );
    console.error(`  analytics: generated in ${generateSeconds.toFixed(1)} s (${JSON.stringify(counts)})`);
    await store.rawQuery('CREATE TABLE bench_analytics_marker (generation integer NOT NULL, portal_id integer NOT NULL, generate_seconds real NOT NULL)');
    await store.rawQuery('INSERT INTO bench_analytics_marker VALUES ($1, $2, $3)', [GENERATION, pid, generateSeconds]);
    return pid;
  }
}

async function measure(store: Store, pid: number, program: { tiers: typeof BENCH_TIERS }, migrateSeconds: number): Promise<AnalyticsBenchResult> {
  {
    const [marker] = await store.rawQuery<{ generate_seconds: number }>('SELECT generate_seconds FROM bench_analytics_marker');
    const generateSeconds = Number(marker!.generate_seconds);
    const v = ANALYTICS_VOLUME;

    // What the hourly bonus.expire job keeps current on a running server: the members' expiry outlook.
    const refreshing = performance.now();
    const refreshed = await refreshExpiryOutlook({ store, clock: { now: () => NOW } }, pid);
    const outlookSeconds = (performance.now() - refreshing) / 1000;
    console.error(`  analytics: expiry outlook of ${refreshed} members refreshed in ${outlookSeconds.toFixed(1)} s`);
    // As autovacuum would after that many changed rows (the refresh, a migration's backfill): the
    // planner's statistics and the visibility map.
    await store.rawQuery('VACUUM ANALYZE');

    const period = defaultPeriod(NOW);
    const q: AnalyticsQuery = { ...period, category: null, currency: 'RUB', rates: ratesInto('RUB', (await store.portalSettings.get(pid))!.currencies) };
    const a = store.analytics;
    const timings = [
      await time('clicks by month', () => a.clicksByMonth(pid, q.from, q.to)),
      await time('referred leads', () => a.referredLeads(pid, q.from, q.to)),
      await time('referred deals by month', () => a.referredDealsByMonth(pid, q)),
      await time('won referred deals + revenue by month', () => a.wonReferredByMonth(pid, q)),
      await time('reward cost by month and reason', () => a.rewardCostByMonth(pid, q)),
      await time('reward cost, one pipeline', () => a.rewardCostByMonth(pid, { ...q, category: 1 })),
      await time('top referrers', () => a.topReferrers(pid, q, 10)),
      await time('LTV referred vs others', () => a.clientValue(pid, q)),
      await time('LTV, one pipeline', () => a.clientValue(pid, { ...q, category: 1 })),
      // A period that ended a year ago: members who won since are read from their deals.
      await time('LTV, period ending a year ago', () => a.clientValue(pid, { ...q, from: new Date(q.from.getTime() - 365 * DAY_MS), to: new Date(q.to.getTime() - 365 * DAY_MS) })),
      await time('liability', () => a.liability(pid, NOW)),
      await time('expiring in 30 days (stored outlook + replay of the rest)', async () => {
        const [c, stored] = await Promise.all([a.expiryCandidates(pid, NOW, 30 * DAY_MS), a.expiringFromOutlook(pid, NOW, 30 * DAY_MS)]);
        let total = stored;
        for (const entries of c.values()) for (const u of decideExpiry(entries, NOW, 30 * DAY_MS).upcoming) total += u.amount;
        return total;
      }),
      await time('tiers', () => a.tierBuckets(pid, { basis: 'won_amount', thresholds: tierThresholds('won_amount', program.tiers.levels), currency: 'RUB', rates: q.rates })),
    ];
    const deps = { store, clock: { now: () => NOW } };
    const endpoint = await time('whole endpoint (read-analytics)', () => readAnalytics(deps, pid, { ...period, category: null }));
    timings.push(await time('whole endpoint, one pipeline', () => readAnalytics(deps, pid, { ...period, category: 1 })));
    const yearAgo = { from: new Date(period.from.getTime() - 365 * DAY_MS), to: new Date(period.to.getTime() - 365 * DAY_MS) };
    timings.push(await time('whole endpoint, period ending a year ago', () => readAnalytics(deps, pid, { ...yearAgo, category: null })));
    const answer = await readAnalytics(deps, pid, { ...period, category: null });
    return {
      volume: v,
      generateSeconds,
      migrateSeconds,
      outlookSeconds,
      timings,
      endpoint,
      answer: { funnel: answer.funnel, referredRevenue: answer.referredRevenue, rewardCost: answer.rewardCost, liability: answer.liability },
    };
  }
}
