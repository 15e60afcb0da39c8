/**
 * What the CRM card tabs read through createApp (SPEC 7, issue 11): GET /api/session,
 * GET /api/codes/:code, GET /api/members/:entity/:id/referrals and the member's tierProgress —
 * answers checked against the shared contract, the stored state and the outbound calls (profile
 * only), validation (400 naming the field), authentication (401) and portal isolation.
 *
 * The program: two referrer levels (10 %, 5 %), tiers by won amount (Silver from 1 000, Gold from
 * 100 000), expiry after 365 days, at most 30 % of a deal redeemable. Anna referred Boris (won
 * 100 000), a spouse sharing her phone (rejected: self-referral) and a lead (not won yet); Boris
 * referred Vera (won 20 000), who referred Gleb (won 5 000).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  codeCheckAnswerSchema,
  errorBodySchema,
  memberAnswerSchema,
  referralTreeAnswerSchema,
  sessionAnswerSchema,
  type ReferralNode,
} from '../../src/contract/api.js';
import { readReferralTree } from '../../src/handlers/read-referral-tree.js';
import { DEFAULT_PROGRAM, type Program } from '../../src/rules/program.js';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { MswPortal } from '../support/msw-portal.js';
import { FORM, referredWin, sendEvent } from '../support/scenario.js';

let h: Harness;
let portalId: number;
const ADMIN = 'user-token-admin-card-0001';
const MANAGER = 'user-token-manager-card-0001';

function get(path: string, token = MANAGER, memberId = h.portal.memberId) {
  return request(h.app).get(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', memberId);
}

const paths = (res: request.Response) => (errorBodySchema.parse(res.body).error.details as { path: string }[]).map((d) => d.path);

const PROGRAM: Program = {
  ...(structuredClone(DEFAULT_PROGRAM) as Program),
  referral: { ...(structuredClone(DEFAULT_PROGRAM) as Program).referral, levels: [{ percent: 10 }, { percent: 5 }] },
  tiers: {
    basis: 'won_amount',
    levels: [
      { name: 'Silver', from: 1000, cashbackPercent: 1 },
      { name: 'Gold', from: 100000, cashbackPercent: 2 },
    ],
  },
  expiry: { days: 365 },
  redemption: { maxPercentOfDeal: 30 },
};

let anna: { contact: number; code: string; memberId: number };
let boris: { contact: number; deal: number; code: string };
let vera: { contact: number; deal: number; code: string };
let gleb: { contact: number; deal: number };
let spouse: number;
let lead: number;

async function codeOf(contact: number): Promise<string> {
  const m = await h.store.members.findByEntity(portalId, 'contact', contact);
  if (!m?.code) throw new Error(`contact ${contact} was not enrolled`);
  return m.code;
}

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Администратор' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  portalId = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  const put = await request(h.app).put('/api/program').set('Authorization', `Bearer ${ADMIN}`).set('X-Sarafan-Portal', h.portal.memberId).send(PROGRAM);
  expect(put.status).toBe(200);

  // Anna, with a phone her spouse shares: enrolled by her first won deal (1.00).
  const a = h.portal.add('contact', { NAME: 'Анна', PHONE: [{ ID: '1', TYPE_ID: 'PHONE', VALUE: '+7 916 555-44-33', VALUE_TYPE: 'MOBILE' }] });
  const first = h.portal.add('deal', { CONTACT_ID: a, STAGE_ID: 'WON', OPPORTUNITY: 1 });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', first));
  await h.worker.drain();
  anna = { contact: a, code: await codeOf(a), memberId: (await h.store.members.findByEntity(portalId, 'contact', a))!.id };

  const b = await referredWin(h, anna.code, 100000, 'Борис');
  boris = { ...b, code: await codeOf(b.contact) };
  spouse = h.portal.add('contact', { NAME: 'Муж Анны', UF_CRM_SARAFAN_REF_CODE: anna.code, PHONE: [{ ID: '2', TYPE_ID: 'PHONE', VALUE: '89165554433', VALUE_TYPE: 'HOME' }] });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTADD', spouse));
  await h.worker.drain();
  lead = h.portal.add('lead', { TITLE: 'Заявка', UF_CRM_SARAFAN_REF_CODE: anna.code });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMLEADADD', lead));
  await h.worker.drain();
  const v = await referredWin(h, boris.code, 20000, 'Вера');
  vera = { ...v, code: await codeOf(v.contact) };
  gleb = await referredWin(h, vera.code, 5000, 'Глеб');
});

afterAll(async () => {
  await h.close();
});

describe('GET /api/session', () => {
  it('answers who the caller is and the program facts the tabs render, to a manager', async () => {
    h.portal.resetCalls();
    const res = await get('/api/session');
    expect(res.status).toBe(200);
    const version = (await h.store.programs.current(portalId))!.version;
    const installation = (await h.store.installations.get(portalId))!;
    expect(sessionAnswerSchema.parse(res.body)).toEqual(res.body);
    expect(res.body).toEqual({
      userId: 7,
      isAdmin: false,
      portal: { domain: h.portal.domain, lang: installation.lang },
      program: {
        version,
        currency: 'RUB',
        referralEnabled: true,
        levels: 2,
        tiers: { basis: 'won_amount', levels: [{ name: 'Silver', from: 1000, cashbackPercent: 1 }, { name: 'Gold', from: 100000, cashbackPercent: 2 }] },
        redemption: { maxPercentOfDeal: 30 },
        expiryDays: 365,
      },
    });
    // Nothing secret: no token, no member_id.
    const text = JSON.stringify(res.body);
    for (const secret of [MANAGER, h.portal.memberId, installation.tokens!.accessToken, installation.tokens!.refreshToken, installation.applicationToken ?? 'none']) {
      expect(text).not.toContain(secret);
    }
    expect(h.portal.calls.filter((c) => c.method !== 'profile')).toEqual([]);
  });

  it('tells an admin so', async () => {
    const res = await get('/api/session', ADMIN);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ userId: 1, isAdmin: true });
  });

  it('answers 401 without a token, without the portal header, or with a token the portal refuses', async () => {
    const none = await request(h.app).get('/api/session');
    expect(none.status).toBe(401);
    expect(errorBodySchema.parse(none.body).error.code).toBe('unauthorized');
    expect((await request(h.app).get('/api/session').set('Authorization', `Bearer ${MANAGER}`)).status).toBe(401);
    expect((await get('/api/session', 'token-the-portal-does-not-know')).status).toBe(401);
  });
});

describe('GET /api/codes/:code', () => {
  it('finds the referrer of a code typed in any case, with spaces and a dash', async () => {
    h.portal.resetCalls();
    const typed = ` ${anna.code[0]!.toLowerCase()}-${anna.code.slice(1).toLowerCase()} `;
    const res = await get(`/api/codes/${encodeURIComponent(typed)}`);
    expect(res.status).toBe(200);
    expect(codeCheckAnswerSchema.parse(res.body)).toEqual(res.body);
    expect(res.body).toEqual({ code: anna.code, valid: true, referrer: { entity: 'contact', id: anna.contact } });
    expect(h.portal.calls.filter((c) => c.method !== 'profile')).toEqual([]);
  });

  it('says unknown_code for a well-formed code nobody has, and malformed for what cannot be a code', async () => {
    const unknown = await get('/api/codes/zz-zzzzzz');
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual({ code: 'ZZZZZZZZ', valid: false, reason: 'unknown_code' });
    for (const typed of ['hello!', 'AB', 'OOOOOOO']) {
      const res = await get(`/api/codes/${encodeURIComponent(typed)}`);
      expect(res.status, typed).toBe(200);
      expect(codeCheckAnswerSchema.parse(res.body), typed).toEqual({ code: typed, valid: false, reason: 'malformed' });
    }
  });

  it('answers 400 naming code for an empty or over-long parameter, 401 without a token', async () => {
    for (const typed of ['%20%20', 'A'.repeat(65)]) {
      const res = await get(`/api/codes/${typed}`);
      expect(res.status, typed).toBe(400);
      expect(paths(res)).toEqual(['code']);
    }
    expect((await request(h.app).get(`/api/codes/${anna.code}`)).status).toBe(401);
  });
});

describe('GET /api/members/:entity/:id/referrals', () => {
  const node = (n: Partial<ReferralNode>) => expect.objectContaining(n);

  it("answers Anna's tree down to the program's two levels: status, rejection reason, qualified, what she earns", async () => {
    h.portal.resetCalls();
    const res = await get(`/api/members/contact/${anna.contact}/referrals`);
    expect(res.status).toBe(200);
    expect(referralTreeAnswerSchema.parse(res.body)).toEqual(res.body);
    expect(res.body).toMatchObject({ entity: 'contact', id: anna.contact, currency: 'RUB', levels: 2, total: 4, truncated: false, earned: 11000 });
    expect(res.body.referrals).toEqual([
      node({
        person: { entity: 'contact', id: boris.contact },
        level: 1,
        status: 'active',
        rejectReason: null,
        qualified: true,
        earned: 10000,
        branchEarned: 11000,
        // Vera pays Anna 5 % at level 2; Gleb is her third level, beyond the program's two.
        children: [node({ person: { entity: 'contact', id: vera.contact }, level: 2, status: 'active', qualified: true, earned: 1000, branchEarned: 1000, children: [] })],
      }),
      node({ person: { entity: 'contact', id: spouse }, level: 1, status: 'rejected', rejectReason: 'self_referral', qualified: false, earned: 0, branchEarned: 0, children: [] }),
      node({ person: { entity: 'lead', id: lead }, level: 1, status: 'active', qualified: false, earned: 0, children: [] }),
    ]);
    // The stored referrals, as answered.
    const stored = await h.store.referrals.ofReferrers(portalId, [anna.memberId], 10);
    expect(res.body.referrals.map((n: ReferralNode) => [n.id, n.createdAt])).toEqual(stored.map((r) => [r.id, r.createdAt.toISOString()]));
    // What she earns from the tree is what her ledger holds in referral rewards.
    const ledger = await h.store.ledger.forMembers(portalId, [anna.memberId]);
    expect(ledger.filter((e) => e.reason === 'referral').reduce((sum, e) => sum + e.amount, 0)).toBe(11000_00);
    expect(h.portal.calls.filter((c) => c.method !== 'profile')).toEqual([]);
  });

  it("a deeper person's tree starts at them: Boris sees Vera and, at his level 2, Gleb", async () => {
    const res = await get(`/api/members/contact/${boris.contact}/referrals`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 2, earned: 2250, truncated: false });
    expect(res.body.referrals).toEqual([
      node({ person: { entity: 'contact', id: vera.contact }, earned: 2000, branchEarned: 2250, children: [node({ person: { entity: 'contact', id: gleb.contact }, level: 2, qualified: true, earned: 250 })] }),
    ]);
  });

  it('a reversed reward is no longer qualified nor earned', async () => {
    h.portal.update('deal', gleb.deal, { STAGE_ID: 'LOSE' });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', gleb.deal));
    await h.worker.drain();
    const res = await get(`/api/members/contact/${boris.contact}/referrals`);
    expect(res.body).toMatchObject({ earned: 2000 });
    expect(res.body.referrals[0].children).toEqual([node({ person: { entity: 'contact', id: gleb.contact }, qualified: false, earned: 0 })]);
  });

  it('caps the people answered and says so (truncated)', async () => {
    const installation = (await h.store.installations.get(portalId))!;
    const person = { entity: 'contact' as const, id: anna.contact };
    const two = await readReferralTree(h.deps, installation, person, 2);
    expect(two).toMatchObject({ total: 2, truncated: true });
    expect(two.referrals.map((n) => n.person)).toEqual([{ entity: 'contact', id: boris.contact }, { entity: 'contact', id: spouse }]);
    expect(two.referrals[0]!.children).toEqual([]);
    // Exactly as many as there are is not truncated.
    expect(await readReferralTree(h.deps, installation, person, 4)).toMatchObject({ total: 4, truncated: false });
  });

  it('answers an empty tree for a person Sarafan has not seen, 400 naming the bad parameter, 401 without a token', async () => {
    const res = await get('/api/members/contact/987654/referrals');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ entity: 'contact', id: 987654, currency: 'RUB', levels: 2, referrals: [], total: 0, truncated: false, earned: 0 });
    const company = await get('/api/members/company/1/referrals');
    expect(company.status).toBe(400);
    expect(paths(company)).toEqual(['entity']);
    const badId = await get('/api/members/contact/x1/referrals');
    expect(badId.status).toBe(400);
    expect(paths(badId)).toEqual(['id']);
    expect((await request(h.app).get(`/api/members/contact/${anna.contact}/referrals`)).status).toBe(401);
  });
});

describe('GET /api/members/:entity/:id: tierProgress', () => {
  it('shows progress to the next tier on the won amount, from the deals the tier is counted from', async () => {
    const read = async (contact: number) => {
      const res = await get(`/api/members/contact/${contact}`);
      expect(res.status).toBe(200);
      return memberAnswerSchema.parse(res.body);
    };
    // Below the first tier `nextTier` stays null (as before); tierProgress still shows the way to it.
    expect(await read(anna.contact)).toMatchObject({ tier: null, nextTier: null, tierProgress: { basis: 'won_amount', value: 1, nextFrom: 1000 } });
    expect(await read(vera.contact)).toMatchObject({ tier: 'Silver', nextTier: { name: 'Gold', from: 100000 }, tierProgress: { basis: 'won_amount', value: 20000, nextFrom: 100000 } });
    expect(await read(boris.contact)).toMatchObject({ tier: 'Gold', nextTier: null, tierProgress: { basis: 'won_amount', value: 100000, nextFrom: null } });
    // Someone Sarafan has not seen is at the start.
    expect((await read(987654)).tierProgress).toEqual({ basis: 'won_amount', value: 0, nextFrom: 1000 });
  });
});

describe('portal isolation', () => {
  it("another portal's user sees nothing of this portal's codes and trees, and this portal not the other's codes", async () => {
    const other = new MswPortal({ domain: 'other-card.bitrix24.ru' });
    const OTHER_USER = 'user-token-other-card-0001';
    other.users.set(OTHER_USER, { ID: '3', ADMIN: true, NAME: 'Чужой' });
    h.msw.use(...other.handlers());
    try {
      const { query, body } = installRequest(other);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      const otherId = (await h.store.installations.findByMemberId(other.memberId))!.id;
      // A member of the other portal with a code of its own.
      const theirs = await h.store.members.ensure(otherId, 'contact', anna.contact, new Date());
      const enrolled = await h.store.members.enroll(otherId, theirs.id, 'QWERTY7', new Date());
      expect(enrolled).not.toBe('code_taken');

      const code = await get(`/api/codes/${anna.code}`, OTHER_USER, other.memberId);
      expect(code.body).toEqual({ code: anna.code, valid: false, reason: 'unknown_code' });
      expect((await get('/api/codes/QWERTY7', OTHER_USER, other.memberId)).body).toMatchObject({ valid: true, referrer: { entity: 'contact', id: anna.contact } });
      expect((await get('/api/codes/QWERTY7')).body).toEqual({ code: 'QWERTY7', valid: false, reason: 'unknown_code' });

      const tree = await get(`/api/members/contact/${anna.contact}/referrals`, OTHER_USER, other.memberId);
      expect(tree.status).toBe(200);
      expect(tree.body).toMatchObject({ referrals: [], total: 0, earned: 0, levels: 1 });
      const session = await get('/api/session', OTHER_USER, other.memberId);
      expect(session.body).toMatchObject({ userId: 3, isAdmin: true, portal: { domain: 'other-card.bitrix24.ru' }, program: { levels: 1, expiryDays: null, redemption: { maxPercentOfDeal: 50 } } });

      // Naming this portal with the other portal's token: refused by this portal's profile.
      expect((await get(`/api/members/contact/${anna.contact}/referrals`, OTHER_USER)).status).toBe(401);
      expect((await get(`/api/codes/${anna.code}`, OTHER_USER)).status).toBe(401);
      expect((await get('/api/session', OTHER_USER)).status).toBe(401);
    } finally {
      h.msw.resetHandlers();
    }
  });
});
