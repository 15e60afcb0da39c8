/**
 * POST /api/members/:entity/:id/enroll and /adjust through createApp (SPEC 3, 7): enrolment gives
 * a code and a link, written to the CRM, once; a manual adjustment (admins only) records who and
 * why, moves the balance and its CRM field, never takes the available balance below zero, and
 * is safe to retry with an Idempotency-Key. Bad input is a 400 naming the field; other portals
 * cannot touch these members.
 */
import request from 'supertest';
import { adjustAnswerSchema } from '../../src/contract/api.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';
import { MswPortal } from '../support/msw-portal.js';
import { FORM } from '../support/scenario.js';

let h: Harness;
let portalId: number;
const MANAGER = 'user-token-manager-members-0001';
const ADMIN = 'user-token-admin-members-0001';

function post(path: string, body: unknown = {}, opts: { token?: string; memberId?: string; key?: string } = {}) {
  const req = request(h.app)
    .post(path)
    .set('Authorization', `Bearer ${opts.token ?? MANAGER}`)
    .set('X-Sarafan-Portal', opts.memberId ?? h.portal.memberId);
  if (opts.key !== undefined) req.set('Idempotency-Key', opts.key);
  return req.send(body as object);
}
const paths = (res: request.Response) => (res.body.error.details as { path: string }[]).map((d) => d.path);
const updates = () => h.portal.commands().filter((c) => /^crm\.(deal|contact|lead)\.update$/.test(c.method));

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  portalId = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  await h.worker.drain(); // the install's own jobs (registration, history), so the queue is ours to watch
  expect(await h.store.jobs.depth(portalId)).toMatchObject({ queued: 0 });
});

afterAll(async () => {
  await h.close();
});

describe('POST /api/members/:entity/:id/enroll', () => {
  it('enrols a contact: code, link and joined date stored and written to the CRM; a second call changes nothing', async () => {
    const contact = h.portal.add('contact', { NAME: 'Галина' });
    h.portal.resetCalls();
    const res = await post(`/api/members/contact/${contact}/enroll`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ entity: 'contact', id: contact, enrolled: true, balance: 0, pending: 0, referrals: 0, ledger: [] });
    const code = res.body.code as string;
    expect(code).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);
    const { publicId } = (await h.store.installations.findByMemberId(h.portal.memberId))!;
    expect(res.body.link).toBe(`${APP_BASE_URL}/r/${publicId}/${code}`);

    const member = await h.store.members.findByEntity(portalId, 'contact', contact);
    expect(member).toMatchObject({ code, contactId: contact });
    expect(member!.joinedAt).not.toBeNull();
    // Read through the CRM port, then one write of the projected fields.
    expect(h.portal.commands('crm.contact.list')[0]!.params).toMatchObject({ filter: { '@ID': [String(contact)] } });
    expect(updates().map((c) => c.method)).toEqual(['crm.contact.update']);
    expect(h.portal.get('contact', contact)).toMatchObject({ UF_CRM_SARAFAN_CODE: code, UF_CRM_SARAFAN_LINK: res.body.link });
    expect(await h.store.jobs.depth(portalId)).toMatchObject({ queued: 0 });

    h.portal.resetCalls();
    const again = await post(`/api/members/contact/${contact}/enroll`);
    expect(again.status).toBe(200);
    expect(again.body.code).toBe(code);
    expect(updates()).toEqual([]);
  });

  it('enrols a lead, and a contact converted from it takes over the same member and code', async () => {
    const lead = h.portal.add('lead', { TITLE: 'Заявка' });
    const first = await post(`/api/members/lead/${lead}/enroll`);
    expect(first.status).toBe(200);
    expect(first.body.enrolled).toBe(true);
    const contact = h.portal.add('contact', { NAME: 'Из лида', LEAD_ID: lead });
    const converted = await post(`/api/members/contact/${contact}/enroll`);
    expect(converted.status).toBe(200);
    expect(converted.body.code).toBe(first.body.code);
    const member = await h.store.members.findByEntity(portalId, 'contact', contact);
    expect(member).toMatchObject({ leadId: lead, contactId: contact, code: first.body.code });
  });

  it('answers 404 for a person the portal does not have, creating no member', async () => {
    const res = await post('/api/members/contact/888888/enroll');
    expect(res.status).toBe(404);
    expect(await h.store.members.findByEntity(portalId, 'contact', 888888)).toBeNull();
  });

  it('answers 400 naming a bad path parameter and 401 without a token', async () => {
    expect(paths(await post('/api/members/company/1/enroll'))).toEqual(['entity']);
    expect(paths(await post('/api/members/contact/x1/enroll'))).toEqual(['id']);
    expect((await request(h.app).post('/api/members/contact/1/enroll')).status).toBe(401);
  });
});

describe('POST /api/members/:entity/:id/adjust', () => {
  let contact: number;
  let memberId: number;
  const available = async () => (await h.store.ledger.balances(portalId, [memberId], new Date())).get(memberId)!.available;

  beforeAll(async () => {
    contact = h.portal.add('contact', { NAME: 'Дмитрий' });
  });

  it('is for admins only: 403 for a manager, nothing recorded', async () => {
    const res = await post(`/api/members/contact/${contact}/adjust`, { amount: 100, comment: 'бонус' });
    expect(res.status).toBe(403);
    expect(await h.store.members.findByEntity(portalId, 'contact', contact)).toBeNull();
  });

  it('credits with who and why, answers the entry and the new balance, and writes BALANCE', async () => {
    h.portal.resetCalls();
    const res = await post(`/api/members/contact/${contact}/adjust`, { amount: 150.25, comment: '  Компенсация за задержку  ' }, { token: ADMIN });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      entity: 'contact',
      id: contact,
      entry: { reason: 'adjustment', kind: 'credit', amount: 150.25, status: 'available', dealId: null, comment: 'Компенсация за задержку' },
      balance: 150.25,
      pending: 0,
    });
    expect(adjustAnswerSchema.strict().parse(res.body)).toEqual(res.body);
    memberId = (await h.store.members.findByEntity(portalId, 'contact', contact))!.id;
    const [entry] = await h.store.ledger.forMember(portalId, memberId, { limit: 5 });
    expect(entry).toMatchObject({ amount: 150_25, reason: 'adjustment', kind: 'credit', causedBy: 'user:1', comment: 'Компенсация за задержку', dealId: null });
    expect(Number(h.portal.get('contact', contact).UF_CRM_SARAFAN_BALANCE)).toBe(150.25);
    expect(await h.store.jobs.depth(portalId)).toMatchObject({ queued: 0 });
  });

  it('takes bonus back within the available balance, and refuses to go below zero (409 insufficient_balance)', async () => {
    const ok = await post(`/api/members/contact/${contact}/adjust`, { amount: -50.25, comment: 'ошибка начисления' }, { token: ADMIN });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ entry: { kind: 'correction', amount: -50.25 }, balance: 100 });
    expect(Number(h.portal.get('contact', contact).UF_CRM_SARAFAN_BALANCE)).toBe(100);

    h.portal.resetCalls();
    const tooMuch = await post(`/api/members/contact/${contact}/adjust`, { amount: -100.01, comment: 'списание' }, { token: ADMIN });
    expect(tooMuch.status).toBe(409);
    expect(tooMuch.body.error).toMatchObject({ code: 'conflict', reason: 'insufficient_balance' });
    expect(await available()).toBe(100_00);
    expect(updates()).toEqual([]);
    expect((await post(`/api/members/contact/${contact}/adjust`, { amount: -100, comment: 'всё' }, { token: ADMIN })).body.balance).toBe(0);
  });

  it('answers a retry with the same Idempotency-Key with the first entry, adjusting once', async () => {
    const first = await post(`/api/members/contact/${contact}/adjust`, { amount: 10, comment: 'акция' }, { token: ADMIN, key: 'adj-0001' });
    const retry = await post(`/api/members/contact/${contact}/adjust`, { amount: 10, comment: 'акция' }, { token: ADMIN, key: 'adj-0001' });
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.body.entry.id).toBe(first.body.entry.id);
    expect(await available()).toBe(10_00);
    expect(await h.store.ledger.byKey(portalId, `adjust:${memberId}:key:adj-0001`)).toMatchObject({ amount: 10_00 });
  });

  it('answers 400 naming each bad field, and changes nothing', async () => {
    const before = await available();
    const cases: [unknown, string[]][] = [
      [{ amount: 10 }, ['comment']],
      [{ amount: 10, comment: '   ' }, ['comment']],
      [{ amount: 10, comment: 42 }, ['comment']],
      [{ amount: 0, comment: 'x' }, ['amount']],
      [{ amount: 1.001, comment: 'x' }, ['amount']],
      [{ comment: 'x' }, ['amount']],
      [{}, ['amount', 'comment']],
    ];
    for (const [body, expected] of cases) {
      const res = await post(`/api/members/contact/${contact}/adjust`, body, { token: ADMIN });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(paths(res).sort(), JSON.stringify(body)).toEqual(expected);
    }
    expect(paths(await post(`/api/members/lead/abc/adjust`, { amount: 1, comment: 'x' }, { token: ADMIN }))).toEqual(['id']);
    expect(await available()).toBe(before);
  });

  it("adjusting a contact converted from a member lead credits the lead's member, not a new one", async () => {
    const lead = h.portal.add('lead', { TITLE: 'Лид с бонусом' });
    expect((await post(`/api/members/lead/${lead}/adjust`, { amount: 5, comment: 'лиду' }, { token: ADMIN })).status).toBe(200);
    const converted = h.portal.add('contact', { NAME: 'Контакт из лида', LEAD_ID: lead });
    const res = await post(`/api/members/contact/${converted}/adjust`, { amount: 7, comment: 'контакту' }, { token: ADMIN });
    expect(res.status).toBe(200);
    expect(res.body.balance).toBe(12);
    const member = await h.store.members.findByEntity(portalId, 'lead', lead);
    expect(member).toMatchObject({ leadId: lead, contactId: converted });
  });

  it('answers 404 for a person the portal does not have', async () => {
    const res = await post('/api/members/lead/777777/adjust', { amount: 5, comment: 'x' }, { token: ADMIN });
    expect(res.status).toBe(404);
    expect(await h.store.members.findByEntity(portalId, 'lead', 777777)).toBeNull();
  });
});

describe('portal isolation', () => {
  it("another portal's admin adjusts and enrols only in its own portal, even for the same CRM ids", async () => {
    const contact = h.portal.add('contact', { NAME: 'Евгения' });
    await post(`/api/members/contact/${contact}/adjust`, { amount: 20, comment: 'подарок' }, { token: ADMIN });
    const ours = (await h.store.members.findByEntity(portalId, 'contact', contact))!;

    const other = new MswPortal({ domain: 'other-members.bitrix24.ru' });
    const OTHER_ADMIN = 'user-token-other-members-0001';
    other.users.set(OTHER_ADMIN, { ID: '1', ADMIN: true, NAME: 'Чужой админ' });
    h.msw.use(...other.handlers());
    try {
      const { query, body } = installRequest(other);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      const otherId = (await h.store.installations.findByMemberId(other.memberId))!.id;
      // The other portal has no such contact: 404 from its own CRM, and nothing here moves.
      expect((await post(`/api/members/contact/${contact}/adjust`, { amount: -20, comment: 'x' }, { token: OTHER_ADMIN, memberId: other.memberId })).status).toBe(404);
      expect((await post(`/api/members/contact/${contact}/enroll`, {}, { token: OTHER_ADMIN, memberId: other.memberId })).status).toBe(404);
      // Naming this portal with the other portal's token: 401.
      expect((await post(`/api/members/contact/${contact}/adjust`, { amount: -20, comment: 'x' }, { token: OTHER_ADMIN })).status).toBe(401);
      expect(await h.store.members.findByEntity(otherId, 'contact', contact)).toBeNull();
      expect((await h.store.ledger.balances(portalId, [ours.id], new Date())).get(ours.id)!.available).toBe(20_00);
    } finally {
      h.msw.resetHandlers();
    }
  });
});
