/**
 * The promo and expiry part of the store contract (called from store-contract.ts, so it runs on
 * PGlite and PostgreSQL): codes unique per portal and stored upper-case, inserted in bulk with
 * collisions skipped; a code claimed once, ever, by however many concurrent claimers; campaigns
 * with used/total; codes paged in code order with who used them; the ledger reads bonus expiry
 * needs. Every read stays within its portal.
 */
import { describe, expect, it } from 'vitest';
import type { Installation, NewLedgerEntry } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const DAY = 86_400_000;

export function describePromoContract(getStore: () => SqlStore, newPortal: () => Promise<Installation>): void {
  const campaignOf = (portalId: number, over: Partial<{ value: number; codeCount: number; expiresAt: Date | null; name: string }> = {}) =>
    getStore().promo.createCampaign({ portalId, name: 'Весна', value: 500, codeCount: 3, expiresAt: null, createdBy: 1, createdAt: NOW, ...over });

  describe('promo campaigns and codes', () => {
    it('inserts codes in bulk, skipping codes the portal already has in any campaign', async () => {
      const store = getStore();
      const portal = await newPortal();
      const first = await campaignOf(portal.id);
      expect(await store.promo.addCodes(portal.id, first.id, ['AAAA2222', 'BBBB3333'])).toEqual(expect.arrayContaining(['AAAA2222', 'BBBB3333']));
      const second = await campaignOf(portal.id);
      const inserted = await store.promo.addCodes(portal.id, second.id, ['AAAA2222', 'CCCC4444', 'CCCC4444']);
      expect(inserted).toEqual(['CCCC4444']);
      // Another portal may hold the same text.
      const other = await newPortal();
      const theirs = await campaignOf(other.id);
      expect(await store.promo.addCodes(other.id, theirs.id, ['AAAA2222'])).toEqual(['AAAA2222']);
      expect((await store.promo.findCode(portal.id, 'aaaa2222'))?.campaign.id).toBe(first.id);
      expect((await store.promo.findCode(other.id, 'AAAA2222'))?.campaign.id).toBe(theirs.id);
      expect(await store.promo.findCode(portal.id, 'ZZZZ9999')).toBeNull();
      await expect(store.rawQuery(`INSERT INTO promo_codes (portal_id, code, campaign_id) VALUES ($1, 'lower22', $2)`, [portal.id, first.id])).rejects.toThrow();
    });

    it('inserts 10 000 codes with one statement', async () => {
      const store = getStore();
      const portal = await newPortal();
      const campaign = await campaignOf(portal.id, { codeCount: 10_000 });
      const codes = Array.from({ length: 10_000 }, (_, i) => `P${String(i).padStart(7, '0')}`.replace(/[01]/g, 'X'));
      const unique = [...new Set(codes)];
      const inserted = await store.promo.addCodes(portal.id, campaign.id, unique);
      expect(inserted).toHaveLength(unique.length);
      expect((await store.promo.campaign(portal.id, campaign.id))?.codeCount).toBe(10_000);
    });

    it('a code is claimed once, ever, however many claimers race', async () => {
      const store = getStore();
      const portal = await newPortal();
      const campaign = await campaignOf(portal.id);
      await store.promo.addCodes(portal.id, campaign.id, ['RACE2345']);
      const members = await Promise.all(Array.from({ length: 8 }, (_, i) => store.members.ensure(portal.id, 'contact', 100 + i, NOW)));
      const wins = await Promise.all(members.map((m) => store.transaction((tx) => tx.promo.claim(portal.id, 'race2345', m.id, NOW))));
      expect(wins.filter(Boolean)).toHaveLength(1);
      const winner = members[wins.indexOf(true)]!;
      const found = await store.promo.findCode(portal.id, 'RACE2345');
      expect(found).toMatchObject({ usedByMemberId: winner.id, usedAt: NOW });
      expect(await store.promo.claim(portal.id, 'RACE2345', members[0]!.id, NOW)).toBe(false);
      // The other portal's claim of the same text touches nothing here.
      const other = await newPortal();
      const m = await store.members.ensure(other.id, 'contact', 1, NOW);
      expect(await store.promo.claim(other.id, 'RACE2345', m.id, NOW)).toBe(false);
    });

    it('lists campaigns newest first with used/total, and pages codes with who used them', async () => {
      const store = getStore();
      const portal = await newPortal();
      const a = await campaignOf(portal.id, { name: 'A', codeCount: 3 });
      const b = await campaignOf(portal.id, { name: 'B', codeCount: 2, expiresAt: new Date(NOW.getTime() + DAY) });
      await store.promo.addCodes(portal.id, a.id, ['AAAA2223', 'AAAA2224', 'AAAA2225']);
      await store.promo.addCodes(portal.id, b.id, ['BBBB2223', 'BBBB2224']);
      const member = await store.members.ensure(portal.id, 'lead', 9, NOW);
      await store.promo.claim(portal.id, 'AAAA2224', member.id, NOW);
      const list = await store.promo.campaigns(portal.id);
      expect(list.map((c) => [c.name, c.codeCount, c.used])).toEqual([
        ['B', 2, 0],
        ['A', 3, 1],
      ]);
      expect(list[0]!.expiresAt).toEqual(new Date(NOW.getTime() + DAY));
      expect(await store.promo.campaign(portal.id, a.id)).toMatchObject({ used: 1, codeCount: 3 });
      const page1 = await store.promo.codes(portal.id, a.id, { limit: 2 });
      expect(page1.map((c) => [c.code, c.usedBy?.leadId ?? null])).toEqual([
        ['AAAA2223', null],
        ['AAAA2224', 9],
      ]);
      const page2 = await store.promo.codes(portal.id, a.id, { limit: 2, afterCode: 'AAAA2224' });
      expect(page2.map((c) => c.code)).toEqual(['AAAA2225']);
      const other = await newPortal();
      expect(await store.promo.campaigns(other.id)).toEqual([]);
      expect(await store.promo.campaign(other.id, a.id)).toBeNull();
      expect(await store.promo.codes(other.id, a.id, { limit: 10 })).toEqual([]);
    });

    it('a clean uninstall deletes the portal’s campaigns and codes', async () => {
      const store = getStore();
      const portal = await newPortal();
      const campaign = await campaignOf(portal.id);
      const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
      await store.promo.addCodes(portal.id, campaign.id, ['GONE2345']);
      await store.promo.claim(portal.id, 'GONE2345', member.id, NOW);
      await store.installations.markUninstalled(portal.id, NOW, true);
      expect(await store.promo.campaigns(portal.id)).toEqual([]);
      expect(await store.rawQuery('SELECT 1 FROM promo_codes WHERE portal_id = $1', [portal.id])).toEqual([]);
    });
  });

  describe('ledger reads for bonus expiry', () => {
    const credit = (portalId: number, memberId: number, key: string, expiresAt: Date | null): NewLedgerEntry => ({
      portalId,
      memberId,
      amount: 100,
      reason: 'promo',
      kind: 'credit',
      dealId: null,
      level: 0,
      programVersion: 1,
      idempotencyKey: key,
      availableAt: NOW,
      expiresAt,
      causedBy: 'user:1',
      comment: null,
      createdAt: NOW,
    });

    it('finds members whose credits expire in a window, and reads whole ledgers oldest first', async () => {
      const store = getStore();
      const portal = await newPortal();
      const [m1, m2, m3] = await Promise.all([1, 2, 3].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
      await store.ledger.append([
        credit(portal.id, m1!.id, 'a', new Date(NOW.getTime() + DAY)),
        credit(portal.id, m2!.id, 'b', new Date(NOW.getTime() + 2 * DAY)),
        credit(portal.id, m3!.id, 'c', null),
        credit(portal.id, m1!.id, 'd', null),
      ]);
      expect(await store.ledger.expiring(portal.id, NOW, new Date(NOW.getTime() + DAY))).toEqual([m1!.id]);
      expect(await store.ledger.expiring(portal.id, new Date(NOW.getTime() + DAY), new Date(NOW.getTime() + 3 * DAY))).toEqual([m2!.id]);
      expect((await store.ledger.forMembers(portal.id, [m1!.id, m3!.id])).map((e) => e.idempotencyKey)).toEqual(['a', 'c', 'd']);
      // A deal's reversal that became available in the window brings its member in too; a spend without a deal does not.
      const later = new Date(NOW.getTime() + 5 * DAY);
      await store.ledger.append([
        { ...credit(portal.id, m3!.id, 'rev', null), amount: -100, reason: 'referral', kind: 'reversal', dealId: 4, level: 1, availableAt: later },
        { ...credit(portal.id, m2!.id, 'spend', null), amount: -10, reason: 'redemption', kind: 'credit', availableAt: later },
      ]);
      expect(await store.ledger.expiring(portal.id, new Date(later.getTime() - 1), later)).toEqual([m3!.id]);
      const other = await newPortal();
      expect(await store.ledger.expiring(other.id, NOW, new Date(NOW.getTime() + 3 * DAY))).toEqual([]);
      expect(await store.ledger.forMembers(other.id, [m1!.id])).toEqual([]);
    });
  });
}
