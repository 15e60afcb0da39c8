/**
 * GET /api/ledger.csv (SPEC 3; admins): the portal's ledger for a period as CSV — UTF-8 with a
 * BOM, `,` or `;`, numbers left as numbers and text defused — read from the stored entries.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM } from '../support/scenario.js';

let h: Harness;
let pid: number;
let contact: number;
const ADMIN = 'user-token-admin-ledger-0001';
const MANAGER = 'user-token-manager-ledger-0002';

const api = (path: string, token = ADMIN) => request(h.app).get(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId);
const rows = (text: string, sep = ',') => text.replace(/^\uFEFF/, '').split('\r\n').slice(1, -1).map((l) => l.split(sep));
const day = (d: number) => new Date(Date.UTC(2026, 10, d, 9, 30));

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  await h.worker.drain();
  contact = h.portal.add('contact', { NAME: 'Ольга' });
  const member = await h.store.members.ensure(pid, 'contact', contact, day(1));
  const base = { portalId: pid, memberId: member.id, kind: 'credit' as const, level: 1, programVersion: 1, expiresAt: null, comment: null };
  await h.store.ledger.append([
    { ...base, amount: 7200_00, reason: 'referral', dealId: 12, idempotencyKey: 'e1', availableAt: day(1), causedBy: 'deal:12', createdAt: day(1) },
    { ...base, amount: -150_50, reason: 'redemption', kind: 'correction', level: 0, dealId: 14, idempotencyKey: 'e2', availableAt: day(10), causedBy: 'user:1', comment: '=HYPERLINK("x"); скидка', createdAt: day(10) },
    { ...base, amount: 500_00, reason: 'promo', dealId: null, level: 0, idempotencyKey: 'e3', availableAt: day(20), causedBy: 'user:7', createdAt: day(20) },
  ]);
});

afterAll(async () => {
  await h?.close();
});

describe('GET /api/ledger.csv', () => {
  it('exports every entry oldest first, with a BOM, numbers as numbers and formulas defused', async () => {
    const res = await api('/api/ledger.csv');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="sarafan-ledger.csv"');
    expect(res.text.startsWith('\uFEFFentry_id,created_at,entity,crm_id,reason,kind,amount,currency,deal_id,level,available_at,expires_at,caused_by,comment\r\n')).toBe(true);
    const entries = await h.store.ledger.page(pid, { limit: 10 });
    expect(rows(res.text).map((r) => r.slice(0, 10))).toEqual([
      [String(entries[0]!.id), day(1).toISOString(), 'contact', String(contact), 'referral', 'credit', '7200.00', 'RUB', '12', '1'],
      [String(entries[1]!.id), day(10).toISOString(), 'contact', String(contact), 'redemption', 'correction', '-150.50', 'RUB', '14', '0'],
      [String(entries[2]!.id), day(20).toISOString(), 'contact', String(contact), 'promo', 'credit', '500.00', 'RUB', '', '0'],
    ]);
    expect(res.text).toContain(`,user:1,"'=HYPERLINK(""x""); скидка"\r\n`);
  });

  it('takes a period in dates (to includes its day) and the ; delimiter', async () => {
    const res = await api('/api/ledger.csv?from=2026-11-10&to=2026-11-19&sep=;');
    expect(res.status).toBe(200);
    expect(res.text.split('\r\n')[0]).toBe('\uFEFFentry_id;created_at;entity;crm_id;reason;kind;amount;currency;deal_id;level;available_at;expires_at;caused_by;comment');
    const got = rows(res.text, ';');
    expect(got.map((r) => [r[4], r[6]])).toEqual([['redemption', '-150.50']]);
    // With ; the comma needs no quotes, the ; inside the comment does.
    expect(res.text).toContain(';user:1;"\'=HYPERLINK(""x""); скидка"\r\n');
    const through20 = await api('/api/ledger.csv?to=2026-11-20');
    expect(rows(through20.text).map((r) => r[4])).toEqual(['referral', 'redemption', 'promo']);
  });

  it('refuses a bad period or delimiter with 400 naming the field, non-admins with 403, no token with 401', async () => {
    const bad = await api('/api/ledger.csv?from=yesterday&sep=tab');
    expect(bad.status).toBe(400);
    expect((bad.body.error.details as { path: string }[]).map((d) => d.path).sort()).toEqual(['from', 'sep']);
    const reversed = await api('/api/ledger.csv?from=2026-11-20&to=2026-11-01');
    expect(reversed.status).toBe(400);
    expect(reversed.body.error.details).toEqual([{ path: 'to', message: 'must be after from' }]);
    expect((await api('/api/ledger.csv', MANAGER)).status).toBe(403);
    expect((await request(h.app).get('/api/ledger.csv')).status).toBe(401);
  });
});
