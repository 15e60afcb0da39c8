/**
 * The one contract every store adapter passes (STYLE.md practice 6): the semantics written in
 * src/handlers/ports.ts, checked against stored state (raw SQL where the port cannot see it).
 *
 * One store per file (creating PGlite costs seconds); every test makes its own portals, so tests
 * never see each other's rows — except the jobs table, which the queue reads across portals:
 * the queue tests empty it first. Tests in a file run one after another.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/handlers/errors.js';
import type { HistoricalWin, Installation, Member, NewLedgerEntry, NewReferral, PortalTokens, VerifiedInstall } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { describeAnalyticsContract } from './analytics-contract.js';
import { describeAnalyticsSummaryContract } from './analytics-summary-contract.js';
import { describePromoContract } from './promo-contract.js';
import { describeRobotCallContract } from './robot-call-contract.js';
import { describeHealthContract } from './health-contract.js';
import { describeLedgerSearchContract } from './ledger-search-contract.js';
import { describeSegmentContract } from './segment-contract.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function tokens(tag: string): PortalTokens {
  return { accessToken: `access-${tag}-plaintext`, refreshToken: `refresh-${tag}-plaintext`, expiresAt: at(60) };
}

function verified(memberId: string, over: Partial<VerifiedInstall> = {}): VerifiedInstall {
  return {
    memberId,
    domain: 'portal.bitrix24.ru',
    clientEndpoint: 'https://portal.bitrix24.ru/rest/',
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    scope: 'crm,placement,user_brief',
    userId: 1,
    tokens: tokens(memberId),
    ...over,
  };
}

export function describeStoreContract(name: string, open: () => Promise<SqlStore>): void {
  describe(`store contract: ${name}`, () => {
    let store: SqlStore;

    beforeAll(async () => {
      store = await open();
    });

    afterAll(async () => {
      await store?.close();
    });

    /**
     * Resolves once another session waits for a lock this transaction holds. On PostgreSQL that
     * is seen in pg_stat_activity (looked at from another pooled connection); PGlite runs one
     * transaction at a time, so the other one cannot start before this one ends.
     */
    const anotherSessionWaits = async (): Promise<void> => {
      if (store.driver !== 'postgres') return;
      const waiting = async () =>
        Number(
          (await store.rawQuery<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))[0]?.n,
        ) > 0;
      while (!(await waiting())) await sleep(5);
    };

    const newPortal = (over: Partial<VerifiedInstall> = {}): Promise<Installation> =>
      store.installations.upsertVerified(verified(`member-${randomUUID()}`, over), NOW);

    const count = async (table: string, portalId: number): Promise<number> => {
      const [row] = await store.rawQuery<{ n: number | string }>(`SELECT count(*) AS n FROM ${table} WHERE portal_id = $1`, [portalId]);
      return Number(row?.n);
    };

    const entry = (portalId: number, memberId: number, key: string, over: Partial<NewLedgerEntry> = {}): NewLedgerEntry => ({
      portalId,
      memberId,
      amount: 100,
      reason: 'referral',
      kind: 'credit',
      dealId: 1,
      level: 1,
      programVersion: 1,
      idempotencyKey: key,
      availableAt: NOW,
      expiresAt: null,
      causedBy: 'deal:1',
      comment: null,
      createdAt: NOW,
      ...over,
    });

    const referral = (portalId: number, referee: Member, referrer: Member | null, over: Partial<NewReferral> = {}): NewReferral => ({
      portalId,
      refereeMemberId: referee.id,
      referrerMemberId: referrer?.id ?? null,
      code: referrer?.code ?? null,
      source: 'deal',
      sourceRef: 'deal:1',
      status: 'active',
      rejectReason: null,
      createdAt: NOW,
      ...over,
    });

    it('is ready once migrated', async () => {
      expect(await store.ready()).toBe(true);
    });

    // -----------------------------------------------------------------------------------------
    describePromoContract(() => store, () => newPortal());
    describeRobotCallContract(() => store, () => newPortal());
    describeHealthContract(() => store, () => newPortal());
    describeLedgerSearchContract(() => store, () => newPortal());
    describeAnalyticsContract(() => store, () => newPortal());
    describeSegmentContract(() => store, () => newPortal());
    describeAnalyticsSummaryContract(() => store, () => newPortal());

    describe('installations', () => {
      it('a look-up after a write through the store never returns the stale installation', async () => {
        const portal = await newPortal({ applicationToken: 'first-token' });
        expect((await store.installations.findByMemberId(portal.memberId))?.applicationToken).toBe('first-token');
        await store.installations.setApplicationToken(portal.id, 'second-token');
        expect((await store.installations.findByMemberId(portal.memberId))?.applicationToken).toBe('second-token');
        await store.installations.markUninstalled(portal.id, NOW, false);
        expect((await store.installations.findByMemberId(portal.memberId))?.status).toBe('uninstalled');
        expect(await store.installations.findByMemberId(`unknown-${randomUUID()}`)).toBeNull();
      });

      it('walks new → active → uninstalled → (reinstall) new', async () => {
        const memberId = `member-${randomUUID()}`;
        const created = await store.installations.upsertVerified(verified(memberId, { applicationToken: 'app-token-1' }), NOW);
        expect(created).toMatchObject({ memberId, status: 'new', applicationToken: 'app-token-1', installedAt: null, uninstalledAt: null });
        expect(created.tokens).toEqual(tokens(memberId));

        await store.installations.activate(created.id, at(1));
        const active = await store.installations.get(created.id);
        expect(active).toMatchObject({ status: 'active', installedAt: at(1) });

        // Activating again is a no-op; re-verification keeps an active portal active.
        await store.installations.activate(created.id, at(2));
        const refreshed = await store.installations.upsertVerified(verified(memberId, { tokens: tokens('rotated') }), at(3));
        expect(refreshed).toMatchObject({ id: created.id, status: 'active', installedAt: at(1), applicationToken: 'app-token-1' });
        expect(refreshed.tokens).toEqual(tokens('rotated'));

        await store.installations.markUninstalled(created.id, at(4), false);
        const gone = await store.installations.findByMemberId(memberId);
        expect(gone).toMatchObject({ status: 'uninstalled', tokens: null, uninstalledAt: at(4), applicationToken: 'app-token-1' });

        // A token refresh racing the uninstall does not bring tokens back.
        await store.installations.saveTokens(created.id, tokens('late'));
        expect((await store.installations.get(created.id))?.tokens).toBeNull();
        await store.installations.activate(created.id, at(5));
        expect((await store.installations.get(created.id))?.status).toBe('uninstalled');

        const again = await store.installations.upsertVerified(verified(memberId, { tokens: tokens('again') }), at(6));
        expect(again).toMatchObject({ id: created.id, status: 'new', installedAt: null, uninstalledAt: null, applicationToken: 'app-token-1' });
        expect(again.tokens).toEqual(tokens('again'));
        await store.installations.activate(created.id, at(7));
        expect((await store.installations.get(created.id))?.status).toBe('active');
      });

      it('changes the application token only when one is given', async () => {
        const memberId = `member-${randomUUID()}`;
        const first = await store.installations.upsertVerified(verified(memberId), NOW);
        expect(first.applicationToken).toBeNull();
        await store.installations.setApplicationToken(first.id, 'app-token-A');
        expect((await store.installations.upsertVerified(verified(memberId), at(1))).applicationToken).toBe('app-token-A');
        expect((await store.installations.upsertVerified(verified(memberId, { applicationToken: 'app-token-B' }), at(2))).applicationToken).toBe('app-token-B');
        expect((await store.installations.upsertVerified(verified(memberId, { applicationToken: null }), at(3))).applicationToken).toBeNull();
      });

      it('saves rotated tokens and the registration report', async () => {
        const portal = await newPortal();
        await store.installations.saveTokens(portal.id, tokens('rotated'));
        const report = { at: NOW.toISOString(), created: ['UF_CRM_SARAFAN_CODE'], updated: [], failed: [{ item: 'placement', error: 'denied' }] };
        await store.installations.saveRegistration(portal.id, report);
        const stored = await store.installations.get(portal.id);
        expect(stored?.tokens).toEqual(tokens('rotated'));
        expect(stored?.registration).toEqual(report);
        expect(await store.installations.get(2_000_000_000)).toBeNull();
        expect(await store.installations.findByMemberId('no-such-member')).toBeNull();
      });

      it('keeps the robot definition hashes of the registration report, and drops them with a report that has none', async () => {
        const portal = await newPortal();
        const robots = { sarafan_accrue: 'a'.repeat(64), sarafan_promo: 'b'.repeat(64) };
        const report = { at: NOW.toISOString(), created: ['robot:sarafan_accrue'], updated: ['robot:sarafan_promo'], failed: [], robots };
        await store.installations.saveRegistration(portal.id, report);
        expect((await store.installations.get(portal.id))?.registration).toEqual(report);
        const withoutRobots = { at: NOW.toISOString(), created: [], updated: [], failed: [{ item: 'robot:sarafan_accrue', error: 'MISSING_SCOPE' }] };
        await store.installations.saveRegistration(portal.id, withoutRobots);
        expect((await store.installations.get(portal.id))?.registration).toEqual(withoutRobots);
      });

      it('keeps tokens encrypted at rest', async () => {
        const portal = await newPortal({ applicationToken: 'app-token-plaintext' });
        const [row] = await store.rawQuery('SELECT * FROM installations WHERE id = $1', [portal.id]);
        const raw = JSON.stringify(row);
        expect(raw).not.toContain('plaintext');
        for (const column of ['access_token_enc', 'refresh_token_enc', 'application_token_enc']) {
          expect(String(row?.[column])).toMatch(/^v1:[^:]+:[^:]+:[^:]+$/);
        }
        // Same plaintext, different envelopes (random IV).
        const other = await store.installations.upsertVerified(verified(`member-${randomUUID()}`, { tokens: portal.tokens! }), NOW);
        const [otherRow] = await store.rawQuery('SELECT access_token_enc FROM installations WHERE id = $1', [other.id]);
        expect(otherRow?.access_token_enc).not.toBe(row?.access_token_enc);
      });

      it('clean uninstall deletes every row of that portal and only of that portal', async () => {
        const tables = ['members', 'referral_codes', 'referrals', 'program_versions', 'ledger_entries', 'deals', 'history_deals', 'crm_projections', 'jobs', 'watermarks', 'referral_clicks'];
        const fill = async (portal: Installation) => {
          const referrer = await store.members.ensure(portal.id, 'contact', 1, NOW);
          await store.members.enroll(portal.id, referrer.id, 'CLEAN1', NOW);
          const referee = await store.members.ensure(portal.id, 'lead', 2, NOW);
          const ref = await store.referrals.record(referral(portal.id, referee, referrer));
          await store.programs.create(portal.id, { v: 1 }, null, NOW);
          await store.ledger.append([entry(portal.id, referrer.id, 'deal:7:referral:1')]);
          await store.deals.upsert({
            portalId: portal.id, dealId: 7, clientMemberId: referee.id, categoryId: 0, stageId: 'WON', stageSemantic: 'S',
            amount: 1000, currency: 'RUB', won: true, deleted: false, firstWonAt: NOW, programVersion: 1, referralId: ref.id, updatedAt: NOW,
          });
          await store.history.saveWins(portal.id, [{ dealId: 3, contactId: 2, leadId: null, categoryId: 0, amount: 1, currency: 'RUB', wonAt: NOW, createdAt: null }]);
          await store.projections.save(portal.id, 'deal', 7, { reward: 100 }, NOW);
          await store.jobs.enqueue({ portalId: portal.id, kind: 'crm.change', key: 'deal:7', payload: { entity: 'deal', id: 7 }, runAt: at(10_000) }, NOW);
          await store.watermarks.save(portal.id, 'reconcile.deal', NOW, NOW);
          await store.clicks.record({ portalId: portal.id, memberId: referrer.id, code: 'CLEAN1', clickedAt: NOW, visitorHash: 'h', agentClass: 'desktop' });
        };
        const a = await newPortal({ applicationToken: 'app-A' });
        const b = await newPortal();
        await fill(a);
        await fill(b);
        const expected = (table: string) => (table === 'members' ? 2 : 1);
        for (const table of tables) expect(await count(table, a.id), table).toBe(expected(table));

        await store.installations.markUninstalled(a.id, at(1), true);

        for (const table of tables) {
          expect(await count(table, a.id), `${table} of the uninstalled portal`).toBe(0);
          expect(await count(table, b.id), `${table} of the other portal`).toBe(expected(table));
        }
        expect(await store.installations.get(a.id)).toMatchObject({ status: 'uninstalled', tokens: null, applicationToken: 'app-A' });
        expect((await store.installations.get(b.id))?.status).toBe('new');
      });

      it('an uninstall without clean keeps the portal data', async () => {
        const portal = await newPortal();
        await store.members.ensure(portal.id, 'contact', 1, NOW);
        await store.programs.create(portal.id, { v: 1 }, null, NOW);
        await store.installations.markUninstalled(portal.id, NOW, false);
        expect(await count('members', portal.id)).toBe(1);
        expect(await count('program_versions', portal.id)).toBe(1);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('referral links: public ids and clicks', () => {
      it('gives every installation its own random public id and link salt, stable across updates', async () => {
        const a = await newPortal();
        const b = await newPortal();
        expect(a.publicId).toMatch(/^[0-9a-f]{20}$/);
        expect(a.linkSalt).toMatch(/^[0-9a-f]{32}$/);
        expect(b.publicId).not.toBe(a.publicId);
        expect(b.linkSalt).not.toBe(a.linkSalt);
        expect(a.publicId).not.toContain(a.memberId);
        const again = await store.installations.upsertVerified(verified(a.memberId), at(5));
        expect(again.publicId).toBe(a.publicId);
        expect(again.linkSalt).toBe(a.linkSalt);
        expect((await store.installations.findByPublicId(a.publicId))?.id).toBe(a.id);
        expect(await store.installations.findByPublicId('0000000000000000ffff')).toBeNull();
      });

      it("keeps the install wizard's language until another install says otherwise", async () => {
        const a = await newPortal();
        expect(a.lang).toBeNull();
        expect((await store.installations.upsertVerified(verified(a.memberId, { lang: 'en' }), at(1))).lang).toBe('en');
        expect((await store.installations.upsertVerified(verified(a.memberId), at(2))).lang).toBe('en');
        expect((await store.installations.upsertVerified(verified(a.memberId, { lang: 'ru' }), at(3))).lang).toBe('ru');
      });

      it('records clicks and reads them back per portal, in a time window, oldest first', async () => {
        const a = await newPortal();
        const b = await newPortal();
        const ma = await store.members.ensure(a.id, 'contact', 1, NOW);
        const mb = await store.members.ensure(b.id, 'contact', 1, NOW);
        const click = (portalId: number, memberId: number, minutes: number) =>
          store.clicks.record({ portalId, memberId, code: 'LINK22', clickedAt: at(minutes), visitorHash: `hash-${minutes}`, agentClass: 'mobile' });
        const second = await click(a.id, ma.id, 2);
        const first = await click(a.id, ma.id, 1);
        await click(a.id, ma.id, 10);
        await click(b.id, mb.id, 1);
        expect(first).toEqual({ id: expect.any(Number), portalId: a.id, memberId: ma.id, code: 'LINK22', clickedAt: at(1), visitorHash: 'hash-1', agentClass: 'mobile' });
        expect(await store.clicks.between(a.id, at(0), at(10))).toEqual([first, second]);
        expect((await store.clicks.between(b.id, at(0), at(60))).map((c) => c.portalId)).toEqual([b.id]);
      });

      it("refuses a click of another portal's member and an unknown agent class", async () => {
        const a = await newPortal();
        const b = await newPortal();
        const mb = await store.members.ensure(b.id, 'contact', 1, NOW);
        await expect(store.clicks.record({ portalId: a.id, memberId: mb.id, code: 'X', clickedAt: NOW, visitorHash: 'h', agentClass: 'desktop' })).rejects.toThrow();
        const ma = await store.members.ensure(a.id, 'contact', 1, NOW);
        await expect(store.clicks.record({ portalId: a.id, memberId: ma.id, code: 'X', clickedAt: NOW, visitorHash: 'h', agentClass: 'tablet' as never })).rejects.toThrow();
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('portal isolation', () => {
      it("never returns another portal's rows", async () => {
        const a = await newPortal();
        const b = await newPortal();
        // The same CRM ids, deal ids, codes and job keys on both portals.
        const setUp = async (portal: Installation, tag: string) => {
          const referrer = await store.members.ensure(portal.id, 'contact', 10, NOW);
          const enrolled = await store.members.enroll(portal.id, referrer.id, 'SAME01', NOW);
          expect(enrolled).not.toBe('code_taken');
          const referee = await store.members.ensure(portal.id, 'contact', 11, NOW);
          await store.referrals.record(referral(portal.id, referee, referrer));
          await store.programs.create(portal.id, { tag }, null, NOW);
          await store.ledger.append([entry(portal.id, referrer.id, 'deal:5:referral:1', { dealId: 5, amount: tag === 'A' ? 100 : 900 })]);
          await store.deals.upsert({
            portalId: portal.id, dealId: 5, clientMemberId: referee.id, categoryId: 0, stageId: 'WON', stageSemantic: 'S',
            amount: tag === 'A' ? 1000 : 9000, currency: 'RUB', won: true, deleted: false, firstWonAt: NOW, programVersion: 1, referralId: null, updatedAt: NOW,
          });
          await store.projections.save(portal.id, 'contact', 10, { tier: tag }, NOW);
          expect(await store.jobs.enqueue({ portalId: portal.id, kind: 'crm.change', key: 'deal:5', payload: { tag }, runAt: at(10_000) }, NOW)).toBe(true);
          return { referrer, referee };
        };
        const inA = await setUp(a, 'A');
        const inB = await setUp(b, 'B');

        expect((await store.members.findByEntity(a.id, 'contact', 10))?.id).toBe(inA.referrer.id);
        expect((await store.members.findByCode(a.id, 'same01'))?.id).toBe(inA.referrer.id);
        expect(await store.members.get(a.id, inB.referrer.id)).toBeNull();
        expect(await store.members.getMany(a.id, [inB.referrer.id, inB.referee.id])).toEqual([]);
        expect(await store.referrals.activeFor(a.id, inB.referee.id)).toBeNull();
        expect(await store.referrals.chain(a.id, inB.referee.id, 5)).toEqual([]);
        const referralOfB = await store.referrals.activeFor(b.id, inB.referee.id);
        expect(await store.referrals.get(a.id, referralOfB!.id)).toBeNull();
        expect(await store.referrals.countByReferrer(a.id, [inB.referrer.id])).toEqual(new Map([[inB.referrer.id, 0]]));
        expect((await store.programs.current(a.id))?.document).toEqual({ tag: 'A' });
        expect((await store.ledger.forDeal(a.id, 5)).map((e) => e.amount)).toEqual([100]);
        expect((await store.ledger.forDeals(a.id, [5])).map((e) => e.amount)).toEqual([100]);
        expect(await store.ledger.forMember(a.id, inB.referrer.id, { limit: 10 })).toEqual([]);
        expect(await store.ledger.balances(a.id, [inB.referrer.id], at(1))).toEqual(new Map([[inB.referrer.id, { available: 0, pending: 0 }]]));
        expect((await store.deals.get(a.id, 5))?.amount).toBe(1000);
        expect((await store.deals.getMany(a.id, [5])).map((d) => d.amount)).toEqual([1000]);
        expect(await store.deals.forClient(a.id, inB.referee.id)).toEqual([]);
        expect(await store.projections.getMany(a.id, [{ entity: 'contact', entityId: 10 }])).toEqual(new Map([['contact:10', { tier: 'A' }]]));
        expect(await store.jobs.depth(a.id)).toEqual({ queued: 1, running: 0, dead: 0 });
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('members and codes', () => {
      it('a lead’s member follows the lead’s conversion into a contact, once', async () => {
        const portal = await newPortal();
        const lead = await store.members.ensure(portal.id, 'lead', 501, NOW);
        const moved = await store.members.attachContact(portal.id, lead.id, 601);
        expect(moved).toMatchObject({ id: lead.id, leadId: 501, contactId: 601 });
        expect((await store.members.findByEntity(portal.id, 'contact', 601))?.id).toBe(lead.id);
        // Already bound to a contact: a second contact does not take it over.
        expect(await store.members.attachContact(portal.id, lead.id, 602)).toBeNull();
        // A contact with a member of its own keeps it.
        const own = await store.members.ensure(portal.id, 'contact', 603, NOW);
        const other = await store.members.ensure(portal.id, 'lead', 502, NOW);
        expect((await store.members.attachContact(portal.id, other.id, 603))?.id).toBe(own.id);
        expect((await store.members.get(portal.id, other.id))?.contactId).toBeNull();
      });

      it('ensure is race-safe: 20 parallel ensures make one member', async () => {
        const portal = await newPortal();
        const results = await Promise.all(Array.from({ length: 20 }, () => store.members.ensure(portal.id, 'contact', 42, NOW)));
        expect(new Set(results.map((m) => m.id)).size).toBe(1);
        expect(await count('members', portal.id)).toBe(1);
        expect(results[0]).toMatchObject({ portalId: portal.id, contactId: 42, leadId: null, code: null, joinedAt: null });

        const leads = await Promise.all(Array.from({ length: 5 }, () => store.members.ensure(portal.id, 'lead', 42, NOW)));
        expect(new Set(leads.map((m) => m.id)).size).toBe(1);
        expect(leads[0]?.id).not.toBe(results[0]?.id);
        expect(await count('members', portal.id)).toBe(2);
        expect((await store.members.findByEntity(portal.id, 'lead', 42))?.id).toBe(leads[0]?.id);
        expect(await store.members.findByEntity(portal.id, 'lead', 43)).toBeNull();
      });

      it('enroll gives one code, upper-case, and a joined date', async () => {
        const portal = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const enrolled = await store.members.enroll(portal.id, member.id, 'ab2cd3', at(1));
        expect(enrolled).toMatchObject({ id: member.id, code: 'AB2CD3', joinedAt: at(1) });

        // Already enrolled: unchanged, and no second code is recorded.
        const again = await store.members.enroll(portal.id, member.id, 'ZZZ999', at(2));
        expect(again).toMatchObject({ code: 'AB2CD3', joinedAt: at(1) });
        expect(await count('referral_codes', portal.id)).toBe(1);
        expect(await store.members.findByCode(portal.id, 'ZZZ999')).toBeNull();

        expect((await store.members.findByCode(portal.id, 'ab2cd3'))?.id).toBe(member.id);
        expect((await store.members.findByCode(portal.id, 'AB2CD3'))?.id).toBe(member.id);
        expect(await store.members.findByCode(portal.id, 'AB2CD4')).toBeNull();
      });

      it('a code is unique per portal and never reused', async () => {
        const portal = await newPortal();
        const first = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const second = await store.members.ensure(portal.id, 'contact', 2, NOW);
        expect(await store.members.enroll(portal.id, first.id, 'KEEP77', NOW)).not.toBe('code_taken');
        expect(await store.members.enroll(portal.id, second.id, 'keep77', NOW)).toBe('code_taken');
        expect((await store.members.get(portal.id, second.id))?.code).toBeNull();

        // Even once the code is retired from its member, it stays taken and still finds its owner.
        await store.rawQuery('UPDATE members SET code = NULL WHERE portal_id = $1 AND id = $2', [portal.id, first.id]);
        expect(await store.members.enroll(portal.id, second.id, 'KEEP77', NOW)).toBe('code_taken');
        expect((await store.members.findByCode(portal.id, 'keep77'))?.id).toBe(first.id);
        expect(await store.members.enroll(portal.id, second.id, 'NEW888', NOW)).toMatchObject({ code: 'NEW888' });
      });

      it('enrolling an unknown member is not_found', async () => {
        const portal = await newPortal();
        await expect(store.members.enroll(portal.id, 987_654_321, 'NOPE22', NOW)).rejects.toSatisfy(
          (e: unknown) => e instanceof AppError && e.code === 'not_found',
        );
        expect(await count('referral_codes', portal.id)).toBe(0);
      });

      it('getMany returns the requested members', async () => {
        const portal = await newPortal();
        const m1 = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const m2 = await store.members.ensure(portal.id, 'contact', 2, NOW);
        await store.members.ensure(portal.id, 'contact', 3, NOW);
        expect((await store.members.getMany(portal.id, [m2.id, m1.id])).map((m) => m.id).sort()).toEqual([m1.id, m2.id].sort());
        expect(await store.members.getMany(portal.id, [])).toEqual([]);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('referrals', () => {
      it('keeps one active referral per referee: first attribution wins', async () => {
        const portal = await newPortal();
        const [referee, first, second] = await Promise.all([1, 2, 3].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const won = await store.referrals.record(referral(portal.id, referee!, first!, { sourceRef: 'deal:1' }));
        const lost = await store.referrals.record(referral(portal.id, referee!, second!, { sourceRef: 'deal:2' }));
        expect(lost).toEqual(won);
        expect(won).toMatchObject({ refereeMemberId: referee!.id, referrerMemberId: first!.id, status: 'active', sourceRef: 'deal:1' });
        expect(await store.referrals.activeFor(portal.id, referee!.id)).toEqual(won);
        expect(await count('referrals', portal.id)).toBe(1);
      });

      it('records a rejection once per (referee, referrer, reason)', async () => {
        const portal = await newPortal();
        const [referee, referrer] = await Promise.all([1, 2].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const cycle = referral(portal.id, referee!, referrer!, { status: 'rejected', rejectReason: 'cycle' });
        const r1 = await store.referrals.record(cycle);
        const r2 = await store.referrals.record({ ...cycle, sourceRef: 'deal:9', createdAt: at(1) });
        expect(r2.id).toBe(r1.id);
        expect(r1).toMatchObject({ status: 'rejected', rejectReason: 'cycle' });
        const other = await store.referrals.record({ ...cycle, rejectReason: 'self_referral' });
        expect(other.id).not.toBe(r1.id);
        const unknown = referral(portal.id, referee!, null, { status: 'rejected', rejectReason: 'unknown_code', code: 'NOSUCH' });
        const u1 = await store.referrals.record(unknown);
        const u2 = await store.referrals.record(unknown);
        expect(u2.id).toBe(u1.id);
        expect(await count('referrals', portal.id)).toBe(3);
        // Rejections do not occupy the active place.
        expect(await store.referrals.activeFor(portal.id, referee!.id)).toBeNull();
        expect((await store.referrals.record(referral(portal.id, referee!, referrer!))).status).toBe('active');
      });

      it('walks the referrer chain up to a depth, ignoring rejections and stopping on cycles', async () => {
        const portal = await newPortal();
        const m = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const [a, b, c, d, e, f, g, x] = m as [Member, Member, Member, Member, Member, Member, Member, Member];
        // d ← referred by c ← by b ← by a
        await store.referrals.record(referral(portal.id, b, a));
        await store.referrals.record(referral(portal.id, c, b));
        await store.referrals.record(referral(portal.id, d, c));
        await store.referrals.record(referral(portal.id, a, x, { status: 'rejected', rejectReason: 'already_customer' }));
        expect(await store.referrals.chain(portal.id, d.id, 2)).toEqual([c.id, b.id]);
        expect(await store.referrals.chain(portal.id, d.id, 10)).toEqual([c.id, b.id, a.id]);
        expect(await store.referrals.chain(portal.id, a.id, 10)).toEqual([]);
        expect(await store.referrals.chain(portal.id, d.id, 0)).toEqual([]);

        // e ← f ← g ← e: a cycle (the store does not judge, the rules reject cycles before recording).
        await store.referrals.record(referral(portal.id, e, f));
        await store.referrals.record(referral(portal.id, f, g));
        await store.referrals.record(referral(portal.id, g, e));
        expect(await store.referrals.chain(portal.id, e.id, 10)).toEqual([f.id, g.id]);
        expect(await store.referrals.chain(portal.id, g.id, 10)).toEqual([e.id, f.id]);
      });

      it('gets a referral by id', async () => {
        const portal = await newPortal();
        const [referee, referrer] = await Promise.all([1, 2].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const recorded = await store.referrals.record(referral(portal.id, referee!, referrer!, { code: 'ABC234' }));
        expect(await store.referrals.get(portal.id, recorded.id)).toEqual(recorded);
        expect(await store.referrals.get(portal.id, recorded.id + 1000)).toBeNull();
      });

      it('counts active referrals per referrer', async () => {
        const portal = await newPortal();
        const m = await Promise.all([1, 2, 3, 4, 5].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const [a, b, r1, r2, r3] = m as [Member, Member, Member, Member, Member];
        await store.referrals.record(referral(portal.id, r1, a));
        await store.referrals.record(referral(portal.id, r2, a));
        await store.referrals.record(referral(portal.id, r3, b, { status: 'rejected', rejectReason: 'self_referral' }));
        expect(await store.referrals.countByReferrer(portal.id, [a.id, b.id])).toEqual(new Map([[a.id, 2], [b.id, 0]]));
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('referral overrides and CRM feedback', () => {
      it('turns a rejection into an active referral with who, when and why, keeping the reason', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const [referee, referrer, third] = await Promise.all([1, 2, 3].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const rejected = await store.referrals.record(referral(portal.id, referee!, referrer!, { status: 'rejected', rejectReason: 'already_customer' }));
        expect(rejected.override).toBeNull();
        // Another portal cannot reach it.
        expect(await store.referrals.override(other.id, rejected.id, { by: 9, at: at(5), comment: 'x' })).toBeNull();
        const done = await store.referrals.override(portal.id, rejected.id, { by: 7, at: at(10), comment: 'Покупал до программы, но пришёл по рекомендации' });
        expect(done).toMatchObject({
          id: rejected.id,
          status: 'active',
          rejectReason: 'already_customer',
          override: { by: 7, at: at(10), comment: 'Покупал до программы, но пришёл по рекомендации' },
        });
        expect(await store.referrals.activeFor(portal.id, referee!.id)).toEqual(done);
        expect(await store.referrals.chain(portal.id, referee!.id, 5)).toEqual([referrer!.id]);
        // Twice is refused: it is no longer a rejection.
        expect(await store.referrals.override(portal.id, rejected.id, { by: 7, at: at(11), comment: 'again' })).toBe('not_rejected');
        // A rejection without a referrer (unknown code) cannot become a referral.
        const unknown = await store.referrals.record(referral(portal.id, third!, null, { status: 'rejected', rejectReason: 'unknown_code', code: 'NOSUCH' }));
        expect(await store.referrals.override(portal.id, unknown.id, { by: 7, at: at(12), comment: 'x' })).toBe('no_referrer');
        // A referee that has an active referral keeps it: first attribution wins.
        const second = await store.referrals.record(referral(portal.id, referee!, third!, { status: 'rejected', rejectReason: 'cycle' }));
        expect(await store.referrals.override(portal.id, second.id, { by: 7, at: at(13), comment: 'x' })).toBe('referee_has_referral');
        expect((await store.referrals.get(portal.id, second.id))?.status).toBe('rejected');
        expect(await store.referrals.override(portal.id, 999_999, { by: 7, at: at(13), comment: 'x' })).toBeNull();
      });

      it('lists referrals by status, newest first, paged, within the portal; and every referral of referees', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const m = await Promise.all([1, 2, 3, 4].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const [a, b, c, d] = m as [Member, Member, Member, Member];
        const r1 = await store.referrals.record(referral(portal.id, b, a, { status: 'rejected', rejectReason: 'self_referral' }));
        const r2 = await store.referrals.record(referral(portal.id, c, a, { status: 'rejected', rejectReason: 'cycle' }));
        const r3 = await store.referrals.record(referral(portal.id, d, a));
        const r4 = await store.referrals.record(referral(portal.id, b, c, { status: 'rejected', rejectReason: 'already_customer' }));
        const o = await store.members.ensure(other.id, 'contact', 1, NOW);
        const o2 = await store.members.ensure(other.id, 'contact', 2, NOW);
        await store.referrals.record(referral(other.id, o, o2, { status: 'rejected', rejectReason: 'cycle' }));
        expect((await store.referrals.list(portal.id, { status: 'rejected', limit: 10 })).map((r) => r.id)).toEqual([r4.id, r2.id, r1.id]);
        expect((await store.referrals.list(portal.id, { status: 'rejected', limit: 2 })).map((r) => r.id)).toEqual([r4.id, r2.id]);
        expect((await store.referrals.list(portal.id, { status: 'rejected', limit: 2, beforeId: r2.id })).map((r) => r.id)).toEqual([r1.id]);
        expect((await store.referrals.list(portal.id, { status: 'active', limit: 10 })).map((r) => r.id)).toEqual([r3.id]);
        expect((await store.referrals.ofReferees(portal.id, [b.id, d.id])).map((r) => r.id)).toEqual([r4.id, r3.id, r1.id]);
        expect(await store.referrals.ofReferees(portal.id, [])).toEqual([]);
        expect(await store.referrals.ofReferees(other.id, [b.id])).toEqual([]);
        // By referrer: active and rejected, oldest first, capped, within the portal.
        expect((await store.referrals.ofReferrers(portal.id, [a.id, c.id], 10)).map((r) => r.id)).toEqual([r1.id, r2.id, r3.id, r4.id]);
        expect((await store.referrals.ofReferrers(portal.id, [a.id], 2)).map((r) => r.id)).toEqual([r1.id, r2.id]);
        expect(await store.referrals.ofReferrers(portal.id, [], 10)).toEqual([]);
        expect(await store.referrals.ofReferrers(portal.id, [a.id], 0)).toEqual([]);
        expect(await store.referrals.ofReferrers(other.id, [a.id], 10)).toEqual([]);
      });

      it('records a feedback message once per key and hands out queued ones until they are sent', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const deal = { key: 'entry:1:deal', to: { entity: 'deal' as const, id: 12 }, text: 'Сарафан: награда' };
        const note = { key: 'entry:1:notify', to: { userId: 5 }, text: 'Reward' };
        expect(await store.feedback.record(portal.id, [deal, note, deal], NOW)).toBe(2);
        expect(await store.feedback.record(portal.id, [deal, { ...note, text: 'changed' }], at(1))).toBe(0);
        expect(await store.feedback.record(other.id, [deal], NOW)).toBe(1);
        const queued = await store.feedback.queued(portal.id, 10);
        expect(queued.map((m) => [m.key, m.to, m.text, m.status, m.attempts])).toEqual([
          ['entry:1:deal', { entity: 'deal', id: 12 }, 'Сарафан: награда', 'queued', 0],
          ['entry:1:notify', { userId: 5 }, 'Reward', 'queued', 0],
        ]);
        expect(await store.feedback.queued(portal.id, 1)).toHaveLength(1);
        // Marks of another portal's ids change nothing here.
        await store.feedback.markSent(other.id, queued.map((m) => m.id), at(2));
        expect(await store.feedback.queued(portal.id, 10)).toHaveLength(2);
        await store.feedback.markSent(portal.id, [queued[0]!.id], at(2));
        await store.feedback.markFailed(portal.id, [{ id: queued[1]!.id, error: 'QUERY_LIMIT_EXCEEDED', dead: false }]);
        const left = await store.feedback.queued(portal.id, 10);
        expect(left.map((m) => [m.key, m.attempts, m.lastError])).toEqual([['entry:1:notify', 1, 'QUERY_LIMIT_EXCEEDED']]);
        await store.feedback.markFailed(portal.id, [{ id: queued[1]!.id, error: 'gone', dead: true }]);
        expect(await store.feedback.queued(portal.id, 10)).toEqual([]);
        // Sent and dead messages stay recorded: their keys are never queued again.
        expect(await store.feedback.record(portal.id, [deal, note], at(3))).toBe(0);
        expect((await store.feedback.byKeyPrefix(portal.id, 'entry:1:')).map((m) => [m.key, m.status, m.sentAt?.toISOString() ?? null])).toEqual([
          ['entry:1:deal', 'sent', at(2).toISOString()],
          ['entry:1:notify', 'dead', null],
        ]);
        expect(await store.feedback.byKeyPrefix(portal.id, 'entry_')).toEqual([]);
        expect((await store.feedback.queued(other.id, 10)).map((m) => m.key)).toEqual(['entry:1:deal']);
      });

      it('deletes feedback with a clean uninstall', async () => {
        const portal = await newPortal();
        await store.feedback.record(portal.id, [{ key: 'k', to: { entity: 'contact', id: 1 }, text: 't' }], NOW);
        await store.installations.markUninstalled(portal.id, at(1), true);
        expect(await count('feedback_messages', portal.id)).toBe(0);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('program versions', () => {
      it('numbers versions current + 1', async () => {
        const portal = await newPortal();
        expect(await store.programs.current(portal.id)).toBeNull();
        const v1 = await store.programs.create(portal.id, { currency: 'RUB', levels: [{ percent: 10 }] }, 5, NOW);
        const v2 = await store.programs.create(portal.id, { currency: 'USD' }, null, at(1));
        expect(v1).toEqual({ portalId: portal.id, version: 1, document: { currency: 'RUB', levels: [{ percent: 10 }] }, createdAt: NOW, createdBy: 5 });
        expect(v2.version).toBe(2);
        expect(await store.programs.current(portal.id)).toEqual(v2);
        expect(await store.programs.get(portal.id, 1)).toEqual(v1);
        expect(await store.programs.get(portal.id, 3)).toBeNull();
        // Stored as a JSON object, not a JSON string.
        const [row] = await store.rawQuery("SELECT document->>'currency' AS currency FROM program_versions WHERE portal_id = $1 AND version = 1", [portal.id]);
        expect(row?.currency).toBe('RUB');
      });

      it('10 concurrent creates get versions 1..10', async () => {
        const portal = await newPortal();
        const created = await Promise.all(Array.from({ length: 10 }, (_, i) => store.programs.create(portal.id, { n: i }, null, NOW)));
        expect(created.map((v) => v.version).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        const stored = await store.rawQuery<{ n: string }>("SELECT document->>'n' AS n FROM program_versions WHERE portal_id = $1", [portal.id]);
        expect(stored.map((r) => Number(r.n)).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      });

      it('lists a portal\'s versions newest first, at most the limit, never another portal\'s', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        expect(await store.programs.list(portal.id, 50)).toEqual([]);
        for (let i = 1; i <= 4; i++) await store.programs.create(portal.id, { n: i }, i === 1 ? null : 7, at(i));
        await store.programs.create(other.id, { n: 'other' }, 9, at(9));
        const all = await store.programs.list(portal.id, 50);
        expect(all.map((v) => [v.version, v.document, v.createdBy, v.createdAt])).toEqual([
          [4, { n: 4 }, 7, at(4)],
          [3, { n: 3 }, 7, at(3)],
          [2, { n: 2 }, 7, at(2)],
          [1, { n: 1 }, null, at(1)],
        ]);
        expect(all.every((v) => v.portalId === portal.id)).toBe(true);
        expect((await store.programs.list(portal.id, 2)).map((v) => v.version)).toEqual([4, 3]);
        expect((await store.programs.list(other.id, 50)).map((v) => v.document)).toEqual([{ n: 'other' }]);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('ledger', () => {
      it('appends once per idempotency key and reports duplicates', async () => {
        const portal = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const first = await store.ledger.append([entry(portal.id, member.id, 'k1', { amount: 150 }), entry(portal.id, member.id, 'k2', { amount: -20, kind: 'correction' })]);
        expect(first.duplicates).toEqual([]);
        expect(first.inserted.map((e) => [e.idempotencyKey, e.amount])).toEqual([['k1', 150], ['k2', -20]]);
        expect(first.inserted[0]).toMatchObject({ ...entry(portal.id, member.id, 'k1', { amount: 150 }), id: expect.any(Number) });

        const second = await store.ledger.append([entry(portal.id, member.id, 'k1', { amount: 999 }), entry(portal.id, member.id, 'k3')]);
        expect(second.duplicates).toEqual(['k1']);
        expect(second.inserted.map((e) => e.idempotencyKey)).toEqual(['k3']);

        const within = await store.ledger.append([entry(portal.id, member.id, 'k4'), entry(portal.id, member.id, 'k4')]);
        expect(within.inserted).toHaveLength(1);
        expect(within.duplicates).toEqual(['k4']);
        expect(await store.ledger.append([])).toEqual({ inserted: [], duplicates: [] });

        const stored = await store.rawQuery<{ idempotency_key: string; amount: string | number }>(
          'SELECT idempotency_key, amount FROM ledger_entries WHERE portal_id = $1 ORDER BY id',
          [portal.id],
        );
        expect(stored.map((r) => [r.idempotency_key, Number(r.amount)])).toEqual([['k1', 150], ['k2', -20], ['k3', 100], ['k4', 100]]);
      });

      it('derives available and pending balances at a given time', async () => {
        const portal = await newPortal();
        const [a, b, none] = await Promise.all([1, 2, 3].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        await store.ledger.append([
          entry(portal.id, a!.id, 'a1', { amount: 1000, availableAt: at(-60) }),
          entry(portal.id, a!.id, 'a2', { amount: 500, availableAt: at(60) }),
          entry(portal.id, a!.id, 'a3', { amount: -300, availableAt: NOW, reason: 'redemption', kind: 'correction' }),
          entry(portal.id, b!.id, 'b1', { amount: 70, availableAt: at(30) }),
        ]);
        expect(await store.ledger.balances(portal.id, [a!.id, b!.id, none!.id], NOW)).toEqual(
          new Map([
            [a!.id, { available: 700, pending: 500 }],
            [b!.id, { available: 0, pending: 70 }],
            [none!.id, { available: 0, pending: 0 }],
          ]),
        );
        expect((await store.ledger.balances(portal.id, [a!.id], at(60))).get(a!.id)).toEqual({ available: 1200, pending: 0 });
        expect(await store.ledger.balances(portal.id, [], NOW)).toEqual(new Map());
      });

      it('finds the members whose held entries became available in a window', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map((id) => store.members.ensure(portal.id, 'contact', id, NOW)));
        const elsewhere = await store.members.ensure(other.id, 'contact', 1, NOW);
        await store.ledger.append([
          entry(portal.id, a!.id, 'a-held', { availableAt: at(60) }),
          entry(portal.id, a!.id, 'a-held-2', { availableAt: at(90) }),
          entry(portal.id, b!.id, 'b-held', { availableAt: at(120) }), // boundary: in (60, 120]
          entry(portal.id, c!.id, 'c-at-once', { availableAt: at(90), createdAt: at(90) }), // never pending
          entry(portal.id, d!.id, 'd-later', { availableAt: at(121) }),
          entry(other.id, elsewhere.id, 'other', { availableAt: at(90) }),
        ]);
        expect(await store.ledger.maturing(portal.id, at(60), at(120))).toEqual([a!.id, b!.id].sort((x, y) => x - y));
        expect(await store.ledger.maturing(portal.id, at(0), at(60))).toEqual([a!.id]);
        expect(await store.ledger.maturing(portal.id, at(121), at(1000))).toEqual([]);
      });

      it('concurrent appends of one key from parallel transactions store one row', async () => {
        const portal = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        let firstAppended!: () => void;
        const appended = new Promise<void>((resolve) => (firstAppended = resolve));
        const tx1 = store.transaction(async (tx) => {
          const result = await tx.ledger.append([entry(portal.id, member.id, 'race', { amount: 1 })]);
          firstAppended();
          await anotherSessionWaits(); // the second transaction has met our uncommitted row
          return result;
        });
        await appended;
        const tx2 = store.transaction((tx) => tx.ledger.append([entry(portal.id, member.id, 'race', { amount: 2 })]));
        const [r1, r2] = await Promise.all([tx1, tx2]);
        expect(r1.inserted).toHaveLength(1);
        expect(r2).toEqual({ inserted: [], duplicates: ['race'] });
        expect(await count('ledger_entries', portal.id)).toBe(1);
        expect((await store.ledger.forMember(portal.id, member.id, { limit: 5 }))[0]?.amount).toBe(1);
      });

      it('lists by deal and pages by member, newest first', async () => {
        const portal = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        await store.ledger.append(Array.from({ length: 5 }, (_, i) => entry(portal.id, member.id, `p${i}`, { amount: i + 1, dealId: i % 2 ? 20 : 21 })));
        expect((await store.ledger.forDeal(portal.id, 20)).map((e) => e.amount)).toEqual([2, 4]);
        const page1 = await store.ledger.forMember(portal.id, member.id, { limit: 2 });
        expect(page1.map((e) => e.amount)).toEqual([5, 4]);
        const page2 = await store.ledger.forMember(portal.id, member.id, { limit: 2, beforeId: page1[1]!.id });
        expect(page2.map((e) => e.amount)).toEqual([3, 2]);
        expect((await store.ledger.forDeals(portal.id, [21, 20])).map((e) => e.amount)).toEqual([1, 2, 3, 4, 5]);
        expect((await store.ledger.forDeals(portal.id, [21, 99])).map((e) => e.amount)).toEqual([1, 3, 5]);
        expect(await store.ledger.forDeals(portal.id, [])).toEqual([]);
      });

      it('pages the portal\'s entries for an export: ascending ids, a [from, to) window, its portal only', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const elsewhere = await store.members.ensure(other.id, 'contact', 1, NOW);
        const day = (d: number) => new Date(Date.UTC(2026, 10, d, 12));
        await store.ledger.append([
          ...[1, 2, 3, 4, 5].map((d) => entry(portal.id, member.id, `x${d}`, { amount: d, createdAt: day(d) })),
          entry(other.id, elsewhere.id, 'y1', { amount: 100, createdAt: day(3) }),
        ]);
        const all = await store.ledger.page(portal.id, { limit: 10 });
        expect(all.map((e) => e.amount)).toEqual([1, 2, 3, 4, 5]);
        const first = await store.ledger.page(portal.id, { limit: 2 });
        const next = await store.ledger.page(portal.id, { limit: 2, afterId: first[1]!.id });
        expect([first, next].map((p) => p.map((e) => e.amount))).toEqual([[1, 2], [3, 4]]);
        expect((await store.ledger.page(portal.id, { limit: 10, from: day(2), to: day(4) })).map((e) => e.amount)).toEqual([2, 3]);
        expect((await store.ledger.page(other.id, { limit: 10 })).map((e) => e.amount)).toEqual([100]);
      });

      it('finds an entry by its idempotency key, within its portal only', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const elsewhere = await store.members.ensure(other.id, 'contact', 1, NOW);
        await store.ledger.append([
          entry(portal.id, member.id, 'adjust:1:key:abc', { amount: -250, reason: 'adjustment', kind: 'correction', dealId: null, level: 0, comment: 'why', causedBy: 'user:7' }),
          entry(other.id, elsewhere.id, 'adjust:1:key:other', { amount: 5 }),
        ]);
        expect(await store.ledger.byKey(portal.id, 'adjust:1:key:abc')).toMatchObject({ memberId: member.id, amount: -250, reason: 'adjustment', comment: 'why', causedBy: 'user:7' });
        expect(await store.ledger.byKey(portal.id, 'adjust:1:key:other')).toBeNull();
        expect(await store.ledger.byKey(other.id, 'adjust:1:key:abc')).toBeNull();
      });

      it('is append-only in the database', async () => {
        const portal = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        await store.ledger.append([entry(portal.id, member.id, 'fixed', { amount: 10 })]);
        await expect(store.rawQuery('UPDATE ledger_entries SET amount = 1000 WHERE portal_id = $1', [portal.id])).rejects.toThrow(/append-only/);
        expect((await store.ledger.forMember(portal.id, member.id, { limit: 1 }))[0]?.amount).toBe(10);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('deals and projections', () => {
      it('upserts, gets and lists deals by client', async () => {
        const portal = await newPortal();
        const client = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const deal = {
          portalId: portal.id, dealId: 100, clientMemberId: client.id, categoryId: 2, stageId: 'C2:NEW', stageSemantic: 'P' as const,
          amount: 123_456_789_012, currency: 'RUB', won: false, deleted: false, firstWonAt: null, programVersion: null, referralId: null, updatedAt: NOW,
          fxCurrency: null, fxRate: null,
        };
        await store.deals.upsert(deal);
        expect(await store.deals.get(portal.id, 100)).toEqual(deal);
        const won = { ...deal, stageId: 'C2:WON', stageSemantic: 'S' as const, won: true, firstWonAt: at(1), programVersion: 3, updatedAt: at(1) };
        await store.deals.upsert(won);
        await store.deals.upsert({ ...deal, dealId: 101, clientMemberId: null });
        expect(await store.deals.get(portal.id, 100)).toEqual(won);
        expect(await store.deals.getMany(portal.id, [101, 100, 999])).toEqual([won, { ...deal, dealId: 101, clientMemberId: null }]);
        expect(await store.deals.forClient(portal.id, client.id)).toEqual([won]);
        expect(await store.deals.get(portal.id, 999)).toBeNull();
        expect(await count('deals', portal.id)).toBe(2);
      });

      it('merges projection values key by key', async () => {
        const portal = await newPortal();
        await store.projections.save(portal.id, 'deal', 1, { reward: 1, code: 'two' }, NOW);
        await store.projections.save(portal.id, 'deal', 1, { code: 'three', tier: null }, at(1));
        await store.projections.save(portal.id, 'contact', 1, { balance: 4 }, NOW);
        const got = await store.projections.getMany(portal.id, [
          { entity: 'deal', entityId: 1 },
          { entity: 'contact', entityId: 1 },
          { entity: 'lead', entityId: 1 },
        ]);
        expect(got).toEqual(new Map<string, unknown>([['deal:1', { reward: 1, code: 'three', tier: null }], ['contact:1', { balance: 4 }]]));
        expect(await store.projections.getMany(portal.id, [])).toEqual(new Map());
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('history before the install', () => {
      const win = (dealId: number, over: Partial<HistoricalWin> = {}): HistoricalWin => ({
        dealId, contactId: null, leadId: null, categoryId: 0, amount: 100_00, currency: 'RUB', wonAt: NOW, createdAt: at(-600), ...over,
      });

      it('records wins by deal, a second reading replacing the first', async () => {
        const portal = await newPortal();
        await store.history.saveWins(portal.id, [win(1, { contactId: 7 }), win(2, { leadId: 3, categoryId: 2, amount: 123_456_789_012, currency: 'USD', createdAt: null })]);
        await store.history.saveWins(portal.id, [win(1, { contactId: 8, amount: 5, wonAt: at(5) }), win(1, { contactId: 9, amount: 6, wonAt: at(6) })]);
        await store.history.saveWins(portal.id, []);
        const rows = await store.rawQuery<Record<string, unknown>>(
          'SELECT deal_id, contact_id, lead_id, category_id, amount, currency, won_at, created_at FROM history_deals WHERE portal_id = $1 ORDER BY deal_id',
          [portal.id],
        );
        expect(rows.map((r) => ({ ...r, amount: Number(r.amount), won_at: new Date(r.won_at as string).toISOString(), created_at: r.created_at && new Date(r.created_at as string).toISOString() }))).toEqual([
          { deal_id: 1, contact_id: 9, lead_id: null, category_id: 0, amount: 6, currency: 'RUB', won_at: at(6).toISOString(), created_at: at(-600).toISOString() },
          { deal_id: 2, contact_id: null, lead_id: 3, category_id: 2, amount: 123_456_789_012, currency: 'USD', won_at: NOW.toISOString(), created_at: null },
        ]);
      });

      it('answers the earliest win of each person, by contact and by lead, within the portal', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        await store.history.saveWins(portal.id, [
          win(10, { contactId: 1, wonAt: at(30) }),
          win(11, { contactId: 1, wonAt: at(-30) }),
          win(12, { contactId: 2, leadId: 5, wonAt: at(10) }),
          win(13, { leadId: 5, wonAt: at(20) }),
          win(14, { leadId: 6, wonAt: at(1) }),
        ]);
        await store.history.saveWins(other.id, [win(10, { contactId: 3, wonAt: at(-99) }), win(20, { contactId: 1, wonAt: at(-99) })]);
        const first = await store.history.firstWonAt(portal.id, [
          { entity: 'contact', id: 1 },
          { entity: 'contact', id: 1 },
          { entity: 'contact', id: 2 },
          { entity: 'contact', id: 3 },
          { entity: 'contact', id: 5 },
          { entity: 'lead', id: 5 },
          { entity: 'lead', id: 1 },
        ]);
        expect(first).toEqual(
          new Map([
            ['contact:1', at(-30)],
            ['contact:2', at(10)],
            ['lead:5', at(10)],
          ]),
        );
        expect(await store.history.firstWonAt(portal.id, [])).toEqual(new Map());
        expect(await store.history.firstWonAt(other.id, [{ entity: 'contact', id: 1 }])).toEqual(new Map([['contact:1', at(-99)]]));
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('job queue', () => {
      // The queue picks across portals: start every test from an empty queue.
      beforeEach(async () => {
        await store.rawQuery('DELETE FROM jobs');
      });

      const job = (portalId: number, key: string, runAt?: Date) => ({
        portalId,
        kind: 'crm.change' as const,
        key,
        payload: { entity: 'deal', id: Number(key.split(':')[1] ?? 0) },
        ...(runAt ? { runAt } : {}),
      });

      it('group-commits concurrent enqueues: every row durable, exactly one "inserted" per key', async () => {
        const portal = await newPortal();
        const keys = Array.from({ length: 300 }, (_, i) => `deal:${i % 120}`); // 120 keys, most repeated
        const results = await Promise.all(keys.map((k) => store.jobs.enqueue(job(portal.id, k), NOW)));
        const insertedPerKey = new Map<string, number>();
        keys.forEach((k, i) => insertedPerKey.set(k, (insertedPerKey.get(k) ?? 0) + (results[i] ? 1 : 0)));
        expect([...insertedPerKey.values()].every((n) => n === 1)).toBe(true);
        expect(insertedPerKey.size).toBe(120);
        expect(await count('jobs', portal.id)).toBe(120);
      });

      it('inside a transaction, enqueue writes in that transaction (rolled back with it)', async () => {
        const portal = await newPortal();
        await expect(
          store.transaction(async (tx) => {
            expect(await tx.jobs.enqueue(job(portal.id, 'deal:77'), NOW)).toBe(true);
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        expect(await count('jobs', portal.id)).toBe(0);
      });

      it('coalesces while queued, but queues again while the key is running', async () => {
        const portal = await newPortal();
        expect(await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW)).toBe(true);
        expect(await store.jobs.enqueue(job(portal.id, 'deal:1'), at(1))).toBe(false);
        expect(await store.jobs.enqueue({ ...job(portal.id, 'deal:1'), kind: 'app.reconcile' }, NOW)).toBe(true);
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 2, running: 0, dead: 0 });

        const claimed = await store.jobs.claim('w1', 10, at(1));
        expect(claimed).toHaveLength(2);
        expect(claimed[0]).toMatchObject({ portalId: portal.id, key: 'deal:1', status: 'running', attempts: 1, lockedBy: 'w1', lockedAt: at(1), payload: { entity: 'deal', id: 1 } });

        expect(await store.jobs.enqueue(job(portal.id, 'deal:1'), at(2))).toBe(true);
        expect(await store.jobs.enqueue(job(portal.id, 'deal:1'), at(2))).toBe(false);
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 1, running: 2, dead: 0 });
      });

      it('does not claim a key that is running until it completes', async () => {
        const portal = await newPortal();
        await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW);
        const [first] = await store.jobs.claim('w1', 10, at(1));
        await store.jobs.enqueue(job(portal.id, 'deal:1'), at(2));
        await store.jobs.enqueue(job(portal.id, 'deal:2'), at(2));
        const others = await store.jobs.claim('w2', 10, at(3));
        expect(others.map((j) => j.key)).toEqual(['deal:2']);
        expect(await store.jobs.claim('w2', 10, at(3))).toEqual([]);

        await store.jobs.complete([first!.id], at(4));
        const next = await store.jobs.claim('w2', 10, at(5));
        expect(next.map((j) => j.key)).toEqual(['deal:1']);
        expect(next[0]?.id).not.toBe(first!.id);
        const [done] = await store.rawQuery('SELECT status FROM jobs WHERE id = $1', [first!.id]);
        expect(done?.status).toBe('done');
      });

      it('never gives one job to two concurrent claimers', async () => {
        const portals = await Promise.all([newPortal(), newPortal()]);
        for (let i = 0; i < 30; i++) await store.jobs.enqueue(job(portals[i % 2]!.id, `deal:${i}`, at(-60 + i)), NOW);
        const seen: number[] = [];
        const claimer = async (worker: string) => {
          for (;;) {
            const got = await store.jobs.claim(worker, 4, NOW);
            if (got.length === 0) return;
            seen.push(...got.map((j) => j.id));
            expect(new Set(got.map((j) => j.portalId)).size).toBe(1);
          }
        };
        await Promise.all([claimer('w1'), claimer('w2'), claimer('w3')]);
        expect(seen).toHaveLength(30);
        expect(new Set(seen).size).toBe(30);
        const attempts = await store.rawQuery<{ attempts: number }>('SELECT attempts FROM jobs');
        expect(attempts.every((r) => r.attempts === 1)).toBe(true);
      });

      it('claims from one portal: the one with the oldest due job', async () => {
        const a = await newPortal();
        const b = await newPortal();
        await store.jobs.enqueue(job(b.id, 'deal:1', at(-5)), NOW);
        await store.jobs.enqueue(job(a.id, 'deal:1', at(-10)), NOW);
        await store.jobs.enqueue(job(a.id, 'deal:2', at(-1)), NOW);
        await store.jobs.enqueue(job(b.id, 'deal:2', at(-2)), NOW);
        await store.jobs.enqueue(job(a.id, 'deal:3', at(30)), NOW); // not due yet

        const first = await store.jobs.claim('w1', 10, NOW);
        expect(first.map((j) => [j.portalId, j.key])).toEqual([[a.id, 'deal:1'], [a.id, 'deal:2']]);
        const second = await store.jobs.claim('w1', 10, NOW);
        expect(second.map((j) => [j.portalId, j.key])).toEqual([[b.id, 'deal:1'], [b.id, 'deal:2']]);
        expect(await store.jobs.claim('w1', 10, NOW)).toEqual([]);
        expect((await store.jobs.claim('w1', 10, at(30))).map((j) => j.key)).toEqual(['deal:3']);
      });

      it('respects the claim limit', async () => {
        const portal = await newPortal();
        for (let i = 0; i < 5; i++) await store.jobs.enqueue(job(portal.id, `deal:${i}`, at(-i)), NOW);
        expect((await store.jobs.claim('w1', 2, NOW)).map((j) => j.key)).toEqual(['deal:4', 'deal:3']);
        expect(await store.jobs.claim('w1', 0, NOW)).toEqual([]);
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 3, running: 2, dead: 0 });
      });

      it('a failed job with retryAt waits until then', async () => {
        const portal = await newPortal();
        await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW);
        const [claimed] = await store.jobs.claim('w1', 1, NOW);
        await store.jobs.fail(claimed!.id, 'portal unavailable', at(10), at(1));
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 1, running: 0, dead: 0 });
        expect(await store.jobs.claim('w1', 1, at(9))).toEqual([]);
        const [retried] = await store.jobs.claim('w2', 1, at(10));
        expect(retried).toMatchObject({ id: claimed!.id, attempts: 2, lastError: 'portal unavailable', runAt: at(10), lockedBy: 'w2' });
      });

      it('a failed job without retryAt is dead and counted', async () => {
        const portal = await newPortal();
        await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW);
        const [claimed] = await store.jobs.claim('w1', 1, NOW);
        await store.jobs.fail(claimed!.id, 'gave up', null, at(1));
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 0, running: 0, dead: 1 });
        expect(await store.jobs.claim('w1', 1, at(100))).toEqual([]);
        const [row] = await store.rawQuery('SELECT status, last_error FROM jobs WHERE id = $1', [claimed!.id]);
        expect(row).toMatchObject({ status: 'dead', last_error: 'gave up' });
        // A dead job does not block new work on its key.
        expect(await store.jobs.enqueue(job(portal.id, 'deal:1'), at(2))).toBe(true);
      });

      it('a failing job merges into a newer queued job of its key', async () => {
        const portal = await newPortal();
        await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW);
        const [claimed] = await store.jobs.claim('w1', 1, NOW);
        await store.jobs.enqueue(job(portal.id, 'deal:1'), at(1));
        await store.jobs.fail(claimed!.id, 'timeout', at(10), at(2));
        const rows = await store.rawQuery<{ id: number | string; status: string; run_at: unknown }>('SELECT id, status, run_at FROM jobs WHERE portal_id = $1', [portal.id]);
        expect(rows).toHaveLength(1);
        expect(Number(rows[0]?.id)).not.toBe(claimed!.id);
        expect(await store.jobs.claim('w1', 1, at(9))).toEqual([]);
        expect(await store.jobs.claim('w1', 1, at(10))).toMatchObject([{ key: 'deal:1', attempts: 2, lastError: 'timeout' }]);
      });

      it('recovers the running jobs of a killed worker', async () => {
        const portal = await newPortal();
        await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW);
        await store.jobs.enqueue(job(portal.id, 'deal:2'), NOW);
        const [lost] = await store.jobs.claim('w-killed', 1, NOW);
        const [alive] = await store.jobs.claim('w-alive', 1, at(10));
        expect(await store.jobs.recoverStale(at(5), at(11))).toBe(1);
        const recovered = await store.jobs.claim('w-new', 5, at(12));
        expect(recovered).toMatchObject([{ id: lost!.id, key: lost!.key, attempts: 2, lockedBy: 'w-new' }]);
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 0, running: 2, dead: 0 });
        expect(alive?.lockedBy).toBe('w-alive');
        expect(await store.jobs.recoverStale(at(5), at(13))).toBe(0);
      });

      it('a renewed lease keeps a live worker\'s jobs; only its own running jobs are renewed', async () => {
        const portal = await newPortal();
        for (const key of ['deal:1', 'deal:2', 'deal:3']) await store.jobs.enqueue(job(portal.id, key), NOW);
        const mine = await store.jobs.claim('w-live', 2, NOW);
        const [theirs] = await store.jobs.claim('w-dead', 1, NOW);
        expect(await store.jobs.renew('w-live', at(10))).toBe(2);
        expect(await store.jobs.renew('w-nobody', at(10))).toBe(0);
        // Leases of 5 minutes: the live worker renewed at 10, the dead one's ran out.
        expect(await store.jobs.recoverStale(at(5), at(11))).toBe(1);
        const rows = await store.rawQuery<{ id: number | string; status: string; locked_by: string | null }>(
          'SELECT id, status, locked_by FROM jobs WHERE portal_id = $1 ORDER BY id',
          [portal.id],
        );
        expect(rows.map((r) => [Number(r.id), r.status, r.locked_by])).toEqual([
          [mine[0]!.id, 'running', 'w-live'],
          [mine[1]!.id, 'running', 'w-live'],
          [theirs!.id, 'queued', null],
        ]);
        // A completed job is no longer renewed.
        await store.jobs.complete([mine[0]!.id], at(12));
        expect(await store.jobs.renew('w-live', at(13))).toBe(1);
      });

      it('recovers every running job when told that no other process can hold one', async () => {
        const portal = await newPortal();
        for (const key of ['deal:1', 'deal:2', 'deal:3']) await store.jobs.enqueue(job(portal.id, key), NOW);
        await store.jobs.claim('w-killed', 2, NOW);
        await store.jobs.enqueue(job(portal.id, 'deal:1'), at(1)); // a newer change of a running key
        expect(await store.jobs.recoverStale(null, at(1))).toBe(2);
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 3, running: 0, dead: 0 });
        expect(await count('jobs', portal.id)).toBe(3); // deal:1 merged into its newer job
        const claimed = await store.jobs.claim('w-new', 10, at(2));
        expect(claimed.map((j) => j.key).sort()).toEqual(['deal:1', 'deal:2', 'deal:3']);
      });

      it('a recovered job merges into a newer queued job of its key', async () => {
        const portal = await newPortal();
        await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW);
        await store.jobs.claim('w-killed', 1, NOW);
        await store.jobs.enqueue(job(portal.id, 'deal:1'), at(1));
        expect(await store.jobs.recoverStale(at(5), at(6))).toBe(1);
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 1, running: 0, dead: 0 });
        expect(await count('jobs', portal.id)).toBe(1);
      });

      it('stats: per state across portals, the count and the oldest runAt and lockedAt', async () => {
        const none = { count: 0, oldestRunAt: null, oldestLockedAt: null };
        expect(await store.jobs.stats()).toEqual({ queued: none, running: none, dead: none });
        const [a, b] = [await newPortal(), await newPortal()];
        await store.jobs.enqueue(job(a.id, 'deal:1', at(-30)), NOW);
        await store.jobs.enqueue(job(b.id, 'deal:2', at(-20)), NOW);
        await store.jobs.enqueue(job(a.id, 'deal:3', at(-10)), NOW);
        await store.jobs.enqueue(job(a.id, 'deal:4', at(5)), NOW); // not due yet: still queued
        await store.jobs.enqueue(job(b.id, 'deal:5', at(-1)), NOW);
        const [first] = await store.jobs.claim('w1', 1, at(1)); // a: deal:1 (the oldest due job's portal, one job)
        const [second] = await store.jobs.claim('w2', 1, at(2)); // b: deal:2
        await store.jobs.fail(second!.id, 'gave up', null, at(3));
        const [third] = await store.jobs.claim('w3', 1, at(4)); // a: deal:3
        expect([first?.key, second?.key, third?.key]).toEqual(['deal:1', 'deal:2', 'deal:3']);
        await store.jobs.complete([third!.id], at(5)); // done jobs are not counted

        expect(await store.jobs.stats()).toEqual({
          queued: { count: 2, oldestRunAt: at(-1), oldestLockedAt: null },
          running: { count: 1, oldestRunAt: at(-30), oldestLockedAt: at(1) },
          dead: { count: 1, oldestRunAt: at(-20), oldestLockedAt: at(2) },
        });
      });

      it('completes jobs and purges the portal\'s old done ones, never dead or other portals\' ones', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        await store.jobs.enqueue(job(portal.id, 'deal:1'), NOW);
        await store.jobs.enqueue(job(portal.id, 'deal:2'), NOW);
        await store.jobs.enqueue(job(portal.id, 'deal:3'), NOW);
        const claimed = await store.jobs.claim('w1', 5, NOW);
        await store.jobs.complete(claimed.slice(0, 2).map((j) => j.id), at(1));
        await store.jobs.fail(claimed[2]!.id, 'gave up', null, at(1));
        await store.jobs.enqueue(job(other.id, 'deal:1'), NOW);
        await store.jobs.complete((await store.jobs.claim('w1', 5, NOW)).map((j) => j.id), at(1));
        expect(await store.jobs.depth(portal.id)).toEqual({ queued: 0, running: 0, dead: 1 });
        expect(await count('jobs', portal.id)).toBe(3);
        expect(await store.jobs.purgeDone(portal.id, at(1))).toBe(0);
        expect(await store.jobs.purgeDone(portal.id, at(2))).toBe(2);
        expect(await store.rawQuery('SELECT status FROM jobs WHERE portal_id = $1', [portal.id])).toEqual([{ status: 'dead' }]);
        expect(await count('jobs', other.id)).toBe(1);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('scheduled work', () => {
      it('lists installation ids by state', async () => {
        const fresh = await newPortal();
        const active = await newPortal();
        await store.installations.activate(active.id, NOW);
        const gone = await newPortal();
        await store.installations.markUninstalled(gone.id, NOW, false);
        const activeIds = await store.installations.listIds(['active']);
        expect(activeIds).toContain(active.id);
        expect(activeIds).not.toContain(fresh.id);
        expect(activeIds).not.toContain(gone.id);
        const all = await store.installations.listIds(['new', 'active', 'uninstalled']);
        expect(all).toEqual(expect.arrayContaining([fresh.id, active.id, gone.id]));
        expect(all).toEqual([...all].sort((a, b) => a - b));
        expect(await store.installations.listIds([])).toEqual([]);
      });

      it('a tick is claimed once for the cluster, however many ask at once', async () => {
        const tick = new Date(NOW.getTime() + Math.floor(Math.random() * 1e9) * 1000);
        const answers = await Promise.all(Array.from({ length: 8 }, () => store.schedule.claimTick('reconcile.crm', tick, NOW)));
        expect(answers.filter(Boolean)).toHaveLength(1);
        expect(await store.schedule.claimTick('reconcile.crm', tick, NOW)).toBe(false);
        // Another schedule, or the next tick, is another claim.
        expect(await store.schedule.claimTick('holds.mature', tick, NOW)).toBe(true);
        expect(await store.schedule.claimTick('reconcile.crm', new Date(tick.getTime() + 1000), NOW)).toBe(true);
      });

      it('a tick claimed in a rolled-back transaction can be claimed again', async () => {
        const tick = new Date(NOW.getTime() + Math.floor(Math.random() * 1e9) * 1000);
        await expect(
          store.transaction(async (tx) => {
            expect(await tx.schedule.claimTick('queue.purge', tick, NOW)).toBe(true);
            throw new Error('crashed before the jobs were queued');
          }),
        ).rejects.toThrow('crashed');
        expect(await store.schedule.claimTick('queue.purge', tick, NOW)).toBe(true);
      });

      it('forgets ticks older than a week', async () => {
        const tick = new Date(Date.UTC(2030, 0, 1) + Math.floor(Math.random() * 1e6) * 60_000);
        await store.schedule.claimTick('holds.mature', tick, NOW);
        await store.schedule.claimTick('holds.mature', new Date(tick.getTime() + 8 * 24 * 3600_000), NOW);
        expect(await store.schedule.claimTick('holds.mature', tick, NOW)).toBe(true);
      });

      it('keeps watermarks per portal, only ever moving them forward', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        expect(await store.watermarks.get(portal.id, ['reconcile.deal'])).toEqual(new Map());
        await store.watermarks.save(portal.id, 'reconcile.deal', at(10), at(11));
        await store.watermarks.save(portal.id, 'reconcile.deal', at(5), at(12)); // behind: stays, but the run completed
        await store.watermarks.save(portal.id, 'holds.mature', at(7), at(12));
        await store.watermarks.save(other.id, 'reconcile.deal', at(100), at(100));
        const marks = await store.watermarks.get(portal.id, ['reconcile.deal', 'reconcile.contact', 'holds.mature']);
        expect(marks).toEqual(
          new Map([
            ['reconcile.deal', { name: 'reconcile.deal', mark: at(10), updatedAt: at(12) }],
            ['holds.mature', { name: 'holds.mature', mark: at(7), updatedAt: at(12) }],
          ]),
        );
        await store.watermarks.save(portal.id, 'reconcile.deal', at(20), at(21));
        expect((await store.watermarks.get(portal.id, ['reconcile.deal'])).get('reconcile.deal')?.mark).toEqual(at(20));
      });

      it('reports each active portal\'s reconciliation lag: since its least recent reconciled entity, else its install', async () => {
        const reconciled = await newPortal();
        await store.installations.activate(reconciled.id, at(1));
        const never = await newPortal();
        await store.installations.activate(never.id, at(2));
        const inactive = await newPortal();
        await store.watermarks.save(reconciled.id, 'reconcile.deal', at(0), at(50));
        await store.watermarks.save(reconciled.id, 'reconcile.contact', at(0), at(40));
        await store.watermarks.save(reconciled.id, 'holds.mature', at(0), at(10)); // not a reconciliation
        const lag = await store.watermarks.reconcileLag(at(60));
        expect(lag.get(reconciled.id)).toBe(20 * 60);
        expect(lag.get(never.id)).toBe(58 * 60);
        expect(lag.has(inactive.id)).toBe(false);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('set-based reads and writes of the referral loop', () => {
      it('finds, ensures and enrols many members at once', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        await store.members.ensure(other.id, 'contact', 1, NOW); // another portal's contact 1
        const existing = await store.members.ensure(portal.id, 'lead', 7, NOW);
        const ensured = await store.members.ensureMany(portal.id, [{ entity: 'contact', id: 1 }, { entity: 'lead', id: 7 }, { entity: 'contact', id: 1 }, { entity: 'contact', id: 2 }], NOW);
        expect(ensured.map((m) => [m.contactId, m.leadId]).sort()).toEqual([[1, null], [2, null], [null, 7]].sort());
        expect(ensured.find((m) => m.leadId === 7)?.id).toBe(existing.id);
        expect(await count('members', portal.id)).toBe(3);
        expect((await store.members.findByEntities(portal.id, [{ entity: 'contact', id: 2 }, { entity: 'lead', id: 99 }])).map((m) => m.contactId)).toEqual([2]);

        const [a, b] = ensured.filter((m) => m.contactId !== null).sort((x, y) => x.id - y.id);
        await store.members.enroll(portal.id, b!.id, 'TAKEN22', NOW);
        const first = await store.members.enrollMany(portal.id, [{ memberId: a!.id, code: 'taken22' }, { memberId: existing.id, code: 'free333' }, { memberId: b!.id, code: 'OTHER44' }], at(1));
        expect(first.taken).toEqual([a!.id]);
        expect(first.enrolled.map((m) => [m.id, m.code]).sort()).toEqual([[existing.id, 'FREE333'], [b!.id, 'TAKEN22']].sort());
        expect((await store.members.get(portal.id, existing.id))?.joinedAt).toEqual(at(1));
        expect(await store.members.findByCodes(portal.id, ['free333', ' taken22 ', 'NOPE'])).toEqual(
          new Map([['FREE333', expect.objectContaining({ id: existing.id })], ['TAKEN22', expect.objectContaining({ id: b!.id })]]),
        );
        expect(await store.members.findByCodes(other.id, ['FREE333'])).toEqual(new Map());
      });

      it('reads active referrals, chains and qualified referrals of many members at once', async () => {
        const portal = await newPortal();
        const [top, mid, low, solo] = await store.members.ensureMany(portal.id, [1, 2, 3, 4].map((id) => ({ entity: 'contact' as const, id })), NOW).then((ms) => ms.sort((x, y) => x.contactId! - y.contactId!));
        await store.referrals.record(referral(portal.id, mid!, top!));
        await store.referrals.record(referral(portal.id, low!, mid!));
        await store.referrals.record(referral(portal.id, solo!, null, { status: 'rejected', rejectReason: 'unknown_code' }));
        const actives = await store.referrals.activeForMany(portal.id, [mid!.id, low!.id, solo!.id, top!.id]);
        expect([...actives.keys()].sort()).toEqual([mid!.id, low!.id].sort());
        expect(await store.referrals.chains(portal.id, [low!.id, mid!.id, top!.id], 5)).toEqual(
          new Map([[low!.id, [mid!.id, top!.id]], [mid!.id, [top!.id]], [top!.id, []]]),
        );
        expect((await store.referrals.chains(portal.id, [low!.id], 1)).get(low!.id)).toEqual([mid!.id]);

        // Qualified: a won deal of the referee pays the referrer a level-1 reward now.
        const deal = (dealId: number, client: Member) => ({
          portalId: portal.id, dealId, clientMemberId: client.id, categoryId: 0, stageId: 'WON', stageSemantic: 'S' as const,
          amount: 1000, currency: 'RUB', won: true, deleted: false, firstWonAt: NOW, programVersion: 1, referralId: null, updatedAt: NOW,
        });
        await store.deals.upsertMany([deal(10, mid!), deal(11, low!), deal(12, low!)]);
        await store.ledger.append([
          entry(portal.id, top!.id, 'q:10', { dealId: 10 }),
          entry(portal.id, mid!.id, 'q:11', { dealId: 11 }),
          entry(portal.id, top!.id, 'q:11:2', { dealId: 11, level: 2 }),
          entry(portal.id, mid!.id, 'q:12', { dealId: 12 }),
          entry(portal.id, mid!.id, 'q:12:r', { dealId: 12, amount: -100, kind: 'reversal' }),
        ]);
        expect(await store.referrals.qualifiedCount(portal.id, [top!.id, mid!.id, low!.id])).toEqual(new Map([[top!.id, 1], [mid!.id, 1], [low!.id, 0]]));
        // Deal 11 lost: its reward reversed, low no longer counts for mid.
        await store.ledger.append([entry(portal.id, mid!.id, 'q:11:r', { dealId: 11, amount: -100, kind: 'reversal' })]);
        expect((await store.referrals.qualifiedCount(portal.id, [mid!.id])).get(mid!.id)).toBe(0);
        expect((await store.deals.forClients(portal.id, [low!.id, mid!.id])).map((d) => d.dealId)).toEqual([10, 11, 12]);
        await store.deals.upsertMany([{ ...deal(12, low!), won: false, stageId: 'LOSE', stageSemantic: 'F', updatedAt: at(1) }]);
        expect(await store.deals.get(portal.id, 12)).toMatchObject({ won: false, stageId: 'LOSE', updatedAt: at(1), firstWonAt: NOW });
      });

      it('saves many projections at once, merged key by key', async () => {
        const portal = await newPortal();
        await store.projections.save(portal.id, 'contact', 1, { balance: 5, code: 'A' }, NOW);
        await store.projections.saveMany(portal.id, [
          { entity: 'contact', entityId: 1, values: { balance: 7 } },
          { entity: 'deal', entityId: 1, values: { reward: 3 } },
          { entity: 'deal', entityId: 1, values: { referrer: { entity: 'lead', id: 4 } } },
        ], at(1));
        expect(await store.projections.getMany(portal.id, [{ entity: 'contact', entityId: 1 }, { entity: 'deal', entityId: 1 }])).toEqual(
          new Map<string, unknown>([['contact:1', { balance: 7, code: 'A' }], ['deal:1', { reward: 3, referrer: { entity: 'lead', id: 4 } }]]),
        );
      });

      it('completes a queued job by key without running it, and nothing else', async () => {
        const portal = await newPortal();
        await store.jobs.enqueue({ portalId: portal.id, kind: 'crm.project', key: 'run:a', payload: {}, runAt: at(10) }, NOW);
        await store.jobs.enqueue({ portalId: portal.id, kind: 'crm.project', key: 'run:b', payload: {}, runAt: at(10) }, NOW);
        await store.jobs.completeQueued(portal.id, 'crm.project', 'run:a', NOW);
        const rows = await store.rawQuery<{ key: string; status: string }>('SELECT key, status FROM jobs WHERE portal_id = $1 ORDER BY key', [portal.id]);
        expect(rows).toEqual([{ key: 'run:a', status: 'done' }, { key: 'run:b', status: 'queued' }]);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('program keys (migration 0004)', () => {
      it('keeps the conversion, shortfall and cap of a ledger entry, and the rate fixed on a deal', async () => {
        const portal = await newPortal();
        const member = await store.members.ensure(portal.id, 'contact', 1, NOW);
        const fx = { currency: 'USD', rate: '90.0000000000', amount: 1000_00 };
        const { inserted } = await store.ledger.append([
          entry(portal.id, member.id, 'fx1', { amount: 9000_00, fx, capped: 250_00 }),
          entry(portal.id, member.id, 'fx2', { amount: -100, kind: 'reversal', shortfall: 8999_00 }),
          entry(portal.id, member.id, 'plain'),
        ]);
        expect(inserted.map((e) => [e.fx, e.shortfall, e.capped])).toEqual([
          [fx, 0, 250_00],
          [null, 8999_00, 0],
          [null, 0, 0],
        ]);
        expect((await store.ledger.forDeal(portal.id, 1)).map((e) => [e.idempotencyKey, e.fx?.rate ?? null, e.shortfall, e.capped])).toEqual([
          ['fx1', '90.0000000000', 0, 250_00],
          ['fx2', null, 8999_00, 0],
          ['plain', null, 0, 0],
        ]);
        // Negative hold-backs are refused: the CHECK guards them.
        await expect(store.ledger.append([entry(portal.id, member.id, 'bad', { shortfall: -1 })])).rejects.toThrow();

        const deal = {
          portalId: portal.id, dealId: 5, clientMemberId: member.id, categoryId: 0, stageId: 'WON', stageSemantic: 'S' as const,
          amount: 1000_00, currency: 'USD', won: true, deleted: false, firstWonAt: NOW, programVersion: 1, referralId: null, updatedAt: NOW,
          fxCurrency: 'USD', fxRate: '90.0000000000',
        };
        await store.deals.upsertMany([deal]);
        expect(await store.deals.get(portal.id, 5)).toMatchObject({ fxCurrency: 'USD', fxRate: '90.0000000000' });
        await store.deals.upsertMany([{ ...deal, fxCurrency: null, fxRate: null, currency: 'RUB' }]);
        expect(await store.deals.get(portal.id, 5)).toMatchObject({ fxCurrency: null, fxRate: null });
      });

      it('sums a referrer’s referral credits per month of the deals’ first win, leaving out given deals', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const [referrer, client] = await store.members.ensureMany(portal.id, [1, 2].map((id) => ({ entity: 'contact' as const, id })), NOW).then((ms) => ms.sort((x, y) => x.contactId! - y.contactId!));
        const jan = { from: new Date('2025-12-31T21:00:00Z'), to: new Date('2026-01-31T21:00:00Z') };
        const feb = { from: jan.to, to: new Date('2026-02-28T21:00:00Z') };
        const deal = (dealId: number, firstWonAt: Date) => ({
          portalId: portal.id, dealId, clientMemberId: client!.id, categoryId: 0, stageId: 'WON', stageSemantic: 'S' as const,
          amount: 1000, currency: 'RUB', won: true, deleted: false, firstWonAt, programVersion: 1, referralId: null, updatedAt: NOW,
        });
        // Deal 1 at 23:30 Moscow time on 31 January, deal 2 at 00:30 on 1 February, deal 3 mid-February.
        await store.deals.upsertMany([deal(1, new Date('2026-01-31T20:30:00Z')), deal(2, new Date('2026-01-31T21:30:00Z')), deal(3, new Date('2026-02-10T10:00:00Z'))]);
        await store.ledger.append([
          entry(portal.id, referrer!.id, 'd1', { dealId: 1, amount: 300 }),
          entry(portal.id, referrer!.id, 'd2', { dealId: 2, amount: 500 }),
          entry(portal.id, referrer!.id, 'd3', { dealId: 3, amount: 700 }),
          // A reversal written in March still gives back room in February, the month of its deal.
          entry(portal.id, referrer!.id, 'd3r', { dealId: 3, amount: -700, kind: 'reversal', createdAt: new Date('2026-03-05T00:00:00Z') }),
          entry(portal.id, referrer!.id, 'd2w', { dealId: 2, amount: 40, reason: 'welcome', level: 0 }),
        ]);
        const months = [{ memberId: referrer!.id, ...jan }, { memberId: referrer!.id, ...feb }, { memberId: client!.id, ...feb }];
        const key = (memberId: number, from: Date) => `${memberId}:${from.toISOString()}`;
        expect(await store.ledger.referralNetInMonths(portal.id, months, [])).toEqual(
          new Map([[key(referrer!.id, jan.from), 300], [key(referrer!.id, feb.from), 500], [key(client!.id, feb.from), 0]]),
        );
        expect((await store.ledger.referralNetInMonths(portal.id, months, [2])).get(key(referrer!.id, feb.from))).toBe(0);
        expect(await store.ledger.referralNetInMonths(portal.id, [], [])).toEqual(new Map());
        // Another portal's ledger is never counted.
        expect((await store.ledger.referralNetInMonths(other.id, months, [])).get(key(referrer!.id, jan.from))).toBe(0);
      });

      it('finds the deals of a referrer month still held back by the cap, and counts a clamped reversal as taken back', async () => {
        const portal = await newPortal();
        const [referrer, c1, c2, c3] = await store.members.ensureMany(portal.id, [1, 2, 3, 4].map((id) => ({ entity: 'contact' as const, id })), NOW).then((ms) => ms.sort((x, y) => x.contactId! - y.contactId!));
        const month = { memberId: referrer!.id, from: new Date('2026-02-28T21:00:00Z'), to: new Date('2026-03-31T21:00:00Z') };
        const deal = (dealId: number, client: Member, firstWonAt = NOW) => ({
          portalId: portal.id, dealId, clientMemberId: client.id, categoryId: 0, stageId: 'WON', stageSemantic: 'S' as const,
          amount: 1000, currency: 'RUB', won: true, deleted: false, firstWonAt, programVersion: 1, referralId: null, updatedAt: NOW,
        });
        await store.deals.upsertMany([deal(1, c1!), deal(2, c2!), deal(3, c3!), deal(4, c3!, new Date('2026-04-10T00:00:00Z'))]);
        await store.ledger.append([
          entry(portal.id, referrer!.id, 'd1', { dealId: 1, amount: 100 }),
          entry(portal.id, referrer!.id, 'd2', { dealId: 2, amount: 50, capped: 50 }),
          // Deal 3 was capped, then paid in full: its latest entry holds nothing back.
          entry(portal.id, referrer!.id, 'd3a', { dealId: 3, amount: 0, capped: 100 }),
          entry(portal.id, referrer!.id, 'd3b', { dealId: 3, amount: 100, kind: 'correction' }),
          // Another month.
          entry(portal.id, referrer!.id, 'd4', { dealId: 4, amount: 0, capped: 100 }),
        ]);
        expect(await store.ledger.cappedDeals(portal.id, [month])).toEqual([2]);
        expect(await store.ledger.cappedDeals(portal.id, [])).toEqual([]);

        // Qualified referrals: deal 1's reward reversed with a clamp shortfall no longer counts.
        expect((await store.referrals.qualifiedCount(portal.id, [referrer!.id])).get(referrer!.id)).toBe(3);
        await store.ledger.append([entry(portal.id, referrer!.id, 'd1r', { dealId: 1, amount: -30, kind: 'reversal', shortfall: 70 })]);
        expect((await store.referrals.qualifiedCount(portal.id, [referrer!.id])).get(referrer!.id)).toBe(2);
      });

      it('caches a portal’s settings, one row per portal', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        expect(await store.portalSettings.get(portal.id)).toBeNull();
        const currencies = [{ currency: 'RUB', amount: '1.0000', amountCnt: 1, base: true }, { currency: 'USD', amount: '90.0000', amountCnt: 1, base: false }];
        await store.portalSettings.save(portal.id, { utcOffsetMinutes: 180, currencies, readAt: NOW });
        await store.portalSettings.save(portal.id, { utcOffsetMinutes: 180, currencies: currencies.slice(0, 1), readAt: at(60) });
        expect(await store.portalSettings.get(portal.id)).toEqual({ utcOffsetMinutes: 180, currencies: currencies.slice(0, 1), readAt: at(60) });
        expect(await store.portalSettings.get(other.id)).toBeNull();
        expect(await count('portal_settings', portal.id)).toBe(1);
      });

      it('issues coupons with codes unique per portal, one per member milestone, and changes their status', async () => {
        const portal = await newPortal();
        const other = await newPortal();
        const [a, b] = await store.members.ensureMany(portal.id, [1, 2].map((id) => ({ entity: 'contact' as const, id })), NOW).then((ms) => ms.sort((x, y) => x.contactId! - y.contactId!));
        const [c] = await store.members.ensureMany(other.id, [{ entity: 'contact', id: 1 }], NOW);
        const first = await store.coupons.issueMany(portal.id, [{ memberId: a!.id, milestone: 1, code: 'CPN1111', value: 500_00 }, { memberId: b!.id, milestone: 1, code: 'CPN2222', value: 500_00 }], NOW);
        expect(first.taken).toEqual([]);
        expect(first.issued.map((x) => [x.memberId, x.milestone, x.code, x.value, x.status])).toEqual([
          [a!.id, 1, 'CPN1111', 500_00, 'issued'],
          [b!.id, 1, 'CPN2222', 500_00, 'issued'],
        ]);
        // A taken code, and a milestone already issued, are reported, not inserted.
        const second = await store.coupons.issueMany(portal.id, [{ memberId: a!.id, milestone: 2, code: 'CPN2222', value: 1 }, { memberId: b!.id, milestone: 1, code: 'CPN3333', value: 1 }], NOW);
        expect(second).toEqual({ issued: [], taken: [{ memberId: a!.id, milestone: 2 }, { memberId: b!.id, milestone: 1 }] });
        // Codes are unique per portal only.
        expect((await store.coupons.issueMany(other.id, [{ memberId: c!.id, milestone: 1, code: 'CPN1111', value: 1 }], NOW)).issued).toHaveLength(1);

        await store.coupons.setStatus(portal.id, [first.issued[0]!.id], 'reversed', at(5));
        await store.coupons.setStatus(other.id, [first.issued[1]!.id], 'reversed', at(5)); // another portal's id: nothing
        expect((await store.coupons.forMembers(portal.id, [a!.id, b!.id])).map((x) => [x.code, x.status, x.updatedAt])).toEqual([
          ['CPN1111', 'reversed', at(5)],
          ['CPN2222', 'issued', NOW],
        ]);

        await store.ledger.append([entry(portal.id, a!.id, 'cp1', { reason: 'coupon', dealId: null, level: 1, amount: 500_00 }), entry(portal.id, a!.id, 'r1')]);
        expect((await store.ledger.couponEntries(portal.id, [a!.id, b!.id])).map((e) => [e.idempotencyKey, e.level])).toEqual([['cp1', 1]]);

        await store.installations.markUninstalled(portal.id, NOW, true);
        expect(await count('coupons', portal.id)).toBe(0);
        expect(await count('coupons', other.id)).toBe(1);
      });
    });

    // -----------------------------------------------------------------------------------------
    describe('transactions', () => {
      it('rolls back everything on a throw', async () => {
        const portal = await newPortal();
        const boom = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            const member = await tx.members.ensure(portal.id, 'contact', 1, NOW);
            await tx.members.enroll(portal.id, member.id, 'ROLL01', NOW);
            await tx.ledger.append([entry(portal.id, member.id, 'rolled')]);
            await tx.programs.create(portal.id, {}, null, NOW);
            await tx.jobs.enqueue({ portalId: portal.id, kind: 'crm.change', key: 'deal:1', payload: {}, runAt: at(10_000) }, NOW);
            expect(await tx.members.findByCode(portal.id, 'roll01')).not.toBeNull(); // visible inside
            throw boom;
          }),
        ).rejects.toBe(boom);
        for (const table of ['members', 'referral_codes', 'ledger_entries', 'program_versions', 'jobs']) {
          expect(await count(table, portal.id), table).toBe(0);
        }
      });

      it('commits and returns the value', async () => {
        const portal = await newPortal();
        const id = await store.transaction(async (tx) => (await tx.members.ensure(portal.id, 'contact', 1, NOW)).id);
        expect((await store.members.get(portal.id, id))?.contactId).toBe(1);
      });

      it('the advisory lock serializes transactions on one (portal, key)', async () => {
        const portal = await newPortal();
        const events: string[] = [];
        let firstLocked!: () => void;
        const locked = new Promise<void>((resolve) => (firstLocked = resolve));
        const t1 = store.transaction(async (tx) => {
          await tx.lock(portal.id, 'member:1');
          events.push('1:locked');
          firstLocked();
          await anotherSessionWaits();
          events.push('1:done');
        });
        await locked;
        const t2 = store.transaction(async (tx) => {
          await tx.lock(portal.id, 'member:1');
          events.push('2:locked');
        });
        await Promise.all([t1, t2]);
        expect(events).toEqual(['1:locked', '1:done', '2:locked']);
      });
      it('lockMany takes many locks at once and serializes with lock() on any of them', async () => {
        const portal = await newPortal();
        const events: string[] = [];
        let firstLocked!: () => void;
        const locked = new Promise<void>((resolve) => (firstLocked = resolve));
        const t1 = store.transaction(async (tx) => {
          await tx.lockMany(portal.id, ['client:3', 'client:1', 'client:3']);
          events.push('1:locked');
          firstLocked();
          await sleep(150);
          events.push('1:done');
        });
        await locked;
        const t2 = store.transaction(async (tx) => {
          await tx.lock(portal.id, 'client:1');
          events.push('2:locked');
        });
        await Promise.all([t1, t2]);
        expect(events).toEqual(['1:locked', '1:done', '2:locked']);
        await store.transaction((tx) => tx.lockMany(portal.id, [])); // nothing to lock is fine
      });
    });
  });
}
