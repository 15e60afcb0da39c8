/**
 * The robot-call part of the store contract (issue 10; called from store-contract.ts, so it runs
 * on PGlite and PostgreSQL): one call per (portal, event token) however often it is recorded,
 * even concurrently; the first answer stored wins; answered once; every read stays in its portal.
 */
import { describe, expect, it } from 'vitest';
import type { Installation, NewRobotCall } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const LATER = new Date('2026-03-01T12:05:00.000Z');

export function describeRobotCallContract(getStore: () => SqlStore, newPortal: () => Promise<Installation>): void {
  const call = (portalId: number, tokenHash: string, over: Partial<NewRobotCall> = {}): NewRobotCall => ({
    portalId,
    tokenHash,
    eventToken: `token-${tokenHash}`,
    code: 'sarafan_accrue',
    documentId: 'DEAL_12',
    properties: { amount: '150.00', comment: 'Оплата' },
    userId: 1,
    ...over,
  });

  describe('robot calls', () => {
    it('records a call once per event token, concurrent repeats included, and returns the stored one', async () => {
      const store = getStore();
      const portal = await newPortal();
      const results = await Promise.all([1, 2, 3, 4].map((n) => store.robotCalls.record(call(portal.id, 'h1', { properties: { amount: String(n) } }), NOW)));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const first = results.find((r) => r.created)!.call;
      for (const r of results) expect(r.call.properties).toEqual(first.properties);
      expect(first).toMatchObject({ portalId: portal.id, tokenHash: 'h1', code: 'sarafan_accrue', documentId: 'DEAL_12', userId: 1, answer: null, answeredAt: null });
      expect(first.createdAt.toISOString()).toBe(NOW.toISOString());
    });

    it('keeps the first answer, and marks the call answered once', async () => {
      const store = getStore();
      const portal = await newPortal();
      await store.robotCalls.record(call(portal.id, 'h2'), NOW);
      const first = { values: { ok: 'Y', error: '', accrued: '150.00' }, log: 'Sarafan: +150.00' };
      expect(await store.robotCalls.saveAnswer(portal.id, 'h2', first)).toEqual(first);
      expect(await store.robotCalls.saveAnswer(portal.id, 'h2', { values: { ok: 'N', error: 'x' }, log: 'x' })).toEqual(first);
      await store.robotCalls.markAnswered(portal.id, 'h2', NOW);
      await store.robotCalls.markAnswered(portal.id, 'h2', LATER);
      const stored = await store.robotCalls.get(portal.id, 'h2');
      expect(stored?.answer).toEqual(first);
      expect(stored?.answeredAt?.toISOString()).toBe(NOW.toISOString());
    });

    it('a token of one portal is unknown to another, which may record the same token as its own', async () => {
      const store = getStore();
      const mine = await newPortal();
      const theirs = await newPortal();
      await store.robotCalls.record(call(mine.id, 'h3'), NOW);
      expect(await store.robotCalls.get(theirs.id, 'h3')).toBeNull();
      expect((await store.robotCalls.record(call(theirs.id, 'h3', { code: 'sarafan_status' }), NOW)).created).toBe(true);
      await store.robotCalls.saveAnswer(theirs.id, 'h3', { values: { ok: 'Y' }, log: 'l' });
      expect((await store.robotCalls.get(mine.id, 'h3'))?.answer).toBeNull();
    });

    it('a clean uninstall deletes the portal’s calls and only those', async () => {
      const store = getStore();
      const gone = await newPortal();
      const kept = await newPortal();
      await store.robotCalls.record(call(gone.id, 'h4'), NOW);
      await store.robotCalls.record(call(kept.id, 'h4'), NOW);
      await store.installations.markUninstalled(gone.id, LATER, true);
      expect(await store.robotCalls.get(gone.id, 'h4')).toBeNull();
      expect(await store.robotCalls.get(kept.id, 'h4')).not.toBeNull();
    });
  });
}
