/**
 * The RFM part of the store contract (issue 12; called from store-contract.ts, so it runs on
 * PGlite and PostgreSQL): R/F/M facts from Sarafan's deals and the install's history (a deal in
 * both counted once; deleted and lost deals left out; conversion by the fixed rate, today's rate,
 * or not at all), the computed/written bookkeeping, and the distribution — each in its portal.
 */
import { describe, expect, it } from 'vitest';
import type { DealState, HistoricalWin, Installation } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const LATER = new Date('2026-03-02T12:00:00.000Z');
const day = (n: number) => new Date(NOW.getTime() - n * 86_400_000);

export function describeSegmentContract(getStore: () => SqlStore, newPortal: () => Promise<Installation>): void {
  const deal = (portalId: number, dealId: number, clientMemberId: number, over: Partial<DealState> = {}): DealState => ({
    portalId,
    dealId,
    clientMemberId,
    categoryId: 0,
    stageId: 'WON',
    stageSemantic: 'S',
    amount: 1000_00,
    currency: 'RUB',
    won: true,
    deleted: false,
    firstWonAt: day(10),
    programVersion: 1,
    referralId: null,
    updatedAt: NOW,
    ...over,
  });
  const win = (dealId: number, over: Partial<HistoricalWin> = {}): HistoricalWin => ({
    dealId,
    contactId: null,
    leadId: null,
    categoryId: 0,
    amount: 500_00,
    currency: 'RUB',
    wonAt: day(100),
    createdAt: null,
    ...over,
  });
  const RUB = { currency: 'RUB', rates: [{ currency: 'USD', rate: '90' }] };

  describe('rfm segments', () => {
    it('sums each client from deals and history: dedup, deleted and lost left out, converted, other portal excluded', async () => {
      const store = getStore();
      const portal = await newPortal();
      const other = await newPortal();
      const p = portal.id;
      const ann = await store.members.ensure(p, 'contact', 1, NOW); // contact 1
      const bob = await store.members.ensure(p, 'lead', 2, NOW); // lead 2 only
      const cat = await store.members.ensure(p, 'contact', 3, NOW);
      // Cat came as lead 33 and was converted: the member has both.
      await store.rawQuery('UPDATE members SET lead_id = 33 WHERE portal_id = $1 AND id = $2', [p, cat.id]);
      const theirs = await store.members.ensure(other.id, 'contact', 1, NOW);
      await store.deals.upsertMany([
        deal(p, 10, ann.id, { firstWonAt: day(5), amount: 1000_00 }),
        deal(p, 11, ann.id, { firstWonAt: day(40), amount: 200_00, currency: 'USD', fxCurrency: 'USD', fxRate: '80.5' }), // fixed rate wins over today's 90
        deal(p, 12, ann.id, { won: false, stageSemantic: 'F', amount: 9_999_00 }), // lost: not counted
        deal(p, 13, ann.id, { deleted: true, amount: 9_999_00 }), // deleted: not counted
        deal(p, 20, bob.id, { firstWonAt: day(3), amount: 10_00, currency: 'GBP' }), // no rate: F and R only
        deal(p, 21, bob.id, { firstWonAt: day(200), amount: 50_00, currency: 'USD' }), // today's rate
      ]);
      await store.deals.upsert(deal(other.id, 10, theirs.id, { amount: 7_777_00 }));
      await store.history.saveWins(p, [
        win(10, { contactId: 1, amount: 123_00, wonAt: day(300) }), // also in deals: counted once, as deals has it
        win(12, { contactId: 1, amount: 456_00, wonAt: day(1) }), // lost since the backfill: not counted
        win(30, { contactId: 1, amount: 300_00, wonAt: day(400) }),
        win(31, { leadId: 33, amount: 70_00, wonAt: day(2) }), // cat's lead: counts as cat's contact
        win(32, { leadId: 44, contactId: 4, amount: 1_00, currency: 'EUR', wonAt: day(50) }), // contact 4, no EUR rate
        win(33, { leadId: 5, amount: 2_00, wonAt: day(60) }), // a lead nobody enrolled
        win(34, { amount: 3_00 }), // no client at all: nobody's
      ]);
      await store.history.saveWins(other.id, [win(30, { contactId: 1, amount: 1_00 })]);

      const facts = await store.segments.clientFacts(p, RUB);
      expect(facts.map((f) => ({ ...f, lastWonAt: f.lastWonAt.toISOString() }))).toEqual([
        { client: { entity: 'contact', id: 1 }, lastWonAt: day(5).toISOString(), wonDeals: 3, wonAmount: 1000_00 + 16_100_00 + 300_00, unconvertedDeals: 0 },
        { client: { entity: 'contact', id: 3 }, lastWonAt: day(2).toISOString(), wonDeals: 1, wonAmount: 70_00, unconvertedDeals: 0 },
        { client: { entity: 'contact', id: 4 }, lastWonAt: day(50).toISOString(), wonDeals: 1, wonAmount: 0, unconvertedDeals: 1 },
        { client: { entity: 'lead', id: 2 }, lastWonAt: day(3).toISOString(), wonDeals: 2, wonAmount: 4_500_00, unconvertedDeals: 1 },
        { client: { entity: 'lead', id: 5 }, lastWonAt: day(60).toISOString(), wonDeals: 1, wonAmount: 2_00, unconvertedDeals: 0 },
      ]);
      const theirFacts = await store.segments.clientFacts(other.id, RUB);
      expect(theirFacts.map((f) => [f.client, f.wonDeals, f.wonAmount])).toEqual([[{ entity: 'contact', id: 1 }, 2, 7_778_00]]);
    });

    it('rounds a converted amount half away from zero, per deal', async () => {
      const store = getStore();
      const p = (await newPortal()).id;
      const m = await store.members.ensure(p, 'contact', 1, NOW);
      // 0.01 USD × 0.5 = 0.005 → 0.01, twice.
      await store.deals.upsertMany([deal(p, 1, m.id, { amount: 1, currency: 'USD', fxCurrency: 'USD', fxRate: '0.5' }), deal(p, 2, m.id, { amount: 1, currency: 'USD' })]);
      const [facts] = await store.segments.clientFacts(p, { currency: 'RUB', rates: [{ currency: 'USD', rate: '0.5' }] });
      expect(facts?.wonAmount).toBe(2);
    });

    it('keeps the computed and written segment apart, clears a former client once, and counts the distribution in order', async () => {
      const store = getStore();
      const p = (await newPortal()).id;
      const other = (await newPortal()).id;
      const c = (id: number) => ({ entity: 'contact' as const, id });
      const empty = await store.segments.distribution(p);
      expect(empty).toEqual({ computedAt: null, counts: ['champion', 'loyal', 'promising', 'new', 'at_risk', 'sleeping', 'lost'].map((segment) => ({ segment, members: 0 })) });

      await store.segments.saveComputed(p, [{ client: c(1), segment: 'loyal' }, { client: c(2), segment: 'new' }, { client: { entity: 'lead', id: 1 }, segment: 'new' }], NOW);
      await store.segments.saveComputed(other, [{ client: c(1), segment: 'lost' }], NOW);
      expect((await store.segments.pendingWrites(p)).map((r) => [r.client.entity, r.client.id, r.segment, r.written])).toEqual([
        ['contact', 1, 'loyal', null],
        ['contact', 2, 'new', null],
        ['lead', 1, 'new', null],
      ]);
      await store.segments.markWritten(p, [{ client: c(1), segment: 'loyal' }, { client: c(2), segment: 'new' }], NOW);
      expect((await store.segments.pendingWrites(p)).map((r) => r.client)).toEqual([{ entity: 'lead', id: 1 }]);

      const dist = await store.segments.distribution(p);
      expect(dist.computedAt?.toISOString()).toBe(NOW.toISOString());
      expect(dist.counts.filter((x) => x.members)).toEqual([
        { segment: 'loyal', members: 1 },
        { segment: 'new', members: 2 },
      ]);

      // Next run: contact 1 moves, contact 2 is no longer a client, lead 1 (never written) neither.
      await store.segments.saveComputed(p, [{ client: c(1), segment: 'champion' }], LATER);
      expect((await store.segments.pendingWrites(p)).map((r) => [r.client.entity, r.client.id, r.segment, r.written])).toEqual([
        ['contact', 1, 'champion', 'loyal'],
        ['contact', 2, null, 'new'],
      ]);
      await store.segments.markWritten(p, [{ client: c(2), segment: null }], LATER);
      expect((await store.segments.pendingWrites(p)).map((r) => r.client.id)).toEqual([1]);
      expect(await store.rawQuery('SELECT entity, entity_id FROM crm_segments WHERE portal_id = $1 ORDER BY entity, entity_id', [p])).toEqual([{ entity: 'contact', entity_id: 1 }]);
      const after = await store.segments.distribution(p);
      expect(after.computedAt?.toISOString()).toBe(LATER.toISOString());
      expect(after.counts.filter((x) => x.members)).toEqual([{ segment: 'champion', members: 1 }]);

      // The other portal saw none of it.
      expect((await store.segments.distribution(other)).counts.filter((x) => x.members)).toEqual([{ segment: 'lost', members: 1 }]);
      expect((await store.segments.pendingWrites(other)).map((r) => r.segment)).toEqual(['lost']);
    });
  });
}
