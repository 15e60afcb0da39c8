/**
 * GET /api/ledger (issue 12; admins): the ledger searched by person, deal, reason, kind and
 * period, newest first (time written, then id), paged with an entry id as the cursor — checked
 * against the stored ledger, with another portal's entries (same CRM ids, same deal) present and
 * never answered. Entries are not written in time order (a late entry dated earlier), as
 * concurrent writers do.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerSearchAnswerSchema, type LedgerSearchAnswer } from '../../src/contract/admin.js';
import type { LedgerEntry, LedgerKind, LedgerReason, NewLedgerEntry } from '../../src/handlers/ports.js';
import { createHarness, type Harness } from '../support/harness.js';
import { installApp } from '../support/scenario.js';

let h: Harness;
let pid: number;
let otherPid: number;
let olga: number; // contact
let boris: number; // contact
let lena: number; // lead
let all: LedgerEntry[]; // this portal's entries, oldest first
const memberOf = new Map<number, string>(); // member id → `contact:12`
const ADMIN = 'user-token-admin-search-0001';
const MANAGER = 'user-token-manager-search-0002';
const NOW = new Date(Date.UTC(2026, 10, 28, 12));
const day = (d: number, hour = 9) => new Date(Date.UTC(2026, 10, d, hour, 30));

const api = (path: string, token = ADMIN) => request(h.app).get(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId);

async function search(query: string): Promise<LedgerSearchAnswer> {
  const res = await api(`/api/ledger${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return ledgerSearchAnswerSchema.parse(res.body);
}

/** The ids the stored ledger says a filter matches, newest first: by time written, then id. */
const expected = (match: (e: LedgerEntry) => boolean): number[] =>
  all
    .filter(match)
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id - a.id)
    .map((e) => e.id);
const ids = (a: LedgerSearchAnswer): number[] => a.items.map((i) => i.id);

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => new Date(NOW) } });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  pid = await installApp(h);
  olga = h.portal.add('contact', { NAME: 'Ольга' });
  boris = h.portal.add('contact', { NAME: 'Борис' });
  lena = h.portal.add('lead', { NAME: 'Лена' });
  const mOlga = await h.store.members.ensure(pid, 'contact', olga, day(1));
  const mBoris = await h.store.members.ensure(pid, 'contact', boris, day(1));
  const mLena = await h.store.members.ensure(pid, 'lead', lena, day(1));
  memberOf.set(mOlga.id, `contact:${olga}`).set(mBoris.id, `contact:${boris}`).set(mLena.id, `lead:${lena}`);

  let n = 0;
  const entry = (memberId: number, reason: LedgerReason, kind: LedgerKind, amount: number, at: Date, more: Partial<NewLedgerEntry> = {}): NewLedgerEntry => ({
    portalId: pid,
    memberId,
    amount,
    reason,
    kind,
    dealId: null,
    level: 0,
    programVersion: 1,
    idempotencyKey: `s${++n}`,
    availableAt: at,
    expiresAt: null,
    causedBy: 'system:test',
    comment: null,
    createdAt: at,
    ...more,
  });
  const d12 = { dealId: 12, causedBy: 'deal:12' };
  await h.store.ledger.append([
    entry(mOlga.id, 'referral', 'credit', 1000_00, day(1), { ...d12, level: 1 }),
    entry(mBoris.id, 'referral', 'credit', 300_00, day(1), { ...d12, level: 2 }),
    entry(mLena.id, 'welcome', 'credit', 200_00, day(2), d12),
    entry(mOlga.id, 'referral', 'reversal', -1000_00, day(5), { ...d12, level: 1 }),
    entry(mOlga.id, 'adjustment', 'correction', 55_50, day(10), { causedBy: 'user:1', comment: 'подарок' }),
    entry(mBoris.id, 'redemption', 'correction', -120_00, day(15), { dealId: 14, causedBy: 'deal:14' }),
    entry(mLena.id, 'promo', 'credit', 500_00, day(20), { causedBy: 'promo:SPRING' }),
    // A hold that ends after now: pending.
    entry(mBoris.id, 'cashback', 'credit', 80_00, day(15, 23), { dealId: 16, causedBy: 'deal:16', availableAt: day(30) }),
  ]);
  // Volume for paging: cashback across the month, two a day.
  const bulk: NewLedgerEntry[] = [];
  for (let d = 1; d <= 27; d++) bulk.push(entry(d % 2 ? mBoris.id : mLena.id, 'cashback', 'credit', d * 100, day(d, 12), { dealId: 100 + d, causedBy: `deal:${100 + d}` }));
  await h.store.ledger.append(bulk);
  all = await h.store.ledger.page(pid, { limit: 1000 });

  // Another portal with the same CRM ids and deal: none of it may show.
  const other = await h.store.installations.upsertVerified(
    {
      memberId: 'member-other-portal-search',
      domain: 'other.bitrix24.ru',
      clientEndpoint: 'https://other.bitrix24.ru/rest/',
      serverEndpoint: 'https://oauth.bitrix.info/rest/',
      scope: 'crm',
      userId: 1,
      tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: day(30) },
    },
    day(1),
  );
  otherPid = other.id;
  const oOlga = await h.store.members.ensure(otherPid, 'contact', olga, day(1));
  const oLena = await h.store.members.ensure(otherPid, 'lead', lena, day(1));
  await h.store.ledger.append([
    { ...entry(oOlga.id, 'referral', 'credit', 999_00, day(3), { ...d12, level: 1 }), portalId: otherPid, idempotencyKey: 'o1' },
    { ...entry(oLena.id, 'welcome', 'credit', 99_00, day(3), d12), portalId: otherPid, idempotencyKey: 'o2' },
    { ...entry(oOlga.id, 'referral', 'reversal', -999_00, day(6), { ...d12, level: 1 }), portalId: otherPid, idempotencyKey: 'o3' },
  ]);
  h.portal.resetCalls();
});

afterAll(async () => {
  await h?.close();
});

describe('GET /api/ledger', () => {
  it('answers the newest entries first as the member API shows them, with member and cause', async () => {
    const a = await search('');
    expect(a.currency).toBe('RUB');
    expect(ids(a)).toEqual(expected(() => true));
    expect(a.nextBefore).toBeNull();
    const byId = new Map(a.items.map((i) => [i.id, i]));
    for (const e of all) {
      const item = byId.get(e.id)!;
      expect(item.member).toEqual({ entity: memberOf.get(e.memberId)!.split(':')[0], id: Number(memberOf.get(e.memberId)!.split(':')[1]) });
      expect([item.at, item.reason, item.kind, item.amount, item.dealId, item.level, item.causedBy, item.comment]).toEqual([
        e.createdAt.toISOString(),
        e.reason,
        e.kind,
        e.amount / 100,
        e.dealId,
        e.level,
        e.causedBy,
        e.comment,
      ]);
    }
    const [credit, , , reversal, adjustment, , , held] = all;
    expect(byId.get(credit!.id)!.status).toBe('reversed');
    expect(byId.get(reversal!.id)!.status).toBe('reversed');
    expect(byId.get(adjustment!.id)).toMatchObject({ status: 'available', amount: 55.5, comment: 'подарок', causedBy: 'user:1' });
    expect(byId.get(held!.id)).toMatchObject({ status: 'pending', availableAt: day(30).toISOString() });
    // Only the user's token check went to the portal.
    expect(h.portal.commands().filter((c) => c.method !== 'profile')).toEqual([]);
  });

  it('filters by person (contact or lead), deal, reason, kind and period, each alone', async () => {
    const person = (ref: string) => (e: LedgerEntry) => memberOf.get(e.memberId) === ref;
    expect(ids(await search(`?person=contact:${olga}`))).toEqual(expected(person(`contact:${olga}`)));
    expect(ids(await search(`?person=contact:${olga}`))).toHaveLength(3);
    expect(ids(await search(`?person=lead:${lena}`))).toEqual(expected(person(`lead:${lena}`)));
    // Not a member (a CRM id Sarafan never saw; a contact's id asked as a lead): an empty page.
    expect(await search('?person=contact:99999')).toEqual({ currency: 'RUB', items: [], nextBefore: null });
    expect((await search(`?person=lead:${olga}`)).items).toEqual([]);
    expect(ids(await search('?deal=12'))).toEqual(expected((e) => e.dealId === 12));
    expect(ids(await search('?deal=12'))).toHaveLength(4);
    expect(ids(await search('?reason=referral'))).toEqual(expected((e) => e.reason === 'referral'));
    expect(ids(await search('?reason=expiry'))).toEqual([]);
    expect(ids(await search('?kind=correction'))).toEqual(expected((e) => e.kind === 'correction'));
    expect(ids(await search('?kind=reversal'))).toEqual([all[3]!.id]);
    // Dates: `to` includes its whole day.
    const inDays = (e: LedgerEntry) => e.createdAt >= new Date('2026-11-05T00:00:00Z') && e.createdAt < new Date('2026-11-16T00:00:00Z');
    expect(ids(await search('?from=2026-11-05&to=2026-11-15'))).toEqual(expected(inDays));
    expect(ids(await search('?from=2026-11-05&to=2026-11-15')).length).toBeGreaterThan(5);
    // ISO times: from inclusive, to exclusive.
    const inTimes = (e: LedgerEntry) => e.createdAt >= day(5) && e.createdAt < day(15);
    const times = await search(`?from=${day(5).toISOString()}&to=${day(15).toISOString()}`);
    expect(ids(times)).toEqual(expected(inTimes));
    expect(ids(times)).toContain(all[3]!.id);
    expect(ids(times)).not.toContain(all[5]!.id);
    expect(ids(await search('?from=2026-11-20'))).toEqual(expected((e) => e.createdAt >= new Date('2026-11-20T00:00:00Z')));
    expect(ids(await search('?to=2026-11-02'))).toEqual(expected((e) => e.createdAt < new Date('2026-11-03T00:00:00Z')));
  });

  it('combines filters with AND', async () => {
    expect(ids(await search(`?person=contact:${olga}&reason=referral&kind=credit`))).toEqual([all[0]!.id]);
    expect(ids(await search('?deal=12&reason=referral&from=2026-11-02'))).toEqual([all[3]!.id]);
    expect(ids(await search(`?person=contact:${boris}&reason=cashback&from=2026-11-10&to=2026-11-20`))).toEqual(
      expected((e) => memberOf.get(e.memberId) === `contact:${boris}` && e.reason === 'cashback' && e.createdAt >= new Date('2026-11-10T00:00:00Z') && e.createdAt < new Date('2026-11-21T00:00:00Z')),
    );
    expect(ids(await search(`?person=lead:${lena}&deal=12&kind=credit&reason=welcome`))).toEqual([all[2]!.id]);
    expect(ids(await search(`?person=lead:${lena}&deal=14`))).toEqual([]);
  });

  it('pages to the end with the cursor: no duplicates, no gaps, null on the last page', async () => {
    const seen: number[] = [];
    let cursor: number | null = null;
    let pages = 0;
    do {
      const a: LedgerSearchAnswer = await search(`?limit=7${cursor === null ? '' : `&before=${cursor}`}`);
      expect(a.items.length).toBeLessThanOrEqual(7);
      seen.push(...ids(a));
      cursor = a.nextBefore;
      pages++;
    } while (cursor !== null);
    expect(seen).toEqual(expected(() => true));
    expect(new Set(seen).size).toBe(all.length);
    expect(pages).toBe(Math.ceil(all.length / 7));
    // A filtered search pages the same way.
    const first = await search('?reason=cashback&limit=10');
    const second = await search(`?reason=cashback&limit=10&before=${first.nextBefore}`);
    const third = await search(`?reason=cashback&limit=10&before=${second.nextBefore}`);
    expect(third.nextBefore).toBeNull();
    expect([...ids(first), ...ids(second), ...ids(third)]).toEqual(expected((e) => e.reason === 'cashback'));
    // Exactly a page left: the last full page says there is no more.
    const exact = await search(`?reason=referral&limit=3`);
    expect(exact.items).toHaveLength(3);
    expect(exact.nextBefore).toBeNull();
    // A cursor that is not one of this portal's entries matches nothing.
    const theirs = (await h.store.ledger.page(otherPid, { limit: 1 }))[0]!.id;
    expect((await search(`?before=${theirs}`)).items).toEqual([]);
    // The default page is 50.
    expect((await search('')).items).toHaveLength(Math.min(50, all.length));
  });

  it('refuses each bad parameter with 400 naming it, and changes nothing', async () => {
    const bad: [string, string][] = [
      ['person=someone', 'person'],
      ['person=contact:0', 'person'],
      ['person=deal:12', 'person'],
      ['deal=abc', 'deal'],
      ['deal=0', 'deal'],
      ['reason=gift', 'reason'],
      ['kind=refund', 'kind'],
      ['from=yesterday', 'from'],
      ['to=2026-13-45', 'to'],
      ['before=-1', 'before'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['deal=1&deal=2', 'deal'],
      ['from=2026-11-20&to=2026-11-01', 'to'],
    ];
    for (const [query, field] of bad) {
      const res = await api(`/api/ledger?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe('bad_request');
      expect((res.body.error.details as { path: string }[]).map((d) => d.path), query).toEqual([field]);
    }
    const many = await api('/api/ledger?person=x&reason=y&limit=0');
    expect((many.body.error.details as { path: string }[]).map((d) => d.path).sort()).toEqual(['limit', 'person', 'reason']);
    expect(await h.store.ledger.page(pid, { limit: 1000 })).toEqual(all);
  });

  it('is for admins only: 403 for a manager, 401 without a token', async () => {
    const res = await api('/api/ledger', MANAGER);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
    expect((await request(h.app).get('/api/ledger')).status).toBe(401);
  });

  it("never answers another portal's entries", async () => {
    const theirs = new Set((await h.store.ledger.page(otherPid, { limit: 100 })).map((e) => e.id));
    expect(theirs.size).toBe(3);
    for (const q of ['', '?deal=12', `?person=contact:${olga}`, `?person=lead:${lena}`, '?reason=referral', '?from=2026-11-03&to=2026-11-06']) {
      const a = await search(q);
      expect(ids(a).filter((id) => theirs.has(id)), q).toEqual([]);
      for (const item of a.items) expect(all.some((e) => e.id === item.id)).toBe(true);
    }
  });
});
