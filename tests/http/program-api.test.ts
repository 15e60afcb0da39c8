/**
 * GET/PUT /api/program through createApp: API authentication by the user's token checked with
 * `profile` on the portal's stored endpoint, admin-only access, full validation, versions, and
 * a credit recording the version that priced it.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROGRAM, type Program } from '../../src/rules/program.js';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;
const ADMIN = 'user-token-admin-0001';
const MANAGER = 'user-token-manager-0002';
const FORM = 'application/x-www-form-urlencoded';

/** The complete default document with `referral` keys replaced (PUT takes complete documents). */
function withReferral(referral: Partial<Program['referral']>): Program {
  const doc = structuredClone(DEFAULT_PROGRAM) as Program;
  return { ...doc, referral: { ...doc.referral, ...referral } };
}

const TOP_LEVEL = ['currency', 'enrol', 'referral', 'cashback', 'tiers', 'coupons', 'expiry', 'redemption', 'overspend', 'landingUrl', 'rfm'];

function api(method: 'get' | 'put', token: string, memberId = h.portal.memberId) {
  return request(h.app)[method]('/api/program').set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', memberId);
}

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
});

afterAll(async () => {
  await h.close();
});

describe('GET /api/program', () => {
  it('answers the default program as version 1 to an admin, checked with profile on the stored endpoint', async () => {
    h.portal.resetCalls();
    const res = await api('get', ADMIN);
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(1);
    expect(res.body.program.referral.levels).toEqual([{ percent: 10 }]);
    expect(res.body.program.currency).toBe('RUB');
    expect(h.portal.calls.map((c) => [c.method, c.token])).toEqual([['profile', ADMIN]]);
  });

  it('refuses a request without credentials, an unknown portal and a token the portal rejects (401)', async () => {
    expect((await request(h.app).get('/api/program')).status).toBe(401);
    expect((await api('get', ADMIN, 'no-such-portal')).status).toBe(401);
    expect((await api('get', 'token-the-portal-does-not-know')).status).toBe(401);
  });

  it('refuses a non-admin (403)', async () => {
    expect((await api('get', MANAGER)).status).toBe(403);
    expect((await api('put', MANAGER).send(withReferral({}))).status).toBe(403);
  });
});

describe('PUT /api/program', () => {
  it('answers 400 naming every bad path and stores nothing', async () => {
    const res = await api('put', ADMIN).send({ ...withReferral({ levels: [{ percent: 120 }, { fixed: 100, percent: 5 }] as never }), currency: 'rub', bogus: 1 });
    expect(res.status).toBe(400);
    const paths = (res.body.error.details as { path: string }[]).map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['currency', 'referral.levels.0.percent', 'referral.levels.1', 'bogus']));
    const pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
    expect((await h.store.programs.current(pid))?.version).toBe(1);
  });

  it('stores a valid document as a new version, and a credit records the version that priced it', async () => {
    const doc = withReferral({ levels: [{ percent: 5 }, { fixed: 100 }] });
    const res = await api('put', ADMIN).send(doc);
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(2);
    expect(res.body.program.referral.levels).toEqual([{ percent: 5 }, { fixed: 100 }]);
    expect((await api('get', ADMIN)).body.version).toBe(2);

    // A two-level chain: grand → parent → client; the client's first won deal pays both levels.
    const p = h.portal;
    const grand = p.add('contact', { NAME: 'Дед' });
    const g = p.add('deal', { CONTACT_ID: grand, STAGE_ID: 'WON', OPPORTUNITY: 10 });
    await request(h.app).post('/b24/events').set('Content-Type', FORM).send(crmEvent(p, 'ONCRMDEALUPDATE', g));
    await h.worker.drain();
    const pid = (await h.store.installations.findByMemberId(p.memberId))!.id;
    const grandCode = (await h.store.members.findByEntity(pid, 'contact', grand))!.code!;
    const parent = p.add('contact', { NAME: 'Отец', UF_CRM_SARAFAN_REF_CODE: grandCode });
    const pd = p.add('deal', { CONTACT_ID: parent, STAGE_ID: 'WON', OPPORTUNITY: 20 });
    await request(h.app).post('/b24/events').set('Content-Type', FORM).send(crmEvent(p, 'ONCRMCONTACTADD', parent));
    await request(h.app).post('/b24/events').set('Content-Type', FORM).send(crmEvent(p, 'ONCRMDEALUPDATE', pd));
    await h.worker.drain();
    const parentCode = (await h.store.members.findByEntity(pid, 'contact', parent))!.code!;
    const client = p.add('contact', { NAME: 'Сын', UF_CRM_SARAFAN_REF_CODE: parentCode });
    const cd = p.add('deal', { CONTACT_ID: client, STAGE_ID: 'WON', OPPORTUNITY: 3000 });
    await request(h.app).post('/b24/events').set('Content-Type', FORM).send(crmEvent(p, 'ONCRMCONTACTADD', client));
    await request(h.app).post('/b24/events').set('Content-Type', FORM).send(crmEvent(p, 'ONCRMDEALUPDATE', cd));
    await h.worker.drain();

    const entries = await h.store.ledger.forDeal(pid, cd);
    const parentMember = await h.store.members.findByEntity(pid, 'contact', parent);
    const grandMember = await h.store.members.findByEntity(pid, 'contact', grand);
    expect(entries.map((e) => ({ member: e.memberId, level: e.level, amount: e.amount, version: e.programVersion })).sort((a, b) => a.level - b.level)).toEqual([
      { member: parentMember!.id, level: 1, amount: 150_00, version: 2 },
      { member: grandMember!.id, level: 2, amount: 100_00, version: 2 },
    ]);
    expect(Number(p.get('deal', cd).UF_CRM_SARAFAN_REWARD)).toBe(250);

    // A later program change does not re-price a deal already won.
    expect((await api('put', ADMIN).send(withReferral({ levels: [{ percent: 50 }] }))).body.version).toBe(3);
    await request(h.app).post('/b24/events').set('Content-Type', FORM).send(crmEvent(p, 'ONCRMDEALUPDATE', cd));
    await h.worker.drain();
    expect((await h.store.ledger.forDeal(pid, cd)).reduce((s, e) => s + e.amount, 0)).toBe(250_00);
  });
});

describe('PUT /api/program takes a complete document', () => {
  async function expectRefused(body: string | object, paths: string[]) {
    const pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
    const before = await h.store.programs.current(pid);
    const req = api('put', ADMIN).set('Content-Type', 'application/json');
    const res = await req.send(typeof body === 'string' ? body : JSON.stringify(body));
    expect(res.status).toBe(400);
    const details = res.body.error.details as { path: string; message: string }[];
    expect(details.map((d) => d.path).sort()).toEqual([...paths].sort());
    // Nothing stored: the version in force is the one before the request.
    const after = await h.store.programs.current(pid);
    expect(after?.version).toBe(before?.version);
    expect(after?.document).toEqual(before?.document);
    return details;
  }

  it('refuses {} naming every top-level key as required (it used to store the default)', async () => {
    const details = await expectRefused({}, TOP_LEVEL);
    expect(new Set(details.map((d) => d.message))).toEqual(new Set(['is required']));
  });

  it('refuses a body that is only "__proto__" the same way (the key is dropped, never merged)', async () => {
    await expectRefused('{"__proto__": {"currency": "USD", "referral": {"levels": [{"percent": 99}]}}}', TOP_LEVEL);
    expect(({} as Record<string, unknown>).currency).toBeUndefined();
  });

  it('refuses a partial document naming each missing path, nested ones included, and each bad one', async () => {
    const partial: Record<string, unknown> = structuredClone(withReferral({ levels: [{ percent: 0 }] }));
    delete partial.landingUrl;
    delete partial.coupons;
    delete (partial.referral as Record<string, unknown>).holdDays;
    delete (partial.enrol as Record<string, unknown>).codePrefix;
    await expectRefused(partial, ['landingUrl', 'coupons', 'referral.holdDays', 'enrol.codePrefix', 'referral.levels.0.percent']);
  });

  it('refuses a document that is not an object', async () => {
    await expectRefused('[]', ['body']);
  });
});

describe('after a CLEAN uninstall and a reinstall', () => {
  it('the portal starts over at the default program; a new version 2 is what is served', async () => {
    const { onAppUninstall } = await import('../fixtures/bitrix/payloads.js');
    await request(h.app).post('/b24/events').set('Content-Type', FORM).send(onAppUninstall(h.portal, { clean: true }));
    const { query, body } = installRequest(h.portal);
    expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
    expect((await api('get', ADMIN)).body).toMatchObject({ version: 1, program: { referral: { levels: [{ percent: 10 }] } } });
    expect((await api('put', ADMIN).send(withReferral({ levels: [{ percent: 1 }] }))).body.version).toBe(2);
    expect((await api('get', ADMIN)).body).toMatchObject({ version: 2, program: { referral: { levels: [{ percent: 1 }] } } });
  });
});

