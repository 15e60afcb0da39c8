/**
 * Property (fast-check, issue 9): one random schedule mixes everything that moves bonus — a
 * referred client's deals won, lost, re-opened and deleted through the referral loop (10 %
 * cashback to the client, 10 % referral reward to the referrer on every won deal), redemptions
 * against those deals, manual adjustments and promo activations for either person (codes of two
 * campaigns created per run, one of which ends mid-schedule), and the `bonus.expire` job — under
 * a 30-day expiry with the injected clock advancing. Everything runs through the real use cases,
 * the real store and the CRM port (msw playing the portal).
 *
 * After every step, for both people: the balance the read model answers = the sum of their
 * ledger = an independent model (an online FIFO purse: spends take the oldest bonus, a deal's
 * reversal takes its own credit first and, when that credit already expired, gets the expiry
 * given back at the next job run; unspent bonus expires at 30 days); every refusal is the one
 * the model expects; a redemption or adjustment never leaves an available balance below zero;
 * no promo code credits twice; and each deal's net referral and cashback credit is what the
 * program pays if it is won now, else 0 (expiry entries belong to no deal: they consume bonus,
 * they do not undo a reward).
 *
 * The clock moves one minute per step and whole days (plus a minute) per advance, after which
 * the job usually runs; when it does not, lapsed bonus is still counted in the balance until a
 * later run writes it off, but is no longer spendable (the property found redemptions and
 * adjustments spending it, then the run taking it again: tests/http/expiry-window.test.ts).
 * No credit lapses at the very instant of a step, so the order of the two is never ambiguous.
 */
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { activatePromoCode } from '../../src/handlers/activate-promo-code.js';
import { adjustBalance } from '../../src/handlers/adjust-balance.js';
import { createPromoCampaign } from '../../src/handlers/create-promo-campaign.js';
import { isAppError } from '../../src/handlers/errors.js';
import { expireBonus } from '../../src/handlers/expire-bonus.js';
import type { Installation, LedgerEntry } from '../../src/handlers/ports.js';
import { processCrmChanges } from '../../src/handlers/process-crm-changes.js';
import { readMember } from '../../src/handlers/read-member.js';
import { redeemBonus } from '../../src/handlers/redeem-bonus.js';
import { percentOf, toMinor } from '../../src/rules/money.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM } from '../support/scenario.js';

const ADMIN = 'user-token-admin-property-0001';
const DEALS = 3;
const MINUTE = 60_000;
const DAY = 86_400_000;
const EXPIRY_DAYS = 30;
const OPEN_CODES = 4;
const SHORT_CODES = 3;
const OPEN_VALUE = 300_00;
const SHORT_VALUE = 200_00;
/** The short campaign ends this long after the run starts. */
const SHORT_ENDS = 25 * DAY;

type Who = 'client' | 'referrer';
type Op =
  | { kind: 'stage'; deal: number; stage: 'WON' | 'LOSE' | 'NEW' }
  | { kind: 'delete'; deal: number }
  | { kind: 'redeem'; deal: number; amount: number }
  | { kind: 'adjust'; who: Who; amount: number }
  | { kind: 'promo'; who: Who; campaign: 'open' | 'short'; pick: number }
  /** `job`: whether the hourly run happened after the advance (else lapsed bonus waits for a later run). */
  | { kind: 'advance'; days: number; job: boolean }
  | { kind: 'expire' };

const dealIndex = fc.integer({ min: 0, max: DEALS - 1 });
const who = fc.constantFrom<Who>('client', 'referrer');
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('stage' as const), deal: dealIndex, stage: fc.constantFrom('WON' as const, 'WON' as const, 'LOSE' as const, 'NEW' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), deal: dealIndex }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('redeem' as const), deal: dealIndex, amount: fc.integer({ min: 1, max: 1000_00 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('adjust' as const), who, amount: fc.integer({ min: -1500_00, max: 1500_00 }).filter((n) => n !== 0) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('promo' as const), who, campaign: fc.constantFrom('open' as const, 'short' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), days: fc.integer({ min: 1, max: 31 }), job: fc.constantFrom(true, true, false) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const) }) },
);

const EXAMPLE: Op[] = [
  { kind: 'stage', deal: 0, stage: 'WON' },
  { kind: 'redeem', deal: 0, amount: 300_00 },
  { kind: 'promo', who: 'client', campaign: 'open', pick: 1 },
  { kind: 'promo', who: 'referrer', campaign: 'open', pick: 1 },
  { kind: 'adjust', who: 'referrer', amount: -50_00 },
  { kind: 'advance', days: 20, job: true },
  { kind: 'promo', who: 'client', campaign: 'short', pick: 0 },
  { kind: 'advance', days: 11, job: false },
  { kind: 'adjust', who: 'referrer', amount: -100_00 },
  { kind: 'redeem', deal: 0, amount: 200_00 },
  { kind: 'stage', deal: 0, stage: 'LOSE' },
  { kind: 'expire' },
  { kind: 'promo', who: 'client', campaign: 'short', pick: 1 },
  { kind: 'stage', deal: 1, stage: 'WON' },
  { kind: 'redeem', deal: 1, amount: 200_00 },
  { kind: 'delete', deal: 1 },
  { kind: 'redeem', deal: 1, amount: 1_00 },
  { kind: 'stage', deal: 0, stage: 'WON' },
  { kind: 'adjust', who: 'client', amount: -5000_00 },
  { kind: 'advance', days: 30, job: true },
  { kind: 'stage', deal: 0, stage: 'NEW' },
  { kind: 'advance', days: 1, job: true },
];

/** A credit as the model sees it: what is left of it, and what of it expired and was not given back. */
interface Lot {
  slot: string | null;
  expiresAt: number | null;
  remaining: number;
  open: boolean;
  expired: number;
}

/**
 * One person's bonus, kept online step by step (the store replays the whole ledger instead):
 * the balance the ledger should sum to, the open lots in FIFO order, debt (spent beyond what
 * was available, paid by the next credits) and expiry owed back (written by the next job run).
 */
class Purse {
  balance = 0;
  private lots: Lot[] = [];
  private debt = 0;
  private owedBack = 0;
  /** Lapsed and not written off yet (the next job run writes it). */
  private unwritten = 0;

  /** What a redemption or adjustment may take at `now`: the balance net of what the next run writes. */
  spendable(now: number): number {
    this.lapse(now);
    return this.balance - this.unwritten + this.owedBack;
  }

  /** A lot is gone from its expiresAt on, whether or not a job has run since. */
  private lapse(now: number): void {
    for (const lot of this.lots) {
      if (!lot.open || lot.expiresAt === null || lot.expiresAt > now) continue;
      lot.open = false;
      lot.expired = lot.remaining;
      this.unwritten += lot.remaining;
      lot.remaining = 0;
    }
  }

  credit(amount: number, slot: string | null, expires: boolean, now: number): void {
    this.lapse(now);
    const lot: Lot = { slot, expiresAt: expires ? now + EXPIRY_DAYS * DAY : null, remaining: amount, open: true, expired: 0 };
    const paid = Math.min(lot.remaining, this.debt);
    lot.remaining -= paid;
    this.debt -= paid;
    this.lots.push(lot);
    this.balance += amount;
  }

  /** `slot`: a deal's own entry (a reversal, a redemption) takes its own slot's bonus first. */
  spend(amount: number, slot: string | null, now: number): void {
    this.lapse(now);
    this.balance -= amount;
    let wanted = amount;
    const take = (lot: Lot) => {
      const taken = Math.min(lot.remaining, wanted);
      lot.remaining -= taken;
      wanted -= taken;
    };
    if (slot !== null) {
      for (const lot of this.lots) if (lot.open && lot.slot === slot) take(lot);
      for (const lot of this.lots) {
        if (lot.open || lot.slot !== slot || lot.expired === 0 || wanted === 0) continue;
        const back = Math.min(lot.expired, wanted);
        lot.expired -= back;
        wanted -= back;
        this.owedBack += back;
      }
    }
    for (const lot of this.lots) if (lot.open) take(lot);
    this.debt += wanted;
  }

  /** A job run at `now`: lapsed lots expire with what is left of them; owed expiry is given back. */
  expire(now: number): void {
    this.lapse(now);
    this.balance += this.owedBack - this.unwritten;
    this.owedBack = 0;
    this.unwritten = 0;
  }
}

interface ModelDeal {
  id: number;
  amount: number;
  stage: 'P' | 'S' | 'F' | 'deleted';
  redeemed: number;
}

let h: Harness;
let installation: Installation;
let clock = Date.parse('2027-01-04T09:00:00Z');
const tick = (ms = MINUTE) => {
  clock += ms;
};

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => new Date(clock) } });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  installation = (await h.store.installations.findByMemberId(h.portal.memberId))!;
  const program = await request(h.app)
    .put('/api/program')
    .set('Authorization', `Bearer ${ADMIN}`)
    .set('X-Sarafan-Portal', h.portal.memberId)
    .send({
      ...DEFAULT_PROGRAM,
      // Every won deal pays the referrer (within ten years of the referral): the whole schedule is in the window.
      referral: { ...DEFAULT_PROGRAM.referral, qualify: 'every_won_deal', windowDays: 3650, levels: [{ percent: 10 }] },
      cashback: { enabled: true, percent: 10 },
      redemption: { maxPercentOfDeal: 50 },
      expiry: { days: EXPIRY_DAYS },
      overspend: 'allow_negative',
    });
  expect(program.status).toBe(200);
  await h.worker.drain();
});

afterAll(async () => {
  await h?.close();
});

const reasonOf = (e: unknown): string => {
  if (isAppError(e) && e.reason) return e.reason;
  throw e;
};

const codesOf = async (campaignId: number): Promise<string[]> =>
  (await (h.store as SqlStore).rawQuery<{ code: string }>('SELECT code FROM promo_codes WHERE portal_id = $1 AND campaign_id = $2 ORDER BY code', [installation.id, campaignId])).map((r) => r.code);

describe('balance = sum of the ledger = the model, over everything that moves bonus', () => {
  it('holds after every step of random schedules of deal changes, redemptions, adjustments, promo codes and expiry runs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 100_00, max: 5000_00 }), { minLength: DEALS, maxLength: DEALS }), fc.array(op, { minLength: 16, maxLength: 30 }), async (amounts, ops) => {
        const pid = installation.id;
        const started = clock;
        const purse: Record<Who, Purse> = { client: new Purse(), referrer: new Purse() };
        const open = await createPromoCampaign(h.deps, pid, { name: 'Всегда', count: OPEN_CODES, value: OPEN_VALUE, expiresAt: null }, 1);
        const short = await createPromoCampaign(h.deps, pid, { name: 'Неделя', count: SHORT_CODES, value: SHORT_VALUE, expiresAt: new Date(started + SHORT_ENDS) }, 1);
        const codes = { open: await codesOf(open.id), short: await codesOf(short.id) };
        const used = new Set<string>();

        // The referrer joins by activating a code (which enrols them: they get a referral code).
        tick();
        const contacts: Record<Who, number> = { referrer: h.portal.add('contact', { NAME: 'Реферер' }), client: 0 };
        await activatePromoCode(h.deps, installation, { entity: 'contact', id: contacts.referrer }, codes.open[0]!, 1);
        used.add(codes.open[0]!);
        purse.referrer.credit(OPEN_VALUE, null, true, clock);
        const referrer = (await h.store.members.findByEntity(pid, 'contact', contacts.referrer))!;
        expect(referrer.code).not.toBeNull();

        // The client comes with the referrer's code and some bonus to spend; their deals start in progress.
        tick();
        contacts.client = h.portal.add('contact', { NAME: 'Клиент', [F.REF_CODE]: referrer.code });
        const deals: ModelDeal[] = amounts.map((amount) => ({ id: h.portal.add('deal', { CONTACT_ID: contacts.client, STAGE_ID: 'NEW', OPPORTUNITY: amount / 100 }), amount, stage: 'P', redeemed: 0 }));
        await processCrmChanges(h.deps, pid, [{ entity: 'contact', id: contacts.client, deleted: false }, ...deals.map((d) => ({ entity: 'deal' as const, id: d.id, deleted: false }))]);
        tick();
        await adjustBalance(h.deps, installation, { person: { entity: 'contact', id: contacts.client }, amount: 1000_00, comment: 'старт', userId: 1 });
        purse.client.credit(1000_00, null, false, clock);
        const client = (await h.store.members.findByEntity(pid, 'contact', contacts.client))!;
        expect(await h.store.referrals.ofReferees(pid, [client.id])).toEqual([expect.objectContaining({ referrerMemberId: referrer.id, status: 'active' })]);
        const memberOf: Record<Who, number> = { referrer: referrer.id, client: client.id };

        const runJob = async () => {
          await expireBonus(h.deps, pid);
          purse.client.expire(clock);
          purse.referrer.expire(clock);
        };

        /** A deal's change through the loop, and what settling it moves in the model. */
        const settle = async (deal: ModelDeal, next: ModelDeal['stage']) => {
          const wasWon = deal.stage === 'S';
          const returned = next === 'F' || next === 'deleted' ? deal.redeemed : 0;
          await processCrmChanges(h.deps, pid, [{ entity: 'deal', id: deal.id, deleted: next === 'deleted' }]);
          deal.stage = next;
          if (returned > 0) deal.redeemed = 0;
          const won = next === 'S';
          const cashback = percentOf(deal.amount, 10);
          // Credits (and returned redemptions) become available before a reversal of the same instant.
          if (returned > 0) purse.client.credit(returned, `${deal.id}:redemption`, false, clock);
          if (won && !wasWon) {
            purse.client.credit(cashback, `${deal.id}:cashback`, true, clock);
            purse.referrer.credit(cashback, `${deal.id}:referral`, true, clock);
          }
          if (wasWon && !won) {
            purse.client.spend(cashback, `${deal.id}:cashback`, clock);
            purse.referrer.spend(cashback, `${deal.id}:referral`, clock);
          }
        };

        const check = async (step: string) => {
          const entries = await h.store.ledger.forMembers(pid, [client.id, referrer.id]);
          const of = (m: number) => entries.filter((e) => e.memberId === m);
          for (const w of ['client', 'referrer'] as const) {
            const mine = of(memberOf[w]);
            const card = await readMember(h.deps, installation, { entity: 'contact', id: contacts[w], limit: 1 });
            expect({ step, who: w, sum: mine.reduce((s, e) => s + e.amount, 0), card: toMinor(card.balance), pending: card.pending }).toEqual({ step, who: w, sum: purse[w].balance, card: purse[w].balance, pending: 0 });
          }
          const promo = entries.filter((e) => e.reason === 'promo');
          expect(new Set(promo.map((e) => e.idempotencyKey)).size).toBe(promo.length);
          expect(promo.map((e) => e.idempotencyKey.replace(/^promo:/, '')).sort()).toEqual([...used].sort());
          const net = (list: LedgerEntry[], dealId: number, reason: string) => list.filter((e) => e.dealId === dealId && e.reason === reason).reduce((s, e) => s + e.amount, 0);
          for (const d of deals) {
            const pays = d.stage === 'S' ? percentOf(d.amount, 10) : 0;
            expect({ step, deal: d.id, referral: net(of(referrer.id), d.id, 'referral'), cashback: net(of(client.id), d.id, 'cashback') }).toEqual({ step, deal: d.id, referral: pays, cashback: pays });
            const redeemed = 0 - net(of(client.id), d.id, 'redemption');
            expect(redeemed).toBe(d.redeemed);
            expect(redeemed).toBeLessThanOrEqual(percentOf(d.amount, 50));
          }
          // Expiry entries consume bonus; they never belong to a deal.
          expect(entries.filter((e) => e.reason === 'expiry' && e.dealId !== null)).toEqual([]);
        };
        await check('setup');

        for (const [n, o] of ops.entries()) {
          const step = `${n}: ${JSON.stringify(o)}`;
          if (o.kind === 'advance') {
            tick(o.days * DAY + MINUTE);
            if (o.job) await runJob();
            await check(step);
            continue;
          }
          tick();
          if (o.kind === 'expire') {
            await runJob();
          } else if (o.kind === 'adjust') {
            const spendable = purse[o.who].spendable(clock);
            const want = o.amount < 0 && spendable + o.amount < 0 ? 'insufficient_balance' : 'ok';
            const got = await adjustBalance(h.deps, installation, { person: { entity: 'contact', id: contacts[o.who] }, amount: o.amount, comment: 'правка', userId: 1 }).then(() => 'ok', reasonOf);
            expect({ step, got }).toEqual({ step, got: want });
            if (got === 'ok') {
              if (o.amount > 0) purse[o.who].credit(o.amount, null, false, clock);
              else purse[o.who].spend(-o.amount, null, clock);
              if (o.amount < 0) expect(purse[o.who].spendable(clock)).toBeGreaterThanOrEqual(0);
            }
          } else if (o.kind === 'promo') {
            const list = codes[o.campaign];
            const code = list[o.pick % list.length]!;
            const want = used.has(code) ? 'already_used' : o.campaign === 'short' && clock >= started + SHORT_ENDS ? 'campaign_over' : 'ok';
            const got = await activatePromoCode(h.deps, installation, { entity: 'contact', id: contacts[o.who] }, code.toLowerCase(), 1).then(() => 'ok', reasonOf);
            expect({ step, got }).toEqual({ step, got: want });
            if (got === 'ok') {
              used.add(code);
              purse[o.who].credit(o.campaign === 'open' ? OPEN_VALUE : SHORT_VALUE, null, true, clock);
            }
          } else {
            const deal = deals[o.deal]!;
            if (o.kind === 'redeem') {
              const balance = purse.client.balance;
              const spendable = purse.client.spendable(clock);
              const want =
                deal.stage === 'F' || deal.stage === 'deleted'
                  ? 'deal_closed'
                  : deal.redeemed + o.amount > percentOf(deal.amount, 50)
                    ? 'over_deal_limit'
                    : o.amount > spendable
                      ? 'insufficient_balance'
                      : 'ok';
              const got = await redeemBonus(h.deps, installation, { dealId: deal.id, amount: o.amount, userId: 7 }).then((a) => {
                expect(a.facts.balanceAfter).toBe(balance - o.amount);
                return 'ok';
              }, reasonOf);
              expect({ step, got }).toEqual({ step, got: want });
              if (got === 'ok') {
                deal.redeemed += o.amount;
                purse.client.spend(o.amount, `${deal.id}:redemption`, clock);
                expect(purse.client.spendable(clock)).toBeGreaterThanOrEqual(0);
              }
            } else if (deal.stage !== 'deleted') {
              if (o.kind === 'delete') {
                h.portal.entities.deal.delete(deal.id);
                await settle(deal, 'deleted');
              } else {
                h.portal.update('deal', deal.id, { STAGE_ID: o.stage });
                await settle(deal, o.stage === 'WON' ? 'S' : o.stage === 'LOSE' ? 'F' : 'P');
              }
            }
          }
          await check(step);
        }

        // The member card over HTTP agrees with the read model at the end of the run.
        for (const w of ['client', 'referrer'] as const) {
          const card = await request(h.app).get(`/api/members/contact/${contacts[w]}`).set('Authorization', `Bearer ${ADMIN}`).set('X-Sarafan-Portal', h.portal.memberId);
          expect(card.status).toBe(200);
          expect(toMinor(card.body.balance)).toBe(purse[w].balance);
        }
        // Runs share the portal and the clock: the next one starts well after this one's credits lapsed.
        tick(EXPIRY_DAYS * DAY + MINUTE);
        await runJob();
      }),
      // The example first: every kind of step, spends between a lapse and the job run, a deal lost
      // after its rewards expired (the expiry is given back), a returned redemption, a deletion, a
      // re-won deal and both promo refusals.
      { numRuns: 7, examples: [[[1000_00, 2000_00, 3000_00], EXAMPLE]] },
    );
  }, 240_000); // a hang guard only: each run drives the real loop and store
});
