/**
 * The admin ledger reads of issue 12 (called from store-contract.ts, so they run on PGlite and
 * PostgreSQL): the search's filters, order (time written, then id) and cursor, and the payouts'
 * referral totals per referrer. Every read stays within its portal; migration 0013's indexes
 * exist on both stores.
 */
import { describe, expect, it } from 'vitest';
import type { Installation, LedgerEntry, NewLedgerEntry } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';

const at = (d: number, h = 12) => new Date(Date.UTC(2026, 2, d, h));

export function describeLedgerSearchContract(getStore: () => SqlStore, newPortal: () => Promise<Installation>): void {
  describe('ledger search and referral totals (issue 12)', () => {
    async function fixture() {
      const store = getStore();
      const portal = await newPortal();
      const other = await newPortal();
      const a = await store.members.ensure(portal.id, 'contact', 5, at(1));
      const b = await store.members.ensure(portal.id, 'lead', 5, at(1));
      const theirs = await store.members.ensure(other.id, 'contact', 5, at(1));
      let n = 0;
      const e = (portalId: number, memberId: number, amount: number, reason: NewLedgerEntry['reason'], kind: NewLedgerEntry['kind'], createdAt: Date, more: Partial<NewLedgerEntry> = {}): NewLedgerEntry => ({
        portalId,
        memberId,
        amount,
        reason,
        kind,
        dealId: 7,
        level: 1,
        programVersion: 1,
        idempotencyKey: `ls${++n}`,
        availableAt: createdAt,
        expiresAt: null,
        causedBy: 'deal:7',
        comment: null,
        createdAt,
        ...more,
      });
      // Written out of time order: the third is dated before the second.
      const { inserted } = await store.ledger.append([
        e(portal.id, a.id, 1000, 'referral', 'credit', at(2)),
        e(portal.id, b.id, 400, 'referral', 'credit', at(9), { level: 2, availableAt: at(20) }),
        e(portal.id, a.id, -1000, 'referral', 'reversal', at(5)),
        e(portal.id, b.id, 50, 'cashback', 'credit', at(9), { dealId: 8, level: 0 }),
        e(portal.id, a.id, -30, 'redemption', 'correction', at(12), { dealId: 9, level: 0 }),
        e(other.id, theirs.id, 777, 'referral', 'credit', at(3)),
      ]);
      return { store, portal, other, a, b, entries: inserted };
    }
    const ids = (rows: LedgerEntry[]) => rows.map((r) => r.id);

    it('searches newest first by time written then id, with AND filters and a cursor, within the portal', async () => {
      const { store, portal, entries } = await fixture();
      const [credit, held, reversal, cashback, redemption] = entries;
      const search = (q: Parameters<SqlStore['ledger']['search']>[1]) => store.ledger.search(portal.id, q);
      expect(ids(await search({ limit: 10 }))).toEqual([redemption!.id, cashback!.id, held!.id, reversal!.id, credit!.id]);
      expect(ids(await search({ limit: 10, person: { entity: 'contact', id: 5 } }))).toEqual([redemption!.id, reversal!.id, credit!.id]);
      expect(ids(await search({ limit: 10, person: { entity: 'lead', id: 5 }, reason: 'referral' }))).toEqual([held!.id]);
      expect(await search({ limit: 10, person: { entity: 'lead', id: 6 } })).toEqual([]);
      expect(ids(await search({ limit: 10, dealId: 7, kind: 'credit' }))).toEqual([held!.id, credit!.id]);
      expect(ids(await search({ limit: 10, from: at(5), to: at(9) }))).toEqual([reversal!.id]);
      expect(ids(await search({ limit: 2 }))).toEqual([redemption!.id, cashback!.id]);
      expect(ids(await search({ limit: 2, beforeId: cashback!.id }))).toEqual([held!.id, reversal!.id]);
      expect(ids(await search({ limit: 2, beforeId: reversal!.id }))).toEqual([credit!.id]);
      expect((await search({ limit: 1 }))[0]).toEqual(redemption);
    });

    it('sums referral entries per referrer for a period, with what is pending at a time', async () => {
      const { store, portal, a, b } = await fixture();
      expect(await store.ledger.referralTotals(portal.id, { pendingAt: at(15) })).toEqual([
        { memberId: a.id, credited: 1000, reversed: 1000, pending: 0 },
        { memberId: b.id, credited: 400, reversed: 0, pending: 400 },
      ]);
      expect(await store.ledger.referralTotals(portal.id, { pendingAt: at(25), from: at(3), to: at(10) })).toEqual([
        { memberId: a.id, credited: 0, reversed: 1000, pending: 0 },
        { memberId: b.id, credited: 400, reversed: 0, pending: 0 },
      ]);
      const indexes = await store.rawQuery<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = 'ledger_entries' AND indexname LIKE '%created%idx'`);
      expect(indexes.map((i) => i.indexname).sort()).toEqual(['ledger_entries_created_cover_idx', 'ledger_entries_kind_created_idx', 'ledger_entries_reason_created_idx']);
    });
  });
}
