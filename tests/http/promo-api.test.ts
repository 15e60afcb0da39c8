/**
 * Promo-code campaigns through createApp (SPEC 3, 5): an admin creates a campaign of one-time
 * codes, lists it and exports its codes as CSV (UTF-8 with a BOM); a manager activates a code on
 * a contact's card — one `promo` ledger entry, the person enrolled, BALANCE written to the CRM —
 * and every refusal is a 409 with its reason. Validation names each bad path, non-admins get 403,
 * and a second portal sees none of it. Parallel activations of one code credit once.
 */
import request from 'supertest';
import { promoAnswerSchema } from '../../src/contract/api.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { MswPortal } from '../support/msw-portal.js';
import { FORM, installApp } from '../support/scenario.js';
import type { SqlStore } from '../../src/store/open-store.js';

let h: Harness;
let pid: number;
const ADMIN = 'user-token-admin-promo-0001';
const MANAGER = 'user-token-manager-promo-0002';

const api = (method: 'get' | 'post', path: string, token = ADMIN, memberId = h.portal.memberId) =>
  request(h.app)[method](path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', memberId);
const paths = (res: request.Response) => (res.body.error.details as { path: string }[]).map((d) => d.path).sort();
const raw = <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (h.store as SqlStore).rawQuery<T>(sql, params);
const count = async (sql: string, params: unknown[] = []) => Number((await raw<{ n: string }>(sql, params))[0]!.n);
const codesOf = async (campaignId: number) =>
  (await raw<{ code: string }>('SELECT code FROM promo_codes WHERE portal_id = $1 AND campaign_id = $2 ORDER BY code', [pid, campaignId])).map((r) => r.code);

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  pid = await installApp(h);
});

afterAll(async () => {
  await h?.close();
});

let campaign: { id: number };
let codes: string[];

describe('POST /api/promo-campaigns', () => {
  it('creates a campaign with the asked number of distinct codes, checked with profile only', async () => {
    h.portal.resetCalls();
    const res = await api('post', '/api/promo-campaigns').send({ name: 'Коробки весна', count: 50, value: 300.5 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'Коробки весна', value: 300.5, total: 50, used: 0, expiresAt: null, createdBy: 1 });
    campaign = res.body;
    codes = await codesOf(campaign.id);
    expect(codes).toHaveLength(50);
    expect(new Set(codes).size).toBe(50);
    for (const code of codes) expect(code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    const [stored] = await raw<{ value: string; code_count: number }>('SELECT value, code_count FROM promo_campaigns WHERE portal_id = $1 AND id = $2', [pid, campaign.id]);
    expect([Number(stored!.value), stored!.code_count]).toEqual([300_50, 50]);
    expect(h.portal.calls.map((c) => c.method)).toEqual(['profile']);
  });

  it('generates 10 000 codes in one request', async () => {
    const res = await api('post', '/api/promo-campaigns').send({ name: 'Большая', count: 10_000, value: '100', expiresAt: '2099-01-01T00:00:00Z' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ total: 10_000, expiresAt: '2099-01-01T00:00:00.000Z' });
    expect(await count('SELECT count(DISTINCT code) AS n FROM promo_codes WHERE portal_id = $1 AND campaign_id = $2', [pid, res.body.id])).toBe(10_000);
  });

  it('answers 400 naming every bad path and stores nothing', async () => {
    const before = await count('SELECT count(*) AS n FROM promo_campaigns WHERE portal_id = $1', [pid]);
    const res = await api('post', '/api/promo-campaigns').send({ name: ' ', count: 0, value: 1.005, expiresAt: 'tomorrow', colour: 'red' });
    expect(res.status).toBe(400);
    expect(paths(res)).toEqual(['colour', 'count', 'expiresAt', 'name', 'value']);
    for (const [body, path] of [
      [{ name: 'x', count: 100_001, value: 1 }, 'count'],
      [{ name: 'x', count: 2.5, value: 1 }, 'count'],
      [{ name: 'x', count: 1, value: -5 }, 'value'],
      [{ name: 'x', count: 1, value: 'ten' }, 'value'],
      [{ name: 'x', count: 1, value: 1, expiresAt: '2020-01-01T00:00:00Z' }, 'expiresAt'],
      [{ count: 1, value: 1 }, 'name'],
    ] as const) {
      const bad = await api('post', '/api/promo-campaigns').send(body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(paths(bad)).toEqual([path]);
    }
    expect(await count('SELECT count(*) AS n FROM promo_campaigns WHERE portal_id = $1', [pid])).toBe(before);
  });

  it('refuses non-admins (403) and requests without credentials (401)', async () => {
    expect((await api('post', '/api/promo-campaigns', MANAGER).send({ name: 'x', count: 1, value: 1 })).status).toBe(403);
    expect((await api('get', '/api/promo-campaigns', MANAGER)).status).toBe(403);
    expect((await api('get', `/api/promo-campaigns/${campaign.id}/codes.csv`, MANAGER)).status).toBe(403);
    expect((await request(h.app).post('/api/promo-campaigns').send({ name: 'x', count: 1, value: 1 })).status).toBe(401);
    expect((await api('get', '/api/promo-campaigns', 'token-the-portal-does-not-know')).status).toBe(401);
    expect((await request(h.app).post('/api/members/contact/1/promo').send({ code: codes[0] })).status).toBe(401);
  });
});

describe('POST /api/members/:entity/:id/promo', () => {
  let contact: number;

  it('credits the campaign value once, enrols the person and writes BALANCE to the CRM', async () => {
    contact = h.portal.add('contact', { NAME: 'Дарья' });
    const typed = ` ${codes[0]!.toLowerCase().slice(0, 4)}-${codes[0]!.toLowerCase().slice(4)} `.replace('-', '');
    h.portal.resetCalls();
    const res = await api('post', `/api/members/contact/${contact}/promo`, MANAGER).send({ code: typed });
    expect(res.status).toBe(200);
    expect(promoAnswerSchema.strict().parse(res.body)).toEqual(res.body);
    expect(res.body).toMatchObject({ code: codes[0], campaign: { id: campaign.id, name: 'Коробки весна' }, balance: 300.5, pending: 0 });
    expect(res.body.entry).toMatchObject({ reason: 'promo', kind: 'credit', amount: 300.5, status: 'available', dealId: null });

    const member = (await h.store.members.findByEntity(pid, 'contact', contact))!;
    expect(member.code).toMatch(/^[23456789A-Z]{6,8}$/);
    const entries = await h.store.ledger.forMembers(pid, [member.id]);
    expect(entries.map((e) => [e.reason, e.kind, e.amount, e.idempotencyKey, e.causedBy, e.expiresAt])).toEqual([['promo', 'credit', 300_50, `promo:${codes[0]}`, 'user:7', null]]);
    const [used] = await raw<{ used_by_member_id: string; used_at: Date }>('SELECT used_by_member_id, used_at FROM promo_codes WHERE portal_id = $1 AND code = $2', [pid, codes[0]]);
    expect(Number(used!.used_by_member_id)).toBe(member.id);
    // Nothing but the (cached) token check reaches the portal before the projection job runs.
    expect(h.portal.calls.filter((c) => c.method !== 'profile')).toEqual([]);

    // The CRM fields the activation owes: the queued projection job writes them.
    await h.worker.drain();
    const updates = h.portal.commands('crm.contact.update');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.params).toMatchObject({ id: String(contact), fields: { [F.BALANCE]: '300.5', [F.CODE]: member.code } });
    expect(Number(h.portal.get('contact', contact)[F.BALANCE])).toBe(300.5);
  });

  it('answers 409 already_used for a code used before, and credits nothing', async () => {
    const other = h.portal.add('contact', { NAME: 'Ева' });
    const ledgerBefore = await count('SELECT count(*) AS n FROM ledger_entries WHERE portal_id = $1', [pid]);
    for (const [entity, id] of [['contact', contact], ['contact', other], ['lead', 5]] as const) {
      const res = await api('post', `/api/members/${entity}/${id}/promo`, MANAGER).send({ code: codes[0] });
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: 'conflict', reason: 'already_used' });
    }
    expect(await count('SELECT count(*) AS n FROM ledger_entries WHERE portal_id = $1', [pid])).toBe(ledgerBefore);
    expect(await h.store.members.findByEntity(pid, 'contact', other)).toBeNull();
  });

  it('answers 409 unknown_code for a code nobody issued or text that is no code', async () => {
    for (const code of ['ZZZZZZZZ', 'hello world!', codes[1]!.slice(0, 7)]) {
      const res = await api('post', `/api/members/contact/${contact}/promo`, MANAGER).send({ code });
      expect(res.status, code).toBe(409);
      expect(res.body.error.reason).toBe('unknown_code');
    }
  });

  it('answers 409 campaign_over once the campaign expired', async () => {
    const now = new Date();
    const over = await h.store.promo.createCampaign({ portalId: pid, name: 'Старая', value: 100, codeCount: 1, expiresAt: new Date(now.getTime() - 1000), createdBy: 1, createdAt: now });
    await h.store.promo.addCodes(pid, over.id, ['OVERCAMP']);
    const res = await api('post', `/api/members/contact/${contact}/promo`, MANAGER).send({ code: 'overcamp' });
    expect(res.status).toBe(409);
    expect(res.body.error.reason).toBe('campaign_over');
    expect(await count('SELECT count(*) AS n FROM promo_codes WHERE portal_id = $1 AND used_at IS NOT NULL AND campaign_id = $2', [pid, over.id])).toBe(0);
  });

  it('answers 400 naming the bad path', async () => {
    expect(paths(await api('post', `/api/members/contact/${contact}/promo`, MANAGER).send({}))).toEqual(['code']);
    expect(paths(await api('post', `/api/members/contact/${contact}/promo`, MANAGER).send({ code: 12345678 }))).toEqual(['code']);
    expect(paths(await api('post', `/api/members/company/${contact}/promo`, MANAGER).send({ code: codes[1] }))).toEqual(['entity']);
    expect(paths(await api('post', '/api/members/contact/0/promo', MANAGER).send({ code: codes[1] }))).toEqual(['id']);
  });

  it('parallel activations of one code credit exactly once', async () => {
    const people = Array.from({ length: 6 }, (_, i) => h.portal.add('contact', { NAME: `Гость ${i}` }));
    const results = await Promise.all(people.map((id) => api('post', `/api/members/contact/${id}/promo`, MANAGER).send({ code: codes[2] })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.error.reason === 'already_used')).toBe(true);
    expect(await count("SELECT count(*) AS n FROM ledger_entries WHERE portal_id = $1 AND idempotency_key = $2", [pid, `promo:${codes[2]}`])).toBe(1);
  });
});

describe('GET /api/promo-campaigns and the CSV export', () => {
  it('lists campaigns newest first with used/total', async () => {
    const res = await api('get', '/api/promo-campaigns');
    expect(res.status).toBe(200);
    const mine = res.body.campaigns.find((c: { id: number }) => c.id === campaign.id);
    expect(mine).toMatchObject({ name: 'Коробки весна', total: 50, used: 2, value: 300.5 });
    const ids = res.body.campaigns.map((c: { id: number }) => c.id);
    expect(ids).toEqual([...ids].sort((a: number, b: number) => b - a));
  });

  it('exports every code with status and who used it, as UTF-8 with a BOM', async () => {
    const res = await api('get', `/api/promo-campaigns/${campaign.id}/codes.csv`).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    const bytes = res.body as Buffer;
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const lines = bytes.subarray(3).toString('utf8').split('\r\n');
    expect(lines[0]).toBe('code,campaign,status,used_by_entity,used_by_id,used_at');
    expect(lines.at(-1)).toBe('');
    const rows = lines.slice(1, -1).map((l) => l.split(','));
    expect(rows).toHaveLength(50);
    expect(rows.map((r) => r[0])).toEqual(codes);
    const first = (await h.store.promo.findCode(pid, codes[0]!))!;
    const used = rows.find((r) => r[0] === codes[0])!;
    const member = (await h.store.members.get(pid, first.usedByMemberId!))!;
    expect(used).toEqual([codes[0], 'Коробки весна', 'used', 'contact', String(member.contactId), first.usedAt!.toISOString()]);
    expect(rows.filter((r) => r[2] === 'used')).toHaveLength(2);
    expect(rows.filter((r) => r[2] === 'unused').every((r) => r[3] === '' && r[5] === '')).toBe(true);
  });

  it('quotes fields and defuses a campaign name Excel would run as a formula', async () => {
    const created = await api('post', '/api/promo-campaigns').send({ name: '=HYPERLINK("x","Скидка, 10%")', count: 1, value: 1 });
    const res = await api('get', `/api/promo-campaigns/${created.body.id}/codes.csv`);
    const [, line] = res.text.replace(/^\uFEFF/, '').split('\r\n');
    expect(line).toMatch(/^[23456789A-Z]{8},"'=HYPERLINK\(""x"",""Скидка, 10%""\)",unused,,,$/);
  });

  it('answers 404 for a campaign that does not exist and 400 for a bad id', async () => {
    expect((await api('get', '/api/promo-campaigns/999999/codes.csv')).status).toBe(404);
    const bad = await api('get', '/api/promo-campaigns/abc/codes.csv');
    expect(bad.status).toBe(400);
    expect(paths(bad)).toEqual(['id']);
  });
});

describe('portal isolation', () => {
  it("another portal sees none of this portal's campaigns and cannot use its codes", async () => {
    const other = new MswPortal({ domain: 'other-promo.bitrix24.ru' });
    const OTHER_ADMIN = 'user-token-other-admin-promo';
    other.users.set(OTHER_ADMIN, { ID: '1', ADMIN: true, NAME: 'Чужой' });
    h.msw.use(...other.handlers());
    try {
      const { query, body } = installRequest(other);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      const list = await api('get', '/api/promo-campaigns', OTHER_ADMIN, other.memberId);
      expect(list.body).toEqual({ campaigns: [] });
      expect((await api('get', `/api/promo-campaigns/${campaign.id}/codes.csv`, OTHER_ADMIN, other.memberId)).status).toBe(404);
      const res = await api('post', '/api/members/contact/1/promo', OTHER_ADMIN, other.memberId).send({ code: codes[3] });
      expect(res.status).toBe(409);
      expect(res.body.error.reason).toBe('unknown_code');
      expect((await h.store.promo.findCode(pid, codes[3]!))!.usedAt).toBeNull();
    } finally {
      h.msw.resetHandlers();
    }
  });
});
