/**
 * GET /api/payouts.csv (issue 12, seed 003; admins): cash owed to each referrer for a period.
 * The fixture has two referral levels, a reversal of an earlier credit, held rewards (one reversed
 * while held), entries exactly on both period bounds, a referrer bound to a lead only, and another
 * portal with the same CRM ids. Owed amounts are computed by hand below; a round trip parses the
 * CSV back and compares it with the stored ledger. The portal is msw refusing anything unexpected:
 * names, phones and e-mails are read in one `batch` request per page of referrers.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerKind, LedgerReason, Member, NewLedgerEntry } from '../../src/handlers/ports.js';
import { csvRecords, parseCsv } from '../support/csv.js';
import { createHarness, type Harness } from '../support/harness.js';
import { installApp } from '../support/scenario.js';

let h: Harness;
let pid: number;
const ADMIN = 'user-token-admin-payouts-0001';
const MANAGER = 'user-token-manager-payouts-0002';
/** Now: after every hold of November but Boris's and Lena's. */
const NOW = new Date('2026-12-10T12:00:00Z');
const t = (iso: string) => new Date(iso);
const HEADER = 'contact_id,lead_id,last_name,first_name,second_name,phone,email,code,credited,reversed,net,pending,owed,available_balance,currency';

const people = { olga: 0, boris: 0, dima: 0, zoya: 0, lena: 0 };
const members = new Map<string, Member>();
const extra: number[] = []; // September's referrers (contacts)

const api = (path: string, token = ADMIN) => request(h.app).get(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId);

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => new Date(NOW) } });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  pid = await installApp(h);

  const phone = (v: string) => [{ ID: '1', TYPE_ID: 'PHONE', VALUE: v, VALUE_TYPE: 'WORK' }];
  const email = (v: string) => [{ ID: '2', TYPE_ID: 'EMAIL', VALUE: v, VALUE_TYPE: 'WORK' }];
  people.olga = h.portal.add('contact', { NAME: 'Ольга', SECOND_NAME: 'Ивановна', LAST_NAME: 'Петрова', PHONE: [...phone('+7 900 111-22-33'), { ...phone('+7 900 444-55-66')[0], ID: '3' }], EMAIL: email('olga@example.ru') });
  people.boris = h.portal.add('contact', { NAME: 'Борис', LAST_NAME: 'Сидоров', PHONE: phone('+7 900 777-88-99') });
  people.dima = h.portal.add('contact', { NAME: 'Дима' });
  people.zoya = h.portal.add('contact', { NAME: 'Зоя' });
  // A name that would run as a formula in a spreadsheet.
  people.lena = h.portal.add('lead', { NAME: 'Лена', LAST_NAME: '=HYPERLINK("http://x")', EMAIL: email('lena@example.ru') });
  for (const [name, entity] of [['olga', 'contact'], ['boris', 'contact'], ['dima', 'contact'], ['zoya', 'contact'], ['lena', 'lead']] as const) {
    const m = await h.store.members.ensure(pid, entity, people[name], t('2026-09-01T00:00:00Z'));
    const enrolled = await h.store.members.enroll(pid, m.id, `${name.toUpperCase()}2345`, t('2026-09-01T00:00:00Z'));
    if (enrolled === 'code_taken') throw new Error('code taken');
    members.set(name, enrolled);
  }

  let n = 0;
  const entry = (name: string, reason: LedgerReason, kind: LedgerKind, amount: number, at: string, more: Partial<NewLedgerEntry> = {}): NewLedgerEntry => ({
    portalId: pid,
    memberId: members.get(name)!.id,
    amount,
    reason,
    kind,
    dealId: null,
    level: 0,
    programVersion: 1,
    idempotencyKey: `p${++n}`,
    availableAt: t(at),
    expiresAt: null,
    causedBy: 'system:test',
    comment: null,
    createdAt: t(at),
    ...more,
  });
  const deal = (id: number, level: number) => ({ dealId: id, level, causedBy: `deal:${id}` });
  await h.store.ledger.append([
    // Olga, level 1.
    entry('olga', 'referral', 'credit', 1000_00, '2026-10-20T10:00:00Z', deal(10, 1)), // before the period
    entry('olga', 'referral', 'credit', 100_00, '2026-11-01T00:00:00Z', deal(14, 1)), // on `from`: in
    entry('olga', 'referral', 'credit', 2000_00, '2026-11-03T10:00:00Z', deal(11, 1)),
    entry('olga', 'referral', 'reversal', -1000_00, '2026-11-05T10:00:00Z', deal(10, 1)), // October's deal 10 lost
    entry('olga', 'redemption', 'correction', -300_00, '2026-11-10T10:00:00Z', { dealId: 20, causedBy: 'deal:20' }),
    entry('olga', 'referral', 'credit', 500_00, '2026-11-25T10:00:00Z', { ...deal(12, 1), availableAt: t('2026-12-05T10:00:00Z') }), // held past `to`
    entry('olga', 'referral', 'credit', 700_00, '2026-12-01T00:00:00Z', deal(13, 1)), // on `to`: out
    // Boris, level 2 above Olga's referees.
    entry('boris', 'referral', 'credit', 400_00, '2026-11-03T10:00:00Z', deal(11, 2)),
    entry('boris', 'referral', 'credit', 150_00, '2026-11-20T10:00:00Z', { ...deal(15, 2), availableAt: t('2026-12-20T10:00:00Z') }),
    // Reversed while held: the reversal stays pending until the hold would have ended (src/rules/settle-deal.ts).
    entry('boris', 'referral', 'reversal', -150_00, '2026-11-22T10:00:00Z', { ...deal(15, 2), availableAt: t('2026-12-20T10:00:00Z') }),
    // Lena (a lead), levels 1 and 2.
    entry('lena', 'referral', 'credit', 300_00, '2026-11-28T10:00:00Z', { ...deal(16, 1), availableAt: t('2026-12-15T10:00:00Z') }),
    entry('lena', 'referral', 'credit', 50_00, '2026-11-29T10:00:00Z', deal(17, 2)),
    // Not referral rewards, or not in the period: no row.
    entry('dima', 'welcome', 'credit', 100_00, '2026-11-04T10:00:00Z', deal(16, 0)),
    entry('zoya', 'referral', 'credit', 800_00, '2026-10-05T10:00:00Z', deal(9, 1)),
  ]);

  // September: 60 referrers, more than one list command (50 ids) holds.
  const sept: NewLedgerEntry[] = [];
  for (let i = 0; i < 60; i++) {
    const id = h.portal.add('contact', { NAME: `Реферер ${i}` });
    extra.push(id);
    const m = await h.store.members.ensure(pid, 'contact', id, t('2026-09-01T00:00:00Z'));
    sept.push({ ...entry('olga', 'referral', 'credit', 10_00 + i, '2026-09-10T10:00:00Z', deal(1000 + i, 1)), memberId: m.id });
  }
  await h.store.ledger.append(sept);

  // Another portal: the same contact id earns there in the same period.
  const other = await h.store.installations.upsertVerified(
    {
      memberId: 'member-other-portal-payouts',
      domain: 'other.bitrix24.ru',
      clientEndpoint: 'https://other.bitrix24.ru/rest/',
      serverEndpoint: 'https://oauth.bitrix.info/rest/',
      scope: 'crm',
      userId: 1,
      tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: NOW },
    },
    t('2026-09-01T00:00:00Z'),
  );
  const theirs = await h.store.members.ensure(other.id, 'contact', people.olga, t('2026-09-01T00:00:00Z'));
  await h.store.ledger.append([{ ...entry('olga', 'referral', 'credit', 99_999_00, '2026-11-15T10:00:00Z', deal(11, 1)), portalId: other.id, memberId: theirs.id, idempotencyKey: 'other-1' }]);
  h.portal.resetCalls();
});

afterAll(async () => {
  await h?.close();
});

/** The portal requests an export made, apart from the user's token check. */
const restCalls = () => h.portal.calls.filter((c) => c.method !== 'profile');

describe('GET /api/payouts.csv', () => {
  it('answers what each referrer is owed for the period, computed by hand', async () => {
    const res = await api('/api/payouts.csv?from=2026-11-01&to=2026-11-30');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="sarafan-payouts.csv"');
    expect(res.text.startsWith(`\uFEFF${HEADER}\r\n`)).toBe(true);
    const rows = parseCsv(res.text).slice(1);
    expect(rows).toEqual([
      // credited 100 + 2000 + 500; reversed 1000 (October's credit); net 1600; 500 still held on
      // Dec 1; owed 1100; available now: 1000 + 100 + 2000 − 1000 − 300 + 500 + 700.
      // A phone starting with + would run as a formula in a spreadsheet: it is defused like any text (src/rules/csv.ts).
      [String(people.olga), '', 'Петрова', 'Ольга', 'Ивановна', "'+7 900 111-22-33, +7 900 444-55-66", 'olga@example.ru', 'OLGA2345', '2600.00', '1000.00', '1600.00', '500.00', '1100.00', '3000.00', 'RUB'],
      // credited 400 + 150; reversed 150 while held (pending nets to 0); owed 400; available 400.
      [String(people.boris), '', 'Сидоров', 'Борис', '', "'+7 900 777-88-99", '', 'BORIS2345', '550.00', '150.00', '400.00', '0.00', '400.00', '400.00', 'RUB'],
      // credited 300 (held until Dec 15) + 50; owed 50; available now 50.
      ['', String(people.lena), `'=HYPERLINK("http://x")`, 'Лена', '', '', 'lena@example.ru', 'LENA2345', '350.00', '0.00', '350.00', '300.00', '50.00', '50.00', 'RUB'],
    ]);
    // The names came in one batch request: one list per entity, only the rows' people.
    const calls = restCalls();
    expect(calls.map((c) => c.method)).toEqual(['batch']);
    expect(h.portal.commands().filter((c) => c.method !== 'profile').map((c) => [c.method, (c.params.filter as Record<string, unknown>)['@ID']])).toEqual([
      ['crm.contact.list', [String(people.olga), String(people.boris)]],
      ['crm.lead.list', [String(people.lena)]],
    ]);
    expect(h.portal.commands('crm.contact.list')[0]!.params.select).toEqual(['ID', 'NAME', 'SECOND_NAME', 'LAST_NAME', 'PHONE', 'EMAIL']);
    h.portal.resetCalls();
  });

  it('takes ; and ISO times (to exclusive), and a period without referral rewards is a header only', async () => {
    const res = await api('/api/payouts.csv?from=2026-11-01T00:00:00Z&to=2026-11-25T10:00:00Z&sep=;');
    expect(res.status).toBe(200);
    expect(res.text.startsWith(`\uFEFF${HEADER.replaceAll(',', ';')}\r\n`)).toBe(true);
    // The 500 credited at 10:00 on the 25th is out (to is exclusive); with `;` the phones' `, ` needs no quotes.
    expect(res.text).toContain(`${people.olga};;Петрова;Ольга;Ивановна;'+7 900 111-22-33, +7 900 444-55-66;olga@example.ru;OLGA2345;2100.00;1000.00;1100.00;0.00;1100.00;3000.00;RUB\r\n`);
    expect(parseCsv(res.text, ';').map((r) => r[7])).toEqual(['code', 'OLGA2345', 'BORIS2345']);
    h.portal.resetCalls();
    const none = await api('/api/payouts.csv?from=2026-08-01&to=2026-08-31');
    expect(none.text).toBe(`\uFEFF${HEADER}\r\n`);
    expect(restCalls()).toEqual([]);
  });

  it('reads 60 referrers in one batch request of two contact lists', async () => {
    h.portal.resetCalls();
    const res = await api('/api/payouts.csv?from=2026-09-01&to=2026-09-30');
    expect(res.status, res.text).toBe(200);
    const records = csvRecords(res.text);
    expect(records.map((r) => r.contact_id)).toEqual(extra.map(String));
    expect(records.map((r) => r.first_name)).toEqual(extra.map((_, i) => `Реферер ${i}`));
    expect(records[59]).toMatchObject({ credited: '10.59', owed: '10.59', available_balance: '10.59' });
    expect(restCalls().map((c) => c.method)).toEqual(['batch']);
    expect(h.portal.commands('crm.contact.list').map((c) => ((c.params.filter as Record<string, unknown>)['@ID'] as string[]).length)).toEqual([50, 10]);
  });

  it('round-trips: the parsed CSV equals what the stored ledger says', async () => {
    for (const [query, from, to] of [
      ['from=2026-11-01&to=2026-11-30', t('2026-11-01T00:00:00Z'), t('2026-12-01T00:00:00Z')],
      ['', null, null],
    ] as const) {
      const records = csvRecords((await api(`/api/payouts.csv?${query}`)).text);
      const all = await h.store.ledger.page(pid, { limit: 10_000 });
      const inPeriod = all.filter((e) => e.reason === 'referral' && (!from || e.createdAt >= from) && (!to || e.createdAt < to));
      const memberIds = [...new Set(inPeriod.map((e) => e.memberId))].sort((a, b) => a - b);
      const stored = await h.store.members.getMany(pid, memberIds);
      const pendingAt = to && to < NOW ? to : NOW;
      const money = (minor: number) => (minor / 100).toFixed(2);
      expect(records).toHaveLength(memberIds.length);
      records.forEach((r, i) => {
        const m = stored[i]!;
        const mine = inPeriod.filter((e) => e.memberId === m.id);
        const credited = mine.filter((e) => e.amount > 0).reduce((s, e) => s + e.amount, 0);
        const reversed = -mine.filter((e) => e.amount < 0).reduce((s, e) => s + e.amount, 0);
        const pending = mine.filter((e) => e.availableAt > pendingAt).reduce((s, e) => s + e.amount, 0);
        const available = all.filter((e) => e.memberId === m.id && e.availableAt <= NOW).reduce((s, e) => s + e.amount, 0);
        expect(r).toMatchObject({
          contact_id: m.contactId === null ? '' : String(m.contactId),
          lead_id: m.leadId === null ? '' : String(m.leadId),
          code: m.code ?? '',
          credited: money(credited),
          reversed: money(reversed),
          net: money(credited - reversed),
          pending: money(pending),
          owed: money(credited - reversed - pending),
          available_balance: money(available),
          currency: 'RUB',
        });
      });
    }
  });

  it('refuses a bad period or separator with 400 naming it, non-admins with 403, and reads nothing', async () => {
    h.portal.resetCalls();
    for (const [query, fields] of [
      ['from=last-month', ['from']],
      ['to=2026-02-30x', ['to']],
      ['sep=tab', ['sep']],
      ['from=2026-11-30&to=2026-11-01', ['to']],
      ['from=x&to=y&sep=|', ['from', 'sep', 'to']],
    ] as const) {
      const res = await api(`/api/payouts.csv?${query}`);
      expect(res.status, query).toBe(400);
      expect((res.body.error.details as { path: string }[]).map((d) => d.path).sort(), query).toEqual(fields);
    }
    expect((await api('/api/payouts.csv', MANAGER)).status).toBe(403);
    expect((await request(h.app).get('/api/payouts.csv')).status).toBe(401);
    expect(restCalls()).toEqual([]);
  });

  it('fails with a portal error, not a file with missing names, when the CRM read fails', async () => {
    h.portal.failCommands('crm.lead.list', 1);
    const res = await api('/api/payouts.csv?from=2026-11-01&to=2026-11-30');
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('portal_error');
  });
});
