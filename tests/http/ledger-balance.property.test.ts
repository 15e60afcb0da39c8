/**
 * Property (fast-check): over random schedules of wins, losses, re-openings and deletions of a
 * client's deals, redemptions against them and manual adjustments — run through the real use
 * cases, the real store and the CRM port (msw playing the portal) — the client's balance is the
 * sum of its ledger, equals an independent model of the program (10 % cashback per won deal,
 * redemptions up to 50 % of a deal, returned when the deal is lost or deleted, adjustments never
 * below zero), every refusal is the one the model expects, and no deal ever carries more
 * redeemed than its limit.
 */
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adjustBalance } from '../../src/handlers/adjust-balance.js';
import { isAppError } from '../../src/handlers/errors.js';
import type { Installation } from '../../src/handlers/ports.js';
import { processCrmChanges } from '../../src/handlers/process-crm-changes.js';
import { redeemBonus } from '../../src/handlers/redeem-bonus.js';
import { percentOf } from '../../src/rules/money.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM } from '../support/scenario.js';

const ADMIN = 'user-token-admin-property-0001';
const DEALS = 3;

type Op =
  | { kind: 'stage'; deal: number; stage: 'WON' | 'LOSE' | 'NEW' }
  | { kind: 'delete'; deal: number }
  | { kind: 'redeem'; deal: number; amount: number }
  | { kind: 'adjust'; amount: number };

const dealIndex = fc.integer({ min: 0, max: DEALS - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('stage' as const), deal: dealIndex, stage: fc.constantFrom('WON' as const, 'LOSE' as const, 'NEW' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), deal: dealIndex }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('redeem' as const), deal: dealIndex, amount: fc.integer({ min: 1, max: 3000_00 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('adjust' as const), amount: fc.integer({ min: -1500_00, max: 1500_00 }).filter((n) => n !== 0) }) },
);

interface ModelDeal {
  id: number;
  amount: number;
  stage: 'P' | 'S' | 'F' | 'deleted';
  redeemed: number;
}

let h: Harness;
let installation: Installation;

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  installation = (await h.store.installations.findByMemberId(h.portal.memberId))!;
  const program = await request(h.app)
    .put('/api/program')
    .set('Authorization', `Bearer ${ADMIN}`)
    .set('X-Sarafan-Portal', h.portal.memberId)
    .send({ ...DEFAULT_PROGRAM, cashback: { enabled: true, percent: 10 }, redemption: { maxPercentOfDeal: 50 }, overspend: 'allow_negative' });
  expect(program.status).toBe(200);
  await h.worker.drain();
});

afterAll(async () => {
  await h.close();
});

const reasonOf = (e: unknown): string => {
  if (isAppError(e) && e.reason) return e.reason;
  throw e;
};

describe('balance = sum of the ledger = the model', () => {
  it('holds over random schedules of wins, losses, deletions, redemptions and adjustments', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 100_00, max: 5000_00 }), { minLength: DEALS, maxLength: DEALS }), fc.array(op, { minLength: 1, maxLength: 12 }), async (amounts, ops) => {
        const pid = installation.id;
        const contact = h.portal.add('contact', { NAME: 'Клиент' });
        let adjusted = 1000_00;
        await adjustBalance(h.deps, installation, { person: { entity: 'contact', id: contact }, amount: adjusted, comment: 'старт', userId: 1 });
        const memberId = (await h.store.members.findByEntity(pid, 'contact', contact))!.id;
        const deals: ModelDeal[] = amounts.map((amount) => ({ id: h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: amount / 100 }), amount, stage: 'P', redeemed: 0 }));
        await processCrmChanges(h.deps, pid, deals.map((d) => ({ entity: 'deal' as const, id: d.id, deleted: false })));

        const cashback = () => deals.filter((d) => d.stage === 'S').reduce((s, d) => s + percentOf(d.amount, 10), 0);
        const expected = () => adjusted + cashback() - deals.reduce((s, d) => s + d.redeemed, 0);

        for (const o of ops) {
          if (o.kind === 'adjust') {
            const want = expected() + o.amount < 0 && o.amount < 0 ? 'insufficient_balance' : 'ok';
            const got = await adjustBalance(h.deps, installation, { person: { entity: 'contact', id: contact }, amount: o.amount, comment: 'правка', userId: 1 }).then(() => 'ok', reasonOf);
            expect(got).toBe(want);
            if (got === 'ok') adjusted += o.amount;
            continue;
          }
          const deal = deals[o.deal]!;
          if (o.kind === 'redeem') {
            const want =
              deal.stage === 'F' || deal.stage === 'deleted'
                ? 'deal_closed'
                : deal.redeemed + o.amount > percentOf(deal.amount, 50)
                  ? 'over_deal_limit'
                  : o.amount > expected()
                    ? 'insufficient_balance'
                    : 'ok';
            const got = await redeemBonus(h.deps, installation, { dealId: deal.id, amount: o.amount, userId: 7 }).then((a) => {
              expect(a.facts.balanceAfter).toBe(expected() - o.amount);
              return 'ok';
            }, reasonOf);
            expect(got).toBe(want);
            if (got === 'ok') deal.redeemed += o.amount;
            continue;
          }
          if (deal.stage === 'deleted') continue;
          if (o.kind === 'delete') {
            h.portal.entities.deal.delete(deal.id);
            await processCrmChanges(h.deps, pid, [{ entity: 'deal', id: deal.id, deleted: true }]);
            deal.stage = 'deleted';
            deal.redeemed = 0;
          } else {
            h.portal.update('deal', deal.id, { STAGE_ID: o.stage });
            await processCrmChanges(h.deps, pid, [{ entity: 'deal', id: deal.id, deleted: false }]);
            deal.stage = o.stage === 'WON' ? 'S' : o.stage === 'LOSE' ? 'F' : 'P';
            if (deal.stage === 'F') deal.redeemed = 0;
          }
        }

        const entries = await h.store.ledger.forMember(pid, memberId, { limit: 1000 });
        const balance = (await h.store.ledger.balances(pid, [memberId], new Date())).get(memberId)!;
        expect(balance.pending).toBe(0);
        expect(balance.available).toBe(entries.reduce((s, e) => s + e.amount, 0));
        expect(balance.available).toBe(expected());
        for (const d of deals) {
          const redeemed = 0 - entries.filter((e) => e.dealId === d.id && e.reason === 'redemption').reduce((s, e) => s + e.amount, 0);
          expect(redeemed).toBe(d.redeemed);
          expect(redeemed).toBeLessThanOrEqual(percentOf(d.amount, 50));
        }
      }),
      { numRuns: 10 },
    );
  }, 240_000); // a hang guard only: each run drives the real loop and store
});
