/**
 * The read API of the frame UI through createApp (SPEC 3): GET /api/members/:entity/:id and
 * GET /api/deals/:id after a referred deal is won, ledger statuses and paging, validation of
 * the path and query, authentication, and portal isolation with a second portal installed in
 * the same msw server.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dealAnswerSchema, errorBodySchema, memberAnswerSchema } from '../../src/contract/api.js';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';
import { MswPortal } from '../support/msw-portal.js';
import { FORM, enrolledReferrer, referredWin, sendEvent } from '../support/scenario.js';

let h: Harness;
let portalId: number;
const MANAGER = 'user-token-manager-read-0001';

function get(path: string, token = MANAGER, memberId = h.portal.memberId) {
  return request(h.app).get(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', memberId);
}

let referrer: { contact: number; code: string };
let client: { contact: number; deal: number };

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  portalId = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  referrer = await enrolledReferrer(h, portalId, 'Анна');
  client = await referredWin(h, referrer.code, 100000, 'Борис');
});

afterAll(async () => {
  await h.close();
});

describe('GET /api/members/:entity/:id', () => {
  it("answers the referrer's code, link, credited balance and the ledger entry, checked with profile only", async () => {
    h.portal.resetCalls();
    const res = await get(`/api/members/contact/${referrer.contact}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      entity: 'contact',
      id: referrer.contact,
      enrolled: true,
      code: referrer.code,
      link: `${APP_BASE_URL}/r/${(await h.store.installations.get(portalId))!.publicId}/${referrer.code}`,
      currency: 'RUB',
      balance: 10000,
      pending: 0,
      tier: null,
      referrals: 1,
      referrer: null,
      nextBefore: null,
    });
    expect(res.body.joinedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // The answer is what the shared contract says it is (the Vue client parses it with the same schema).
    expect(memberAnswerSchema.parse(res.body)).toEqual(res.body);
    expect(res.body.ledger).toHaveLength(1);
    expect(res.body.ledger[0]).toMatchObject({ reason: 'referral', kind: 'credit', amount: 10000, status: 'available', dealId: client.deal, level: 1 });
    // The token was checked on the stored endpoint; reading makes no other portal call.
    expect(h.portal.calls.map((c) => [c.method, c.token])).toEqual([['profile', MANAGER]]);
  });

  it('answers the referred client with its referrer', async () => {
    const res = await get(`/api/members/contact/${client.contact}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ enrolled: true, balance: 0, pending: 0, referrals: 0, referrer: { entity: 'contact', id: referrer.contact }, ledger: [] });
    memberAnswerSchema.parse(res.body);
  });

  it('answers a referred lead that has not won yet: not enrolled, with its referrer', async () => {
    const lead = h.portal.add('lead', { TITLE: 'Заявка', UF_CRM_SARAFAN_REF_CODE: referrer.code });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMLEADADD', lead));
    await h.worker.drain();
    const res = await get(`/api/members/lead/${lead}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ entity: 'lead', id: lead, enrolled: false, code: null, link: null, balance: 0, referrer: { entity: 'contact', id: referrer.contact } });
  });

  it('answers a person not in the program with enrolled:false and zeros', async () => {
    const res = await get('/api/members/contact/987654');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      entity: 'contact',
      id: 987654,
      enrolled: false,
      code: null,
      link: null,
      joinedAt: null,
      currency: 'RUB',
      balance: 0,
      pending: 0,
      tier: null,
      nextTier: null,
      tierProgress: null,
      referrals: 0,
      referrer: null,
      expiring: { total: 0, dates: [] },
      referral: null,
      referralHistory: [],
      ledger: [],
      coupons: [],
      nextBefore: null,
    });
  });

  it('pages the ledger newest first with ?limit= and the ?before= cursor; a reversed credit shows as reversed', async () => {
    const second = await referredWin(h, referrer.code, 2500.5, 'Вера');
    // Un-winning the second deal reverses its credit.
    h.portal.update('deal', second.deal, { STAGE_ID: 'LOSE' });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', second.deal));
    await h.worker.drain();

    const all = await get(`/api/members/contact/${referrer.contact}`);
    expect(all.body.balance).toBe(10000);
    expect(all.body.ledger.map((e: { dealId: number; kind: string; amount: number; status: string }) => [e.dealId, e.kind, e.amount, e.status])).toEqual([
      [second.deal, 'reversal', -250.05, 'reversed'],
      [second.deal, 'credit', 250.05, 'reversed'],
      [client.deal, 'credit', 10000, 'available'],
    ]);

    memberAnswerSchema.parse(all.body);
    const page1 = await get(`/api/members/contact/${referrer.contact}?limit=2`);
    expect(page1.body.ledger.map((e: { id: number }) => e.id)).toEqual(all.body.ledger.slice(0, 2).map((e: { id: number }) => e.id));
    expect(page1.body.nextBefore).toBe(all.body.ledger[1].id);
    // Statuses do not depend on the page: the credit on page 2 still knows it was reversed.
    const page2 = await get(`/api/members/contact/${referrer.contact}?limit=1&before=${page1.body.ledger[0].id}`);
    expect(page2.body.ledger).toEqual([all.body.ledger[1]]);
    const last = await get(`/api/members/contact/${referrer.contact}?limit=2&before=${page1.body.nextBefore}`);
    expect(last.body.ledger).toEqual([all.body.ledger[2]]);
    expect(last.body.nextBefore).toBeNull();
  });

  it('answers 400 naming the bad parameter', async () => {
    const detailPaths = (res: request.Response) => (res.body.error.details as { path: string }[]).map((d) => d.path);
    const company = await get('/api/members/company/1');
    expect(company.status).toBe(400);
    expect(detailPaths(company)).toEqual(['entity']);
    errorBodySchema.parse(company.body);
    for (const id of ['abc', '0', '1.5', '-3', '99999999999999999999']) {
      const res = await get(`/api/members/contact/${id}`);
      expect(res.status, id).toBe(400);
      expect(detailPaths(res)).toEqual(['id']);
    }
    for (const limit of ['0', '101', 'x', '']) {
      const res = await get(`/api/members/contact/1?limit=${limit}`);
      expect(res.status, limit).toBe(400);
      expect(detailPaths(res)).toEqual(['limit']);
    }
    const before = await get('/api/members/contact/1?before=last');
    expect(before.status).toBe(400);
    expect(detailPaths(before)).toEqual(['before']);
  });
});

describe('GET /api/deals/:id', () => {
  it('answers the referral, the entry it caused with its status, and the client', async () => {
    const res = await get(`/api/deals/${client.deal}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: client.deal,
      currency: 'RUB',
      referral: { code: referrer.code, referrer: { entity: 'contact', id: referrer.contact }, source: expect.any(String) },
      client: { entity: 'contact', id: client.contact, balance: 0, pending: 0 },
    });
    expect(dealAnswerSchema.parse(res.body)).toEqual(res.body);
    expect(res.body.entries).toHaveLength(1);
    expect(res.body.entries[0]).toMatchObject({
      member: { entity: 'contact', id: referrer.contact },
      reason: 'referral',
      kind: 'credit',
      level: 1,
      amount: 10000,
      status: 'available',
      dealId: client.deal,
    });
  });

  it('answers a deal Sarafan has not seen with no referral and no entries', async () => {
    const res = await get('/api/deals/424242');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: 424242, currency: 'RUB', referral: null, entries: [], coupons: [], client: null, redemption: null, dealTotal: null });
    dealAnswerSchema.parse(res.body);
  });

  it('answers 400 for a non-numeric id', async () => {
    const res = await get('/api/deals/12abc');
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(['id']);
  });
});

describe('authentication', () => {
  it('refuses a request without a token, without the portal header, or with a token the portal rejects (401)', async () => {
    expect((await request(h.app).get(`/api/members/contact/${referrer.contact}`)).status).toBe(401);
    expect((await request(h.app).get(`/api/deals/${client.deal}`).set('Authorization', `Bearer ${MANAGER}`)).status).toBe(401);
    const forged = await get(`/api/members/contact/${referrer.contact}`, 'token-the-portal-does-not-know');
    expect(forged.status).toBe(401);
    expect(errorBodySchema.parse(forged.body).error.code).toBe('unauthorized');
    expect(JSON.stringify(forged.body)).not.toContain(referrer.code);
  });
});

describe('portal isolation', () => {
  it("another portal's user reads only its own portal, even for the same CRM ids", async () => {
    // A second portal in the same msw server (its handlers take precedence until reset).
    const other = new MswPortal({ domain: 'other.bitrix24.ru' });
    const OTHER_USER = 'user-token-other-portal-0001';
    other.users.set(OTHER_USER, { ID: '3', ADMIN: false, NAME: 'Чужой' });
    h.msw.use(...other.handlers());
    try {
      const { query, body } = installRequest(other);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      const otherId = (await h.store.installations.findByMemberId(other.memberId))!.id;
      expect(otherId).not.toBe(portalId);

      // Its own portal: the same contact and deal ids hold nothing there.
      const member = await get(`/api/members/contact/${referrer.contact}`, OTHER_USER, other.memberId);
      expect(member.status).toBe(200);
      expect(member.body).toMatchObject({ enrolled: false, code: null, balance: 0, referrals: 0, ledger: [] });
      const deal = await get(`/api/deals/${client.deal}`, OTHER_USER, other.memberId);
      expect(deal.body).toMatchObject({ referral: null, entries: [], client: null });

      // Naming this portal with the other portal's token: this portal's profile refuses it.
      h.portal.resetCalls();
      const cross = await get(`/api/members/contact/${referrer.contact}`, OTHER_USER, h.portal.memberId);
      expect(cross.status).toBe(401);
      expect(JSON.stringify(cross.body)).not.toContain(referrer.code);
      expect(h.portal.calls.map((c) => [c.method, c.token])).toEqual([['profile', OTHER_USER]]);
      // And the other way round.
      expect((await get(`/api/deals/${client.deal}`, MANAGER, other.memberId)).status).toBe(401);
    } finally {
      h.msw.resetHandlers();
    }
  });
});
