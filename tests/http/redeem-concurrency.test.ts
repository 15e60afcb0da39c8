/**
 * Redemptions under concurrency (SPEC 5: "concurrent redemptions can never spend the same bonus
 * twice or push a balance below zero"), on embedded PGlite and on a real PostgreSQL server (where
 * requests really interleave): many parallel requests never spend more than the balance, never
 * redeem more than the deal allows, and a deal lost while redemptions race it ends with nothing
 * redeemed on it. PostgreSQL fails (never skips) when unreachable, unless SARAFAN_SKIP_POSTGRES=1.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processCrmChanges } from '../../src/handlers/process-crm-changes.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';
import { FORM } from '../support/scenario.js';

const skipPostgres = process.env.SARAFAN_SKIP_POSTGRES === '1';
const ADMIN = 'user-token-admin-concurrency-0001';
const PARALLEL = 24;

function describeRedeemRaces(name: string, open: () => Promise<{ h: Harness; drop?: () => Promise<void> }>): void {
  describe(`concurrent redemptions: ${name}`, () => {
    let h: Harness;
    let drop: (() => Promise<void>) | undefined;
    let pid: number;

    beforeAll(async () => {
      ({ h, drop } = await open());
      h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
      const { query, body } = installRequest(h.portal);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
    });

    afterAll(async () => {
      await h?.close();
      await drop?.();
    });

    const api = (path: string, body: object) => request(h.app).post(path).set('Authorization', `Bearer ${ADMIN}`).set('X-Sarafan-Portal', h.portal.memberId).send(body);

    /** A contact with `balance` available and `deals` open deals of `amount` each, all known to Sarafan. */
    async function client(balance: number, deals: number, amount: number): Promise<{ memberId: number; deals: number[] }> {
      const contact = h.portal.add('contact', { NAME: 'Клиент' });
      expect((await api(`/api/members/contact/${contact}/adjust`, { amount: balance, comment: 'пополнение' })).status).toBe(200);
      const ids = Array.from({ length: deals }, () => h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: amount }));
      await processCrmChanges(h.deps, pid, ids.map((id) => ({ entity: 'deal' as const, id, deleted: false })));
      const memberId = (await h.store.members.findByEntity(pid, 'contact', contact))!.id;
      return { memberId, deals: ids };
    }

    const ledgerSum = async (memberId: number) => (await h.store.ledger.forMember(pid, memberId, { limit: 1000 })).reduce((s, e) => s + e.amount, 0);
    const available = async (memberId: number) => (await h.store.ledger.balances(pid, [memberId], new Date())).get(memberId)!.available;

    it(`${PARALLEL} parallel redemptions over three deals never spend more than the balance`, async () => {
      const c = await client(100, 3, 1_000_000);
      const answers = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => api(`/api/deals/${c.deals[i % 3]}/redeem`, { amount: 30 })));
      const ok = answers.filter((r) => r.status === 200);
      expect(answers.every((r) => r.status === 200 || (r.status === 409 && r.body.error.reason === 'insufficient_balance'))).toBe(true);
      expect(ok).toHaveLength(3);
      expect(await available(c.memberId)).toBe(10_00);
      expect(await ledgerSum(c.memberId)).toBe(10_00);
      // Every answered balance was true when it was answered: never below zero.
      expect(ok.map((r) => r.body.client.balance).sort((a, b) => b - a)).toEqual([70, 40, 10]);
    });

    it(`${PARALLEL} parallel redemptions on one deal never exceed its limit`, async () => {
      const c = await client(10_000, 1, 100); // 50 % of 100.00 → at most 50.00
      const answers = await Promise.all(Array.from({ length: PARALLEL }, () => api(`/api/deals/${c.deals[0]}/redeem`, { amount: 7 })));
      expect(answers.filter((r) => r.status === 200)).toHaveLength(7);
      expect(answers.filter((r) => r.status === 409).every((r) => r.body.error.reason === 'over_deal_limit')).toBe(true);
      const redeemed = (await h.store.ledger.forDeal(pid, c.deals[0]!)).reduce((s, e) => s + e.amount, 0);
      expect(redeemed).toBe(-49_00);
      expect(await available(c.memberId)).toBe(10_000_00 - 49_00);
    });

    it('a deal lost while redemptions race it ends with nothing redeemed on it, and the balance whole', async () => {
      const c = await client(1000, 1, 100_000);
      const deal = c.deals[0]!;
      h.portal.update('deal', deal, { STAGE_ID: 'LOSE' });
      const redemptions = Array.from({ length: PARALLEL }, () => api(`/api/deals/${deal}/redeem`, { amount: 10 }));
      const loop = processCrmChanges(h.deps, pid, [{ entity: 'deal', id: deal, deleted: false }]);
      const answers = await Promise.all(redemptions);
      await loop;
      expect(answers.every((r) => r.status === 200 || (r.status === 409 && r.body.error.reason === 'deal_closed'))).toBe(true);
      const entries = await h.store.ledger.forDeal(pid, deal);
      expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(0);
      expect(await available(c.memberId)).toBe(1000_00);
      expect(entries.filter((e) => e.kind === 'reversal').length).toBeLessThanOrEqual(1);
    });
  });
}

describeRedeemRaces('pglite', async () => ({ h: await createHarness() }));

describe.skipIf(skipPostgres)(`PostgreSQL${skipPostgres ? ' — skipped: SARAFAN_SKIP_POSTGRES=1 is set' : ''}`, () => {
  describeRedeemRaces('postgresql', async () => {
    const database = await createDatabase();
    return { h: await createHarness({ databaseUrl: withDatabase(serverUrl, database) }), drop: () => dropDatabase(database) };
  });
});
