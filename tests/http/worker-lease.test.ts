/**
 * Work a dead process held resumes as soon as a live worker runs (SPEC 6): claimed jobs are
 * leased and renewed while a run holds them; expired leases are recovered at the next claim;
 * on the embedded store (`exclusive`) every job found running at start is recovered at once.
 * The clock and the renewal timer are injected: nothing here waits for the wall clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { composeDeps } from '../../server/compose.js';
import { createWorker, type WorkerTimers } from '../../server/jobs/worker.js';
import type { Deps, Installation, RegistrationReport } from '../../src/handlers/ports.js';
import { openStore, type SqlStore } from '../../src/store/open-store.js';
import { captureLogs } from '../support/capture-logs.js';

const T0 = new Date('2026-03-01T12:00:00.000Z');
const LEASE = 30_000;

let store: SqlStore;
let now: Date;
/** Installation ids whose registration job ran, in order. */
let ran: number[];
/** When set, the next registration of this installation waits for `release`. */
let blockFor: number | null;
let release: () => void;
let blocked: Promise<void>;
let deps: Deps;

const at = (ms: number) => new Date(T0.getTime() + ms);

class ManualTimers implements WorkerTimers {
  readonly active = new Map<number, () => Promise<void>>();
  private next = 1;
  setInterval(fn: () => Promise<void>): unknown {
    const id = this.next++;
    this.active.set(id, fn);
    return id;
  }
  clearInterval(handle: unknown): void {
    this.active.delete(handle as number);
  }
  async fire(): Promise<void> {
    for (const fn of [...this.active.values()]) await fn();
  }
}

beforeAll(async () => {
  store = await openStore({ memory: true, secretKey: 'lease-test-secret-0123456789abcdef' });
  const base = composeDeps({
    store,
    log: captureLogs().log,
    appBaseUrl: 'https://sarafan.example.com',
    clientId: 'app.lease.test',
    clientSecret: 'lease-test-client-secret',
    oauthUrl: 'https://oauth.bitrix.info',
    allowInsecurePortals: false,
    clock: { now: () => now },
  });
  deps = {
    ...base,
    registrar: {
      async reconcile(installation: Installation): Promise<RegistrationReport> {
        ran.push(installation.id);
        if (installation.id === blockFor) {
          blockFor = null; // only the first run waits
          await blocked;
        }
        return { at: now.toISOString(), created: [], updated: [], failed: [] };
      },
    },
  };
});

afterAll(async () => {
  await store?.close();
});

beforeEach(async () => {
  await store.rawQuery('DELETE FROM jobs');
  now = T0;
  ran = [];
  blockFor = null;
  blocked = new Promise<void>((resolve) => (release = resolve));
});

let portals = 0;
async function portalWithJob(): Promise<number> {
  const memberId = `lease-${++portals}-${Math.random().toString(16).slice(2)}`;
  const installation = await store.installations.upsertVerified(
    {
      memberId,
      domain: 'lease.bitrix24.ru',
      clientEndpoint: 'https://lease.bitrix24.ru/rest/',
      serverEndpoint: 'https://oauth.bitrix.info/rest/',
      scope: 'crm',
      userId: 1,
      tokens: { accessToken: `a-${memberId}`, refreshToken: `r-${memberId}`, expiresAt: at(3_600_000) },
    },
    T0,
  );
  await store.jobs.enqueue({ portalId: installation.id, kind: 'app.reconcile', key: 'registration', payload: {} }, T0);
  return installation.id;
}

const statusOf = async (portalId: number) =>
  (await store.rawQuery<{ status: string }>('SELECT status FROM jobs WHERE portal_id = $1', [portalId])).map((r) => r.status);

describe('job leases', () => {
  it('a dead worker’s jobs wait out their lease, then the next claim of a live worker takes them', async () => {
    const held = await portalWithJob();
    const free = await portalWithJob();
    expect((await store.jobs.claim('killed-worker', 10, T0)).map((j) => j.portalId)).toEqual([held]);

    const live = createWorker(deps, { workerId: 'live', leaseMs: LEASE, timers: new ManualTimers() });
    now = at(LEASE - 1_000);
    expect(await live.drain()).toBe(1);
    expect(ran).toEqual([free]);
    expect(await statusOf(held)).toEqual(['running']);

    now = at(LEASE + 1_000);
    expect(await live.drain()).toBe(1);
    expect(ran).toEqual([free, held]);
    expect(await statusOf(held)).toEqual(['done']);
  });

  it('a live worker renews the lease of the jobs its run holds, so no other worker takes them', async () => {
    const portal = await portalWithJob();
    blockFor = portal;
    const timers = new ManualTimers();
    const slow = createWorker(deps, { workerId: 'slow', leaseMs: LEASE, timers });
    const running = slow.drain();
    while (!ran.includes(portal)) await new Promise((r) => setTimeout(r, 5));
    expect(timers.active.size).toBe(1);

    now = at(LEASE * 0.7);
    await timers.fire();
    now = at(LEASE * 1.5); // past the first lease, within the renewed one
    const other = createWorker(deps, { workerId: 'other', leaseMs: LEASE, timers: new ManualTimers() });
    expect(await other.drain()).toBe(0);
    expect(await statusOf(portal)).toEqual(['running']);

    release();
    expect(await running).toBe(1);
    expect(ran).toEqual([portal]);
    expect(await statusOf(portal)).toEqual(['done']);
    expect(timers.active.size).toBe(0); // no renewal once the run is over
  });

  it('on the embedded store (exclusive) every job found running at start is recovered before the first claim', async () => {
    const a = await portalWithJob();
    const b = await portalWithJob();
    await store.jobs.claim('killed-worker', 10, T0);
    await store.jobs.claim('killed-worker', 10, T0);
    now = at(1_000); // far within the dead process's lease

    const shared = createWorker(deps, { workerId: 'shared', leaseMs: LEASE, timers: new ManualTimers() });
    expect(await shared.drain()).toBe(0);

    const restarted = createWorker(deps, { workerId: 'restarted', leaseMs: LEASE, exclusive: true, timers: new ManualTimers() });
    expect(await restarted.drain()).toBe(2);
    expect(ran.sort()).toEqual([a, b].sort());
    expect([...(await statusOf(a)), ...(await statusOf(b))]).toEqual(['done', 'done']);
  });
});
