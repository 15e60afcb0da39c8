/**
 * GET /api/ledger.csv (SPEC 3; admins): the portal's ledger for a period as CSV — UTF-8 with a
 * BOM, `,` or `;`, numbers left as numbers and text defused — read from the stored entries.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../support/csv.js';
import { createHarness, type Harness } from '../support/harness.js';
import { installApp } from '../support/scenario.js';

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
  pid = await installApp(h);
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

  it('round-trips: every parsed row equals its stored entry, with either delimiter', async () => {
    // Text that needs quoting or defusing in each column that carries text, and a lead-only member.
    const lead = h.portal.add('lead', { NAME: 'Лид' });
    const leadMember = await h.store.members.ensure(pid, 'lead', lead, day(21));
    const base = { portalId: pid, memberId: leadMember.id, kind: 'credit' as const, level: 0, programVersion: 1, dealId: null };
    await h.store.ledger.append([
      { ...base, amount: 12_34, reason: 'adjustment', kind: 'correction', idempotencyKey: 'r1', availableAt: day(21), expiresAt: day(28), causedBy: 'user:1', comment: 'строка 1\r\nстрока 2, "кавычки"; и точка с запятой', createdAt: day(21) },
      { ...base, amount: -1, reason: 'adjustment', kind: 'correction', idempotencyKey: 'r2', availableAt: day(22), expiresAt: null, causedBy: '+robot:abc', comment: '@SUM(A1)', createdAt: day(22) },
      { ...base, amount: 99_99, reason: 'cashback', dealId: 77, level: 0, idempotencyKey: 'r3', availableAt: day(29), expiresAt: null, causedBy: 'deal:77', comment: null, createdAt: day(23) },
    ]);
    const stored = await h.store.ledger.page(pid, { limit: 100 });
    const members = new Map((await h.store.members.getMany(pid, [...new Set(stored.map((e) => e.memberId))])).map((m) => [m.id, m]));
    // A text that would run as a formula comes back with the leading quote that defused it.
    const undefuse = (v: string) => (/^'[=+\-@\t\r]/.test(v) ? v.slice(1) : v);
    for (const sep of [',', ';'] as const) {
      const res = await api(`/api/ledger.csv?sep=${encodeURIComponent(sep)}`);
      expect(res.status).toBe(200);
      const [header, ...rows] = parseCsv(res.text, sep);
      expect(header).toEqual(['entry_id', 'created_at', 'entity', 'crm_id', 'reason', 'kind', 'amount', 'currency', 'deal_id', 'level', 'available_at', 'expires_at', 'caused_by', 'comment']);
      expect(rows).toHaveLength(stored.length);
      rows.forEach((r, i) => {
        const e = stored[i]!;
        const m = members.get(e.memberId)!;
        const [entity, crmId] = m.contactId !== null ? ['contact', m.contactId] : ['lead', m.leadId];
        expect(r[7]).toBe('RUB');
        expect({
          id: Number(r[0]),
          createdAt: new Date(r[1]!),
          person: `${r[2]}:${r[3]}`,
          reason: r[4],
          kind: r[5],
          amount: Math.round(Number(r[6]) * 100),
          dealId: r[8] === '' ? null : Number(r[8]),
          level: Number(r[9]),
          availableAt: new Date(r[10]!),
          expiresAt: r[11] === '' ? null : new Date(r[11]!),
          causedBy: undefuse(r[12]!),
          comment: r[13] === '' ? null : undefuse(r[13]!),
        }).toEqual({
          id: e.id,
          createdAt: e.createdAt,
          person: `${entity}:${crmId}`,
          reason: e.reason,
          kind: e.kind,
          amount: e.amount,
          dealId: e.dealId,
          level: e.level,
          availableAt: e.availableAt,
          expiresAt: e.expiresAt,
          causedBy: e.causedBy,
          comment: e.comment,
        });
      });
    }
  });
});
