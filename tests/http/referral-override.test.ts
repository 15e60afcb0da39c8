/**
 * The admin's override of a rejected referral through createApp (issue 9): GET /api/referrals
 * and POST /api/referrals/:id/override — validation (400 naming the bad path), 401, 403, 404, 409,
 * portal isolation — and what an override does: the referral becomes active with who, when and
 * why stored and shown, money moves only when the loop re-settles the queued deals, and the CRM
 * is told. Also: "already a customer" sees the history read on install (backfill).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { MswPortal } from '../support/msw-portal.js';
import { FORM, sendEvent } from '../support/scenario.js';

let h: Harness;
let pid: number;
const clock = { now: () => new Date(Date.UTC(2026, 11, 3, 9, 0, 0)) };
const ADMIN = 'user-token-admin-override-0001';
const MANAGER = 'user-token-manager-override-0001';

const as = (token: string | null, memberId = h.portal.memberId) => ({
  get: (path: string) => {
    const r = request(h.app).get(path).set('X-Sarafan-Portal', memberId);
    return token ? r.set('Authorization', `Bearer ${token}`) : r;
  },
  post: (path: string, body: unknown) => {
    const r = request(h.app).post(path).set('X-Sarafan-Portal', memberId).send(body as object);
    return token ? r.set('Authorization', `Bearer ${token}`) : r;
  },
});
const paths = (res: request.Response) => (res.body.error.details as { path: string }[]).map((d) => d.path);

/** A customer from before the install: the backfill records the win. */
let oldCustomer: number;
let referrer: { contact: number; code: string; memberId: number };
/** A client sharing the referrer's phone (spouses, say): rejected as self-referral. */
let spouse: { contact: number; deal: number; memberId: number; referralId: number };

beforeAll(async () => {
  h = await createHarness({ clock });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Администратор' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  oldCustomer = h.portal.add('contact', { NAME: 'Давний клиент' });
  h.portal.add('deal', { CONTACT_ID: oldCustomer, STAGE_ID: 'WON', OPPORTUNITY: 700, MOVED_TIME: '2025-01-10T10:00:00+03:00', DATE_CREATE: '2025-01-01T10:00:00+03:00' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  await h.worker.drain(); // the backfill

  const r = h.portal.add('contact', { NAME: 'Анна', PHONE: [{ ID: '1', TYPE_ID: 'PHONE', VALUE: '+7 916 555-44-33', VALUE_TYPE: 'MOBILE' }] });
  const first = h.portal.add('deal', { CONTACT_ID: r, STAGE_ID: 'WON', OPPORTUNITY: 1 });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', first));
  await h.worker.drain();
  const rm = await h.store.members.findByEntity(pid, 'contact', r);
  referrer = { contact: r, code: rm!.code!, memberId: rm!.id };

  const c = h.portal.add('contact', { NAME: 'Муж Анны', UF_CRM_SARAFAN_REF_CODE: referrer.code, PHONE: [{ ID: '2', TYPE_ID: 'PHONE', VALUE: '89165554433', VALUE_TYPE: 'HOME' }] });
  const deal = h.portal.add('deal', { CONTACT_ID: c, STAGE_ID: 'WON', OPPORTUNITY: 40000, ASSIGNED_BY_ID: 7 });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTADD', c));
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
  const cm = await h.store.members.findByEntity(pid, 'contact', c);
  const [rejected] = await h.store.referrals.ofReferees(pid, [cm!.id]);
  expect(rejected).toMatchObject({ status: 'rejected', rejectReason: 'self_referral' });
  spouse = { contact: c, deal, memberId: cm!.id, referralId: rejected!.id };
});

afterAll(async () => {
  await h.close();
});

describe('already a customer', () => {
  it('is judged with the history read on install: a win Sarafan never saw as a deal rejects the referral', async () => {
    const member = await h.store.members.findByEntity(pid, 'contact', oldCustomer);
    // Sarafan saw none of this person's deals: only the backfilled history knows the win.
    expect(member ? await h.store.deals.forClients(pid, [member.id]) : []).toEqual([]);
    expect((await h.store.history.firstWonAt(pid, [{ entity: 'contact', id: oldCustomer }])).get(`contact:${oldCustomer}`)).toEqual(new Date('2025-01-10T07:00:00Z'));

    h.portal.update('contact', oldCustomer, { UF_CRM_SARAFAN_REF_CODE: referrer.code });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTUPDATE', oldCustomer));
    await h.worker.drain();
    const m = await h.store.members.findByEntity(pid, 'contact', oldCustomer);
    expect((await h.store.referrals.ofReferees(pid, [m!.id])).map((r) => [r.status, r.rejectReason])).toEqual([['rejected', 'already_customer']]);
    expect(h.portal.timeline.filter((t) => t.entity === 'contact' && t.id === oldCustomer).map((t) => t.text)).toEqual([
      `Сарафан: рекомендация по коду ${referrer.code} отклонена — клиент уже покупал до приглашения.`,
    ]);
  });
});

describe('GET /api/referrals', () => {
  it('lists the rejections for an admin, newest first, with reasons and the people as CRM references', async () => {
    const res = await as(ADMIN).get('/api/referrals?status=rejected');
    expect(res.status).toBe(200);
    const old = await h.store.members.findByEntity(pid, 'contact', oldCustomer);
    expect(res.body.nextBefore).toBeNull();
    expect(res.body.items.map((i: { referee: unknown; rejectReason: string }) => [i.referee, i.rejectReason])).toEqual([
      [{ entity: 'contact', id: oldCustomer }, 'already_customer'],
      [{ entity: 'contact', id: spouse.contact }, 'self_referral'],
    ]);
    expect(res.body.items[1]).toMatchObject({ id: spouse.referralId, status: 'rejected', code: referrer.code, referrer: { entity: 'contact', id: referrer.contact }, source: 'contact', override: null });
    expect(old).not.toBeNull();
    const page = await as(ADMIN).get('/api/referrals?status=rejected&limit=1');
    expect(page.body.items).toHaveLength(1);
    const next = await as(ADMIN).get(`/api/referrals?status=rejected&limit=1&before=${page.body.nextBefore}`);
    expect(next.body.items.map((i: { id: number }) => i.id)).toEqual([spouse.referralId]);
  });

  it('answers 400 naming each bad query parameter, 401 without a token, 403 for a non-admin', async () => {
    const bad = await as(ADMIN).get('/api/referrals?status=lost&limit=0&before=x');
    expect(bad.status).toBe(400);
    expect(paths(bad).sort()).toEqual(['before', 'limit', 'status']);
    expect(paths(await as(ADMIN).get('/api/referrals'))).toEqual(['status']);
    expect((await as(null).get('/api/referrals?status=rejected')).status).toBe(401);
    expect((await as(MANAGER).get('/api/referrals?status=rejected')).status).toBe(403);
  });
});

describe('POST /api/referrals/:id/override', () => {
  const url = () => `/api/referrals/${spouse.referralId}/override`;

  it('refuses bad input (400 naming the path), no token (401), a non-admin (403), an unknown referral (404), and changes nothing', async () => {
    const noComment = await as(ADMIN).post(url(), {});
    expect(noComment.status).toBe(400);
    expect(paths(noComment)).toEqual(['comment']);
    expect(paths(await as(ADMIN).post(url(), { comment: '   ' }))).toEqual(['comment']);
    expect(paths(await as(ADMIN).post(url(), { comment: 42 }))).toEqual(['comment']);
    expect(paths(await as(ADMIN).post(url(), { comment: 'x'.repeat(1001) }))).toEqual(['comment']);
    const badId = await as(ADMIN).post('/api/referrals/abc/override', { comment: 'ok' });
    expect(badId.status).toBe(400);
    expect(paths(badId)).toEqual(['id']);
    expect((await as(null).post(url(), { comment: 'ok' })).status).toBe(401);
    expect((await as(MANAGER).post(url(), { comment: 'ok' })).status).toBe(403);
    expect((await as(ADMIN).post('/api/referrals/999999/override', { comment: 'ok' })).status).toBe(404);
    expect(await h.store.referrals.get(pid, spouse.referralId)).toMatchObject({ status: 'rejected', override: null });
    expect(await h.store.feedback.byKeyPrefix(pid, `referral:${spouse.referralId}:overridden`)).toEqual([]);
  });

  it("another portal's admin cannot override it (404), even with the same referral id", async () => {
    const other = new MswPortal({ domain: 'other-override.bitrix24.ru' });
    const OTHER_ADMIN = 'user-token-other-admin-0001';
    other.users.set(OTHER_ADMIN, { ID: '1', ADMIN: true, NAME: 'Чужой админ' });
    h.msw.use(...other.handlers());
    try {
      const { query, body } = installRequest(other);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      await h.worker.drain(); // its backfill, while its portal answers
      const res = await as(OTHER_ADMIN, other.memberId).post(url(), { comment: 'чужой' });
      expect(res.status).toBe(404);
      expect((await as(OTHER_ADMIN, other.memberId).get('/api/referrals?status=rejected')).body.items).toEqual([]);
      expect(await h.store.referrals.get(pid, spouse.referralId)).toMatchObject({ status: 'rejected', override: null });
    } finally {
      h.msw.resetHandlers();
    }
  });

  it('makes the referral active with who, when and why; the loop then credits the referee’s won deal and the CRM is told', async () => {
    expect(await h.store.ledger.forDeal(pid, spouse.deal)).toEqual([]);
    const res = await as(ADMIN).post(url(), { comment: '  Супруги с общим телефоном, рекомендация настоящая ' });
    expect(res.status).toBe(200);
    const override = { by: 1, at: clock.now().toISOString(), comment: 'Супруги с общим телефоном, рекомендация настоящая' };
    expect(res.body).toMatchObject({ id: spouse.referralId, status: 'active', rejectReason: 'self_referral', referrer: { entity: 'contact', id: referrer.contact }, override });
    expect(await h.store.referrals.activeFor(pid, spouse.memberId)).toMatchObject({ id: spouse.referralId, override: { by: 1, comment: override.comment } });
    // No money moved in the request: the deal and the person wait in the queue for the loop.
    expect(await h.store.ledger.forDeal(pid, spouse.deal)).toEqual([]);
    const queued = await (h.store as SqlStore).rawQuery<{ kind: string; key: string }>(`SELECT kind, key FROM jobs WHERE portal_id = $1 AND status = 'queued' ORDER BY kind, key`, [pid]);
    expect(queued).toEqual([
      { kind: 'crm.change', key: `contact:${spouse.contact}` },
      { kind: 'crm.change', key: `deal:${spouse.deal}` },
      { kind: 'crm.feedback', key: 'send' },
    ]);

    h.portal.resetCalls();
    await h.worker.drain();
    expect((await h.store.ledger.forDeal(pid, spouse.deal)).map((e) => [e.memberId, e.amount, e.reason, e.kind])).toEqual([[referrer.memberId, 4000_00, 'referral', 'credit']]);
    expect(h.portal.get('contact', referrer.contact)).toMatchObject({ UF_CRM_SARAFAN_BALANCE: '4000', UF_CRM_SARAFAN_REFERRALS: '1' });
    expect(h.portal.get('contact', spouse.contact)).toMatchObject({ UF_CRM_SARAFAN_REFERRER: `C_${referrer.contact}` });
    const said = h.portal.commands('crm.timeline.comment.add').map((c) => (c.params.fields as Record<string, string>).COMMENT);
    expect(said).toContain(`Сарафан: администратор (пользователь #1) принял отклонённую рекомендацию, пригласил контакт #${referrer.contact}. Комментарий: ${override.comment}`);
    expect(said).toContain(`Сарафан: Награда за рекомендацию (уровень 1) 4 000.00 RUB начислена за сделку #${spouse.deal} (контакт #${referrer.contact}).`);
    expect(h.portal.commands('im.notify.system.add').map((c) => c.params.USER_ID)).toEqual(['7']);

    // Shown by the read API and gone from the rejected list.
    const card = await as(MANAGER).get(`/api/members/contact/${spouse.contact}`);
    expect(card.body.referral).toMatchObject({ status: 'active', rejectReason: 'self_referral', override });
    expect(card.body.referrer).toEqual({ entity: 'contact', id: referrer.contact });
    const deal = await as(MANAGER).get(`/api/deals/${spouse.deal}`);
    expect(deal.body.referral).toMatchObject({ status: 'active', override });
    const list = await as(ADMIN).get('/api/referrals?status=rejected');
    expect(list.body.items.map((i: { id: number }) => i.id)).not.toContain(spouse.referralId);

    // A second override is refused: it is no longer a rejection; nothing more is paid.
    const again = await as(ADMIN).post(url(), { comment: 'ещё раз' });
    expect(again.status).toBe(409);
    await h.worker.drain();
    expect(await h.store.ledger.forDeal(pid, spouse.deal)).toHaveLength(1);
  });
});
