/**
 * POST /api/deals/:id/redeem through createApp (SPEC 3, 5 "Redemption"): the deal's client pays
 * with available bonus within the program's share of the deal; the entry, the balance and the
 * CRM fields (REDEEMED on the deal, BALANCE on the client) follow; a lost or deleted deal returns
 * what was redeemed, once; refusals are 409 with a reason and change nothing; bad input is a 400
 * naming the field; other portals cannot touch the deal.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dealAnswerSchema, errorBodySchema, redeemAnswerSchema } from '../../src/contract/api.js';
import { PROJECTION_GRACE_MS } from '../../src/handlers/process-crm-changes.js';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { MswPortal } from '../support/msw-portal.js';
import { FORM, enrolledReferrer, referredWin, sendEvent } from '../support/scenario.js';

let h: Harness;
let portalId: number;
// Moved only by the test that needs the projection job's retry to come due.
let offset = 0;
const clock = { now: () => new Date(Date.now() + offset) };
const MANAGER = 'user-token-manager-redeem-0001';

function redeem(dealId: number | string, body: unknown, opts: { token?: string; memberId?: string; key?: string } = {}) {
  const req = request(h.app)
    .post(`/api/deals/${dealId}/redeem`)
    .set('Authorization', `Bearer ${opts.token ?? MANAGER}`)
    .set('X-Sarafan-Portal', opts.memberId ?? h.portal.memberId);
  if (opts.key !== undefined) req.set('Idempotency-Key', opts.key);
  return req.send(body as object);
}

/** Anna: enrolled, 10 000.00 available from one referral. */
let anna: { contact: number; code: string };
let annaMember: number;

async function openDeal(contact: number | null, amount: number, extra: Record<string, unknown> = {}): Promise<number> {
  const deal = h.portal.add('deal', { ...(contact ? { CONTACT_ID: contact } : {}), STAGE_ID: 'NEW', OPPORTUNITY: amount, ...extra });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALADD', deal));
  await h.worker.drain();
  return deal;
}

async function setStage(deal: number, stage: string): Promise<void> {
  h.portal.update('deal', deal, { STAGE_ID: stage });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
}

function card(dealId: number) {
  return request(h.app).get(`/api/deals/${dealId}`).set('Authorization', `Bearer ${MANAGER}`).set('X-Sarafan-Portal', h.portal.memberId);
}

const available = async () => (await h.store.ledger.balances(portalId, [annaMember], clock.now())).get(annaMember)!.available;
const ledgerCount = async () => (await h.store.ledger.forMember(portalId, annaMember, { limit: 100 })).length;
const updates = () => h.portal.commands().filter((c) => /^crm\.(deal|contact|lead)\.update$/.test(c.method));

beforeAll(async () => {
  h = await createHarness({ clock });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  portalId = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  anna = await enrolledReferrer(h, portalId, 'Анна');
  await referredWin(h, anna.code, 100000, 'Борис');
  annaMember = (await h.store.members.findByEntity(portalId, 'contact', anna.contact))!.id;
  expect(await available()).toBe(10000_00);
});

afterAll(async () => {
  await h.close();
});

describe('POST /api/deals/:id/redeem', () => {
  it('writes off the amount against the deal: entry, new balance, total redeemed, CRM fields', async () => {
    const deal = await openDeal(anna.contact, 30000);
    h.portal.resetCalls();
    const res = await redeem(deal, { amount: 2500.5 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      dealId: deal,
      currency: 'RUB',
      entry: { reason: 'redemption', kind: 'correction', amount: -2500.5, status: 'available', dealId: deal, level: 0 },
      client: { entity: 'contact', id: anna.contact, balance: 7499.5, pending: 0 },
      dealRedeemed: 2500.5,
    });
    expect(res.body).not.toHaveProperty('facts');
    // The answer is the shared contract's RedeemAnswer, nothing more.
    expect(redeemAnswerSchema.strict().parse(res.body)).toEqual(res.body);

    const entries = await h.store.ledger.forDeal(portalId, deal);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ memberId: annaMember, amount: -2500_50, reason: 'redemption', kind: 'correction', causedBy: 'user:7', programVersion: null });
    expect(entries[0]!.idempotencyKey).toMatch(new RegExp(`^redeem:${deal}:r:[0-9a-f]{24}$`));
    expect(await available()).toBe(7499_50);

    // The projections were written at once (one batch) and the durable job completed.
    expect(h.portal.calls.map((c) => c.method)).toEqual(['profile', 'batch']);
    expect(Number(h.portal.get('deal', deal).UF_CRM_SARAFAN_REDEEMED)).toBe(2500.5);
    expect(Number(h.portal.get('contact', anna.contact).UF_CRM_SARAFAN_BALANCE)).toBe(7499.5);
    // The redemption is told on the deal's and the client's timelines, once, by the feedback job.
    h.portal.resetCalls();
    expect(await h.worker.drain()).toBe(1);
    expect(h.portal.commands('crm.timeline.comment.add').map((c) => [(c.params.fields as Record<string, unknown>).ENTITY_TYPE, Number((c.params.fields as Record<string, unknown>).ENTITY_ID)])).toEqual([
      ['deal', deal],
      ['contact', anna.contact],
    ]);
    expect(await h.store.jobs.depth(portalId)).toMatchObject({ queued: 0, running: 0 });

    // A second redemption adds up on the deal.
    const again = await redeem(deal, { amount: '1000' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ client: { balance: 6499.5 }, dealRedeemed: 3500.5 });
    expect(Number(h.portal.get('deal', deal).UF_CRM_SARAFAN_REDEEMED)).toBe(3500.5);
    // The read API shows it too.
    const card = await request(h.app).get(`/api/deals/${deal}`).set('Authorization', `Bearer ${MANAGER}`).set('X-Sarafan-Portal', h.portal.memberId);
    expect(card.body.entries.map((e: { reason: string; amount: number }) => [e.reason, e.amount])).toEqual([
      ['redemption', -2500.5],
      ['redemption', -1000],
    ]);
  });

  it('a CRM write that fails after the redemption committed is retried by the durable job', async () => {
    const deal = await openDeal(anna.contact, 3000);
    h.portal.failCommands('crm.deal.update', 10);
    const res = await redeem(deal, { amount: 100 });
    expect(res.status).toBe(200);
    expect(h.portal.get('deal', deal).UF_CRM_SARAFAN_REDEEMED).toBeUndefined(); // not written yet
    expect((await h.store.jobs.depth(portalId)).queued).toBe(2); // the crm.project job owed, and the feedback
    expect(await h.worker.drain()).toBe(1); // the feedback is sent; the projection waits for its grace period
    expect(h.portal.get('deal', deal).UF_CRM_SARAFAN_REDEEMED).toBeUndefined();

    h.portal.failCommands('crm.deal.update', 0);
    expect(await h.worker.drain()).toBe(0); // not due before the grace period
    offset += PROJECTION_GRACE_MS;
    expect(await h.worker.drain()).toBe(1);
    expect(Number(h.portal.get('deal', deal).UF_CRM_SARAFAN_REDEEMED)).toBe(100);
    expect((await h.store.jobs.depth(portalId)).queued).toBe(0);
  });

  it('refuses more than the deal allows (409 over_deal_limit) and more than the balance (409 insufficient_balance), changing nothing', async () => {
    const small = await openDeal(anna.contact, 1000); // 50 % → at most 500.00
    const big = await openDeal(anna.contact, 1_000_000);
    const before = { balance: await available(), entries: await ledgerCount() };
    h.portal.resetCalls();

    const over = await redeem(small, { amount: 500.01 });
    expect(over.status).toBe(409);
    expect(over.body.error).toMatchObject({ code: 'conflict', reason: 'over_deal_limit' });
    errorBodySchema.strict().parse(over.body);
    const short = await redeem(big, { amount: before.balance / 100 + 0.01 });
    expect(short.status).toBe(409);
    expect(short.body.error).toMatchObject({ code: 'conflict', reason: 'insufficient_balance' });

    expect(await available()).toBe(before.balance);
    expect(await ledgerCount()).toBe(before.entries);
    expect(updates()).toEqual([]);
    // Exactly the limit is fine.
    expect((await redeem(small, { amount: 500 })).status).toBe(200);
    expect((await redeem(small, { amount: 0.01 })).body.error.reason).toBe('over_deal_limit');
  });

  it('"max" redeems the most the deal and the balance allow, and says why when nothing is left', async () => {
    const deal = await openDeal(anna.contact, 600); // limit 300.00
    const balance = await available();
    const res = await redeem(deal, { amount: 'max' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ entry: { amount: -300 }, dealRedeemed: 300, client: { balance: (balance - 300_00) / 100 } });
    const none = await redeem(deal, { amount: 'max' });
    expect(none.status).toBe(409);
    expect(none.body.error.reason).toBe('over_deal_limit');
    expect((await h.store.ledger.forDeal(portalId, deal)).map((e) => e.amount)).toEqual([-300_00]);
  });

  it('answers a retried request with the same Idempotency-Key with the first redemption, spending once', async () => {
    const deal = await openDeal(anna.contact, 10000);
    const balance = await available();
    const first = await redeem(deal, { amount: 100 }, { key: 'frame-req-0001' });
    const retry = await redeem(deal, { amount: 100 }, { key: 'frame-req-0001' });
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.body.entry.id).toBe(first.body.entry.id);
    expect(retry.body.dealRedeemed).toBe(100);
    expect(await available()).toBe(balance - 100_00);
    expect((await h.store.ledger.forDeal(portalId, deal)).map((e) => e.idempotencyKey)).toEqual([`redeem:${deal}:key:frame-req-0001`]);
  });

  it('a lost deal returns what was redeemed, once; winning it again does not redeem again', async () => {
    const deal = await openDeal(anna.contact, 20000);
    const balance = await available();
    expect((await redeem(deal, { amount: 300 })).status).toBe(200);
    expect((await redeem(deal, { amount: 200 })).status).toBe(200);
    expect(await available()).toBe(balance - 500_00);

    await setStage(deal, 'LOSE');
    let entries = await h.store.ledger.forDeal(portalId, deal);
    expect(entries.map((e) => [e.reason, e.kind, e.amount])).toEqual([
      ['redemption', 'correction', -300_00],
      ['redemption', 'correction', -200_00],
      ['redemption', 'reversal', 500_00],
    ]);
    expect(entries[2]!.idempotencyKey).toBe(`deal:${deal}:redemption-return:${annaMember}:2`);
    expect(await available()).toBe(balance);
    expect(Number(h.portal.get('deal', deal).UF_CRM_SARAFAN_REDEEMED)).toBe(0);
    expect(Number(h.portal.get('contact', anna.contact).UF_CRM_SARAFAN_BALANCE)).toBe(balance / 100);

    // A lost deal refuses a redemption.
    const closed = await redeem(deal, { amount: 1 });
    expect(closed.status).toBe(409);
    expect(closed.body.error.reason).toBe('deal_closed');

    // The same event again, then won, then lost again: nothing more.
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await h.worker.drain();
    await setStage(deal, 'WON');
    await setStage(deal, 'LOSE');
    entries = await h.store.ledger.forDeal(portalId, deal);
    expect(entries.filter((e) => e.reason === 'redemption')).toHaveLength(3);
    expect(await available()).toBe(balance);
  });

  it('a won deal accepts a redemption; deleting it returns the redemption', async () => {
    const deal = await openDeal(anna.contact, 4000);
    await setStage(deal, 'WON');
    const balance = await available();
    const res = await redeem(deal, { amount: 150 });
    expect(res.status).toBe(200);
    expect(await available()).toBe(balance - 150_00);

    h.portal.entities.deal.delete(deal);
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALDELETE', deal));
    await h.worker.drain();
    const returned = (await h.store.ledger.forDeal(portalId, deal)).filter((e) => e.reason === 'redemption' && e.kind === 'reversal');
    expect(returned.map((e) => e.amount)).toEqual([150_00]);
    expect(await available()).toBe(balance);
    const gone = await redeem(deal, { amount: 1 });
    expect(gone.status).toBe(409);
    expect(gone.body.error.reason).toBe('deal_closed');
  });

  it('reads a deal Sarafan has not seen through the CRM port, then redeems against it', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 800 }); // no event
    h.portal.resetCalls();
    const res = await redeem(deal, { amount: 400 });
    expect(res.status).toBe(200);
    expect(res.body.dealRedeemed).toBe(400);
    const reads = h.portal.commands('crm.deal.list');
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads[0]!.params).toMatchObject({ filter: { '@ID': [String(deal)] } });
    expect(await h.store.deals.get(portalId, deal)).toMatchObject({ clientMemberId: annaMember, stageSemantic: 'P', amount: 800_00 });
    expect(Number(h.portal.get('deal', deal).UF_CRM_SARAFAN_REDEEMED)).toBe(400);
  });

  it('answers 404 for a deal the portal does not have and for a deal without a client; 409 for a client not in the program', async () => {
    h.portal.resetCalls();
    const missing = await redeem(999_999, { amount: 1 });
    expect(missing.status).toBe(404);
    expect(await h.store.deals.get(portalId, 999_999)).toBeNull();

    const noClient = h.portal.add('deal', { STAGE_ID: 'NEW', OPPORTUNITY: 500 });
    expect((await redeem(noClient, { amount: 1 })).status).toBe(404);

    const stranger = h.portal.add('contact', { NAME: 'Гость' });
    const strangerDeal = await openDeal(stranger, 500);
    const res = await redeem(strangerDeal, { amount: 1 });
    expect(res.status).toBe(409);
    expect(res.body.error.reason).toBe('insufficient_balance');
    expect(updates()).toEqual([]);
  });

  it('limits a deal in another currency by its converted amount; a currency without a rate is refused (409 currency_not_converted)', async () => {
    // 10 USD at the portal's 90 RUB = 900 RUB: the default program lets half of it, 450, be redeemed.
    const usd = await openDeal(anna.contact, 10, { CURRENCY_ID: 'USD' });
    const before = await available();
    // The deal card shows the converted amount and the same limit.
    expect((await card(usd)).body).toMatchObject({ redemption: { dealAmount: 900, dealCurrency: 'USD', redeemed: 0, maxNow: 450, open: true, blocked: null }, dealTotal: 900 });
    const over = await redeem(usd, { amount: 450.01 });
    expect(over.status).toBe(409);
    expect(over.body.error.reason).toBe('over_deal_limit');
    const max = await redeem(usd, { amount: 'max' });
    expect(max.status).toBe(200);
    expect(max.body).toMatchObject({ dealRedeemed: 450, currency: 'RUB' });
    expect(await available()).toBe(before - 450_00);

    const gbp = await openDeal(anna.contact, 10, { CURRENCY_ID: 'GBP' });
    expect((await card(gbp)).body).toMatchObject({ redemption: { dealAmount: null, dealCurrency: 'GBP', maxNow: 0, open: true, blocked: 'currency_not_converted' }, dealTotal: null });
    const res = await redeem(gbp, { amount: 1 });
    expect(res.status).toBe(409);
    expect(res.body.error.reason).toBe('currency_not_converted');
    expect(await h.store.ledger.forDeal(portalId, gbp)).toEqual([]);
  });

  it('answers 400 naming the bad field, and changes nothing', async () => {
    const deal = await openDeal(anna.contact, 1000);
    const entries = await ledgerCount();
    const paths = (res: request.Response) => (res.body.error.details as { path: string }[]).map((d) => d.path);
    for (const body of [{}, { amount: 0 }, { amount: -5 }, { amount: 1.234 }, { amount: 'ten' }, { amount: null }, { amount: '1.999' }, { amount: 1e12 }, { amount: 'MAX' }]) {
      const res = await redeem(deal, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(paths(res), JSON.stringify(body)).toEqual(['amount']);
    }
    const badId = await redeem('12abc', { amount: 1 });
    expect(badId.status).toBe(400);
    expect(paths(badId)).toEqual(['id']);
    const badKey = await redeem(deal, { amount: 1 }, { key: 'has spaces in it' });
    expect(badKey.status).toBe(400);
    expect(paths(badKey)).toEqual(['idempotency-key']);
    expect(await ledgerCount()).toBe(entries);
  });

  it('answers 401 without a token or with one the portal refuses', async () => {
    const deal = await openDeal(anna.contact, 1000);
    expect((await request(h.app).post(`/api/deals/${deal}/redeem`).send({ amount: 1 })).status).toBe(401);
    expect((await redeem(deal, { amount: 1 }, { token: 'not-a-token-of-this-portal' })).status).toBe(401);
    expect(await h.store.ledger.forDeal(portalId, deal)).toEqual([]);
  });
});

describe('portal isolation', () => {
  it("another portal's user cannot redeem on this portal's deal, even with the same deal id", async () => {
    const deal = await openDeal(anna.contact, 5000);
    const balance = await available();
    const other = new MswPortal({ domain: 'other-redeem.bitrix24.ru' });
    const OTHER_USER = 'user-token-other-redeem-0001';
    other.users.set(OTHER_USER, { ID: '3', ADMIN: true, NAME: 'Чужой' });
    h.msw.use(...other.handlers());
    try {
      const { query, body } = installRequest(other);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      // In its own portal the id names nothing: read through its own CRM, 404.
      other.resetCalls();
      const res = await redeem(deal, { amount: 1 }, { token: OTHER_USER, memberId: other.memberId });
      expect(res.status).toBe(404);
      expect(other.commands('crm.deal.list').length).toBeGreaterThanOrEqual(1);
      // Naming this portal with its token: refused by this portal's profile.
      expect((await redeem(deal, { amount: 1 }, { token: OTHER_USER })).status).toBe(401);
      expect(await h.store.ledger.forDeal(portalId, deal)).toEqual([]);
      expect(await available()).toBe(balance);
    } finally {
      h.msw.resetHandlers();
    }
  });
});

describe('GET /api/deals/:id: the redeem form (redemption, dealTotal)', () => {
  /** The deal card's redemption, parsed with the shared contract. */
  async function form(dealId: number) {
    const res = await card(dealId);
    expect(res.status).toBe(200);
    return dealAnswerSchema.parse(res.body);
  }

  it("maxNow is the deal's limit left: redeeming it succeeds, a kopeck more is 409 over_deal_limit", async () => {
    const deal = await openDeal(anna.contact, 3000.5);
    const before = await form(deal);
    expect(before.redemption).toEqual({ dealAmount: 3000.5, dealCurrency: 'RUB', redeemed: 0, maxNow: 1500.25, open: true, blocked: null });
    expect(before.dealTotal).toBe(3000.5);
    // Reading the card writes nothing and calls nothing but profile.
    h.portal.resetCalls();
    await form(deal);
    expect(h.portal.calls.filter((c) => c.method !== 'profile')).toEqual([]);

    const over = await redeem(deal, { amount: Math.round((before.redemption!.maxNow + 0.01) * 100) / 100 });
    expect(over.status).toBe(409);
    expect(errorBodySchema.parse(over.body).error.reason).toBe('over_deal_limit');
    const ok = await redeem(deal, { amount: before.redemption!.maxNow });
    expect(ok.status).toBe(200);
    expect(redeemAnswerSchema.parse(ok.body).dealRedeemed).toBe(1500.25);

    const after = await form(deal);
    expect(after.redemption).toEqual({ dealAmount: 3000.5, dealCurrency: 'RUB', redeemed: 1500.25, maxNow: 0, open: true, blocked: 'over_deal_limit' });
    expect(after.dealTotal).toBe(1500.25);
    expect(after.client).toMatchObject({ entity: 'contact', id: anna.contact, balance: (await available()) / 100 });
  });

  it('a lost deal is closed: maxNow 0, deal_closed; a client not in the program: insufficient_balance', async () => {
    const deal = await openDeal(anna.contact, 1000);
    await setStage(deal, 'LOSE');
    expect((await form(deal)).redemption).toMatchObject({ maxNow: 0, open: false, blocked: 'deal_closed' });
    expect((await redeem(deal, { amount: 1 })).body.error.reason).toBe('deal_closed');

    const stranger = h.portal.add('contact', { NAME: 'Гость' });
    const strangerDeal = await openDeal(stranger, 500);
    expect((await form(strangerDeal)).redemption).toEqual({ dealAmount: 500, dealCurrency: 'RUB', redeemed: 0, maxNow: 0, open: true, blocked: 'insufficient_balance' });
  });

  // Last in the file: it spends Anna's whole balance.
  it("maxNow is the client's balance when that is less: redeeming it succeeds, a kopeck more is 409 insufficient_balance", async () => {
    const deal = await openDeal(anna.contact, 10_000_000);
    const balance = (await available()) / 100;
    expect(balance).toBeGreaterThan(0);
    const before = await form(deal);
    expect(before.redemption).toMatchObject({ maxNow: balance, blocked: null });

    const over = await redeem(deal, { amount: Math.round((balance + 0.01) * 100) / 100 });
    expect(over.status).toBe(409);
    expect(over.body.error.reason).toBe('insufficient_balance');
    expect(await available()).toBe(Math.round(balance * 100));
    const ok = await redeem(deal, { amount: before.redemption!.maxNow });
    expect(ok.status).toBe(200);
    expect(await available()).toBe(0);

    const after = await form(deal);
    expect(after.redemption).toMatchObject({ redeemed: balance, maxNow: 0, blocked: 'insufficient_balance' });
    expect(after.dealTotal).toBe(Math.round((10_000_000 - balance) * 100) / 100);
  });
});
