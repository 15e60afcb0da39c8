/**
 * The installation health's part of the store contract (issue 12; called from store-contract.ts,
 * so it runs on PGlite and PostgreSQL): the last event noted at most once a minute and never
 * backwards, queue stats and dead jobs per portal, and retrying a dead job — queued again, or
 * merged into the queued job of its key — never touching another portal's jobs.
 */
import { describe, expect, it } from 'vitest';
import { EVENT_MARK_INTERVAL_MS, type Installation, type NewJob } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

export function describeHealthContract(getStore: () => SqlStore, newPortal: () => Promise<Installation>): void {
  const job = (portalId: number, key: string, runAt?: Date): NewJob => ({ portalId, kind: 'crm.change', key, payload: {}, ...(runAt ? { runAt } : {}) });

  let seq = 0;
  /** Enqueue due before anything else, claim it, fail it for good. */
  async function kill(portalId: number, key: string, error: string, when: Date): Promise<number> {
    const store = getStore();
    await store.jobs.enqueue(job(portalId, key, new Date(Date.UTC(2000, 0, 1, 0, 0, ++seq))), when);
    const [claimed] = await store.jobs.claim('contract-killer', 1, when);
    if (claimed?.key !== key || claimed.portalId !== portalId) throw new Error(`claimed ${JSON.stringify(claimed)} instead of ${key}`);
    await store.jobs.fail(claimed.id, error, null, when);
    return claimed.id;
  }

  const status = async (id: number) =>
    (await getStore().rawQuery<{ status: string; attempts: number; run_at: Date | string }>('SELECT status, attempts, run_at FROM jobs WHERE id = $1', [id]))[0];

  describe('installation health', () => {
    it('notes the last event at most once per interval per portal, and never moves it back', async () => {
      const store = getStore();
      const portal = await newPortal();
      const other = await newPortal();
      expect(await store.installations.lastEventAt(portal.id)).toBeNull();
      await store.installations.noteEvent(portal.id, at(0));
      expect(await store.installations.lastEventAt(portal.id)).toEqual(at(0));
      await store.installations.noteEvent(portal.id, at(EVENT_MARK_INTERVAL_MS / 1000 - 1));
      expect(await store.installations.lastEventAt(portal.id)).toEqual(at(0));
      await store.installations.noteEvent(portal.id, at(EVENT_MARK_INTERVAL_MS / 1000));
      expect(await store.installations.lastEventAt(portal.id)).toEqual(at(EVENT_MARK_INTERVAL_MS / 1000));
      // A late caller (another instance, an older clock reading) cannot move it back.
      await store.installations.noteEvent(portal.id, at(-600));
      expect(await store.installations.lastEventAt(portal.id)).toEqual(at(EVENT_MARK_INTERVAL_MS / 1000));
      expect(await store.installations.lastEventAt(other.id)).toBeNull();
    });

    it('writes once for a burst of events noted together', async () => {
      const store = getStore();
      const portal = await newPortal();
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.installations.noteEvent(portal.id, at(i / 1000))));
      expect(await store.installations.lastEventAt(portal.id)).toEqual(at(0));
    });

    it("counts one portal's jobs by state with the oldest due time, and lists its dead jobs newest first", async () => {
      const store = getStore();
      const portal = await newPortal();
      const other = await newPortal();
      const older = await kill(portal.id, 'deal:1', 'first', at(0));
      const newer = await kill(portal.id, 'deal:2', 'second', at(30));
      await kill(other.id, 'deal:1', 'theirs', at(60));
      await store.jobs.enqueue(job(portal.id, 'deal:3', at(120)), at(0));
      await store.jobs.enqueue(job(portal.id, 'deal:4', at(90)), at(0));
      await store.jobs.enqueue(job(other.id, 'deal:5', at(10)), at(0));

      const stats = await store.jobs.stats(portal.id);
      expect(stats.queued).toEqual({ count: 2, oldestRunAt: at(90), oldestLockedAt: null });
      expect(stats.dead.count).toBe(2);
      expect(stats.running.count).toBe(0);
      const dead = await store.jobs.deadJobs(portal.id, 50);
      expect(dead.map((j) => [j.id, j.status, j.lastError, j.updatedAt.toISOString()])).toEqual([
        [newer, 'dead', 'second', at(30).toISOString()],
        [older, 'dead', 'first', at(0).toISOString()],
      ]);
      expect((await store.jobs.deadJobs(portal.id, 1)).map((j) => j.id)).toEqual([newer]);
    });

    it('retries a dead job of its own portal only: queued due now with attempts reset; not_dead and not_found otherwise', async () => {
      const store = getStore();
      const portal = await newPortal();
      const other = await newPortal();
      const id = await kill(portal.id, 'deal:7', 'boom', at(0));
      const theirs = await kill(other.id, 'deal:7', 'boom', at(0));

      expect(await store.jobs.retryDead(other.id, id, at(60))).toEqual({ status: 'not_found' });
      expect(await store.jobs.retryDead(portal.id, theirs, at(60))).toEqual({ status: 'not_found' });
      expect(await store.jobs.retryDead(portal.id, id, at(60))).toEqual({ status: 'queued', id });
      const row = (await status(id))!;
      expect([row.status, row.attempts, new Date(row.run_at).toISOString()]).toEqual(['queued', 0, at(60).toISOString()]);
      expect(await store.jobs.retryDead(portal.id, id, at(61))).toEqual({ status: 'not_dead', current: 'queued' });
      expect((await status(theirs))!.status).toBe('dead');
    });

    it('merges a dead job into the queued job of its key instead of breaking the one-queued-per-key index', async () => {
      const store = getStore();
      const portal = await newPortal();
      const dead = await kill(portal.id, 'deal:8', 'boom', at(0));
      await store.jobs.enqueue(job(portal.id, 'deal:8', at(3600)), at(0));
      const [queued] = await store.rawQuery<{ id: number }>(`SELECT id FROM jobs WHERE portal_id = $1 AND key = 'deal:8' AND status = 'queued'`, [portal.id]);

      expect(await store.jobs.retryDead(portal.id, dead, at(60))).toEqual({ status: 'merged', id: Number(queued!.id) });
      expect((await status(dead))!.status).toBe('done');
      const after = (await status(Number(queued!.id)))!;
      expect([after.status, new Date(after.run_at).toISOString()]).toEqual(['queued', at(60).toISOString()]);
      expect((await store.jobs.stats(portal.id)).queued.count).toBe(1);
    });
  });
}
