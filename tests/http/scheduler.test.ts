/**
 * Scheduled ticks (SPEC 6), on the embedded store and on PostgreSQL: however many instances
 * tick at the same scheduled instant, one claims the tick and enqueues one deduplicated job per
 * portal; the tick itself does none of the work (no REST call, nothing deleted) — the worker
 * does. The tick time is a parameter: nothing here waits for a timer, except the one check that
 * node-cron's timers reach the tick at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeDeps } from '../../server/compose.js';
import { createScheduler } from '../../server/jobs/scheduler.js';
import { createWorker } from '../../server/jobs/worker.js';
import type { CrmPorts, CrmScanner, Deps, PortalGateways } from '../../src/handlers/ports.js';
import { openStore, type SqlStore } from '../../src/store/open-store.js';
import { captureLogs } from '../support/capture-logs.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';

const SECRET = 'scheduler-test-secret-0123456789abcdef';
const T0 = new Date('2026-03-01T12:00:00.000Z');
const DAY = 24 * 3600_000;
const skipPostgres = process.env.SARAFAN_SKIP_POSTGRES === '1';
const stores: SqlStore[] = [];
let database: string | null = null;

interface Instance {
  store: SqlStore;
  deps: Deps;
  /** REST calls any use case made through this instance's gateways. */
  restCalls: string[];
}

function instance(store: SqlStore, clock: { now: () => Date }): Instance {
  const restCalls: string[] = [];
  const base = composeDeps({
    store,
    log: captureLogs().log,
    appBaseUrl: 'https://sarafan.example.com',
    clientId: 'app.scheduler.test',
    clientSecret: 'scheduler-test-client-secret',
    oauthUrl: 'https://oauth.bitrix.info',
    allowInsecurePortals: false,
    clock,
  });
  const refuse = (what: string) => {
    restCalls.push(what);
    throw new Error(`unexpected REST use: ${what}`);
  };
  const gateways: PortalGateways = {
    forget: () => undefined,
    whoIs: async () => refuse('profile'),
  };
  const crm: CrmPorts = {
    forInstallation: () => ({
      read: async () => refuse('read'),
      writeProjections: async () => refuse('writeProjections'),
      sendFeedback: async () => refuse('sendFeedback'),
      answerRobot: async () => refuse('answerRobot'),
      contactDetails: async () => refuse('contactDetails'),
    }),
  };
  const crmScanner: CrmScanner = { changedSince: async () => refuse('changedSince') };
  return { store, deps: { ...base, gateways, crm, crmScanner }, restCalls };
}

function suite(name: string, open: () => Promise<[SqlStore, SqlStore]>, close: () => Promise<void>): void {
  describe(`scheduled ticks: ${name}`, () => {
    let now = T0;
    const clock = { now: () => now };
    let a: Instance;
    let b: Instance;
    let active: number[];
    let fresh: number;

    beforeAll(async () => {
      const [first, second] = await open();
      a = instance(first, clock);
      b = instance(second, clock);
      active = [];
      for (let i = 0; i < 3; i++) {
        const portal = await newPortal(first);
        await first.installations.activate(portal, T0);
        active.push(portal);
      }
      fresh = await newPortal(first); // install not finished: no portal work for it
    });

    afterAll(close);

    async function newPortal(store: SqlStore): Promise<number> {
      const memberId = `sched-${Math.random().toString(16).slice(2)}`;
      const installation = await store.installations.upsertVerified(
        {
          memberId,
          domain: 'sched.bitrix24.ru',
          clientEndpoint: 'https://sched.bitrix24.ru/rest/',
          serverEndpoint: 'https://oauth.bitrix.info/rest/',
          scope: 'crm',
          userId: 1,
          tokens: { accessToken: `a-${memberId}`, refreshToken: `r-${memberId}`, expiresAt: new Date(T0.getTime() + 3600_000) },
        },
        T0,
      );
      return installation.id;
    }

    const queued = async (kind: string) =>
      (await a.store.rawQuery<{ portal_id: number; key: string; payload: unknown }>("SELECT portal_id, key, payload FROM jobs WHERE kind = $1 AND status = 'queued' ORDER BY portal_id", [kind])).map(
        (r) => [Number(r.portal_id), r.key, r.payload],
      );

    it('two instances ticking at the same instant enqueue one job per active portal', async () => {
      const tickAt = new Date(T0.getTime() + 5 * 60_000);
      const outcomes = await Promise.all([
        createScheduler(a.deps, {}).tick('reconcile.crm', tickAt),
        createScheduler(b.deps, {}).tick('reconcile.crm', tickAt),
      ]);
      expect(outcomes.map((o) => o.claimed).sort()).toEqual([false, true]);
      expect(outcomes.map((o) => o.enqueued).sort()).toEqual([0, 3]);
      const payload = { tickAt: tickAt.toISOString() };
      expect(await queued('reconcile.crm')).toEqual(active.map((id) => [id, 'reconcile.crm', payload]));
      expect(active).not.toContain(fresh);

      // The same tick again (a late instance) adds nothing; the next tick coalesces into the jobs still queued.
      expect(await createScheduler(a.deps, {}).tick('reconcile.crm', tickAt)).toEqual({ claimed: false, enqueued: 0 });
      expect(await createScheduler(b.deps, {}).tick('reconcile.crm', new Date(tickAt.getTime() + 5 * 60_000))).toEqual({ claimed: true, enqueued: 0 });
      expect(await queued('reconcile.crm')).toHaveLength(3);
      expect([...a.restCalls, ...b.restCalls]).toEqual([]);
    });

    it('a purge tick only enqueues; the worker deletes done jobs past the retention, never dead ones', async () => {
      const portal = active[0]!;
      const other = fresh;
      const job = (key: string, p = portal) => ({ portalId: p, kind: 'crm.change' as const, key, payload: { entity: 'deal', id: 1, deleted: false } });
      await a.store.rawQuery('DELETE FROM jobs');
      now = T0;
      for (const key of ['deal:1', 'deal:2', 'deal:3']) await a.store.jobs.enqueue(job(key), T0);
      await a.store.jobs.enqueue(job('deal:9', other), T0);
      const claimed = [...(await a.store.jobs.claim('w', 10, T0)), ...(await a.store.jobs.claim('w', 10, T0))];
      expect(claimed).toHaveLength(4);
      await a.store.jobs.complete(claimed.filter((j) => j.key !== 'deal:3').map((j) => j.id), T0);
      await a.store.jobs.fail(claimed.find((j) => j.key === 'deal:3')!.id, 'gave up', null, T0);
      await a.store.jobs.enqueue(job('deal:4'), T0);
      now = new Date(T0.getTime() + 7 * DAY + 60_000);
      await a.store.jobs.complete((await a.store.jobs.claim('w', 10, now)).map((j) => j.id), now);

      const countDone = async (p: number) =>
        Number((await a.store.rawQuery<{ n: string | number }>("SELECT count(*) AS n FROM jobs WHERE portal_id = $1 AND kind = 'crm.change' AND status = 'done'", [p]))[0]?.n);
      expect(await countDone(portal)).toBe(3);

      const outcome = await createScheduler(b.deps, {}).tick('queue.purge', now);
      // Every installation's old jobs go, whatever its state.
      expect(outcome).toEqual({ claimed: true, enqueued: active.length + 1 });
      expect(await countDone(portal)).toBe(3); // the tick deleted nothing

      const worker = createWorker(a.deps, { workerId: 'purger' });
      expect(await worker.drain()).toBe(active.length + 1);
      expect(await countDone(portal)).toBe(1); // deal:4, done a minute ago
      expect(await countDone(other)).toBe(0);
      const left = await a.store.rawQuery<{ key: string; status: string }>("SELECT key, status FROM jobs WHERE portal_id = $1 AND kind = 'crm.change' ORDER BY key", [portal]);
      expect(left).toEqual([
        { key: 'deal:3', status: 'dead' },
        { key: 'deal:4', status: 'done' },
      ]);
      expect([...a.restCalls, ...b.restCalls]).toEqual([]);
    });

    it('node-cron’s timers reach the tick with the scheduled slot as its time', async () => {
      now = T0;
      const scheduler = createScheduler(a.deps, { 'reconcile.crm': '* * * * * *', 'holds.mature': undefined, 'queue.purge': undefined, 'bonus.expire': undefined, 'segments.rfm': undefined });
      const before = new Date();
      scheduler.start();
      try {
        let ticks: { tick_at: Date }[] = [];
        for (let i = 0; i < 400 && !ticks.length; i++) {
          await new Promise((r) => setTimeout(r, 50));
          ticks = await a.store.rawQuery<{ tick_at: Date }>("SELECT tick_at FROM schedule_ticks WHERE name = 'reconcile.crm' AND tick_at >= $1", [before.toISOString()]);
        }
        expect(ticks.length).toBeGreaterThan(0);
        expect(new Date(ticks[0]!.tick_at).getMilliseconds()).toBe(0);
      } finally {
        await scheduler.stop();
      }
    });
  });
}

suite(
  'embedded store (two schedulers, one process)',
  async () => {
    const store = await openStore({ memory: true, secretKey: SECRET });
    stores.push(store);
    return [store, store];
  },
  async () => {
    for (const s of stores.splice(0)) await s.close();
  },
);

if (skipPostgres) {
  describe.skip('scheduled ticks: postgres — skipped: SARAFAN_SKIP_POSTGRES=1 is set', () => {
    it('runs only against a PostgreSQL server', () => {});
  });
} else {
  const pgStores: SqlStore[] = [];
  suite(
    'postgres (two instances)',
    async () => {
      database = await createDatabase();
      const url = withDatabase(serverUrl, database);
      const first = await openStore({ databaseUrl: url, secretKey: SECRET });
      const second = await openStore({ databaseUrl: url, secretKey: SECRET });
      pgStores.push(first, second);
      return [first, second];
    },
    async () => {
      for (const s of pgStores.splice(0)) await s.close();
      if (database) await dropDatabase(database);
    },
  );
}
