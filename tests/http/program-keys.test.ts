/**
 * The program keys of SPEC 5.1 through the loop (events → worker → ledger → CRM), msw playing a
 * Moscow portal (server.time +03:00, RUB base, USD 90): currency conversion with the rate
 * recorded and fixed, the referrer's monthly cap across the Moscow month boundary with freed room
 * re-queued, the clamp overspend policy, and a reversal after the program changed. Each test
 * checks the ledger rows, the read API and the outbound REST calls. The clock is injected.
 */
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import type { LedgerEntry } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { DEFAULT_PROGRAM, type Program } from '../../src/rules/program.js';
import { crmEvent } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { installApp, sendEvent } from '../support/scenario.js';

let h: Harness;
let pid: number;
// Ahead of the wall clock, as every job's runAt comes from this clock: 23:30 Moscow time, 31 January.
let now = new Date('2027-01-31T20:30:00Z');
const MANAGER = 'user-token-manager-keys-0001';

const send = (body: string) => sendEvent(h, body);
const entries = (dealId: number) => h.store.ledger.forDeal(pid, dealId);
/** Log lines (JSON) of one event about one deal. */
const logged = (msg: string, dealId: number) => h.logs.filter((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"dealId":${dealId}`));
const row = (e: LedgerEntry) => ({ amount: e.amount, kind: e.kind, capped: e.capped, shortfall: e.shortfall, fx: e.fx, version: e.programVersion });
const api = (path: string) => request(h.app).get(path).set('Authorization', `Bearer ${MANAGER}`).set('X-Sarafan-Portal', h.portal.memberId);

async function useProgram(patch: (p: Program) => Program): Promise<number> {
  const doc = patch(structuredClone(DEFAULT_PROGRAM) as Program);
  return (await h.store.programs.create(pid, doc, null, now)).version;
}

/** A referrer, enrolled by a first won deal of its own (1 RUB: pays nobody). */
async function referrer(name: string): Promise<{ contact: number; code: string }> {
  const contact = h.portal.add('contact', { NAME: name });
  const deal = h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'WON', OPPORTUNITY: 1 });
  await send(crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
  return { contact, code: String(h.portal.get('contact', contact)[F.CODE]) };
}

/** A referred client whose deal is won now (contact event first, then the deal's). */
async function referredWin(code: string, fields: Record<string, unknown>, name = 'Клиент'): Promise<{ contact: number; deal: number }> {
  const contact = h.portal.add('contact', { NAME: name, [F.REF_CODE]: code });
  const deal = h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'WON', ...fields });
  await send(crmEvent(h.portal, 'ONCRMCONTACTADD', contact));
  await send(crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
  return { contact, deal };
}

async function changeDeal(deal: number, fields: Record<string, unknown>): Promise<void> {
  h.portal.update('deal', deal, fields);
  await send(crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
}

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => new Date(now.getTime()) } });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  pid = await installApp(h);
});

afterAll(async () => {
  await h?.close();
});

describe('currency: a deal in another currency is converted with the portal’s rates', () => {
  beforeEach(async () => {
    await useProgram((p) => p);
  });

  it('credits 10 % of the converted amount, records and fixes the rate, reads the rates once with the deal', async () => {
    const r = await referrer('Валютный реферер');
    h.portal.resetCalls();
    const { deal } = await referredWin(r.code, { OPPORTUNITY: '1000.00', CURRENCY_ID: 'USD' }, 'Клиент USD');

    // 1000 USD × 90 = 90 000 RUB; 10 % = 9 000 RUB, with the rate on the entry.
    const fx = { currency: 'USD', rate: '90.0000000000', amount: 1000_00 };
    expect((await entries(deal)).map(row)).toEqual([{ amount: 9000_00, kind: 'credit', capped: 0, shortfall: 0, fx, version: expect.any(Number) }]);
    expect(await h.store.deals.get(pid, deal)).toMatchObject({ currency: 'USD', amount: 1000_00, fxCurrency: 'USD', fxRate: '90.0000000000' });
    // The rates rode in a batch with the people read for the newly won deal, once; then cached.
    const settingsCalls = h.portal.commands().filter((c) => c.method === 'server.time' || c.method === 'crm.currency.list');
    expect(settingsCalls.map((c) => c.method)).toEqual(['server.time', 'crm.currency.list']);
    expect(await h.store.portalSettings.get(pid)).toMatchObject({ utcOffsetMinutes: 180, readAt: now });
    expect(Number(h.portal.get('deal', deal)[F.REWARD])).toBe(9000);
    expect(Number(h.portal.get('contact', r.contact)[F.BALANCE])).toBe(9000);

    // The portal's USD rate moves; the deal's amount changes: the rate fixed on first win prices it.
    h.portal.currencies = h.portal.currencies.map((c) => (c.CURRENCY === 'USD' ? { ...c, AMOUNT: '100.0000' } : c));
    now = new Date(now.getTime() + 25 * 3600_000); // past the settings' day: they are re-read
    await changeDeal(deal, { OPPORTUNITY: '2000.00' });
    expect((await entries(deal)).map((e) => [e.amount, e.fx?.rate, e.fx?.amount])).toEqual([
      [9000_00, '90.0000000000', 1000_00],
      [9000_00, '90.0000000000', 2000_00],
    ]);

    // Lost: the reversal takes back exactly what was credited, with the same rate recorded.
    await changeDeal(deal, { STAGE_ID: 'LOSE' });
    const all = await entries(deal);
    expect(all.reduce((s, e) => s + e.amount, 0)).toBe(0);
    expect(all.at(-1)).toMatchObject({ kind: 'reversal', amount: -18000_00, fx: { currency: 'USD', rate: '90.0000000000', amount: 2000_00 } });

    const read = await api(`/api/deals/${deal}`);
    expect(read.status).toBe(200);
    expect(read.body.entries[0]).toMatchObject({ amount: 9000, fx: { currency: 'USD', rate: '90.0000000000', amount: 1000 } });
  });

  it('tiers by won amount count a deal in another currency at its converted amount', async () => {
    await useProgram((p) => ({
      ...p,
      cashback: { enabled: true },
      tiers: { basis: 'won_amount', levels: [{ name: 'Silver', from: 0, cashbackPercent: 1 }, { name: 'Gold', from: 50000, cashbackPercent: 5 }] },
    }));
    const client = h.portal.add('contact', { NAME: 'Клиент в долларах' });
    const deal = h.portal.add('deal', { CONTACT_ID: client, STAGE_ID: 'WON', OPPORTUNITY: '1000.00', CURRENCY_ID: 'USD' });
    await send(crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await h.worker.drain();
    // At the USD rate the test above moved to (100, cached): 1000 USD = 100 000 RUB, Gold, 5 % cashback
    // = 5 000 RUB. Counted in dollars it would be Silver: 1 % of 100 000.
    expect((await entries(deal)).map((e) => [e.reason, e.amount, e.fx?.rate])).toEqual([['cashback', 5000_00, '100.0000000000']]);
    // The read model agrees: the card and the CRM field show Gold, not the Silver of raw dollars.
    expect((await api(`/api/members/contact/${client}`)).body.tier).toBe('Gold');
    expect(h.portal.get('contact', client).UF_CRM_SARAFAN_TIER).toBe('Gold');
  });

  it('a currency the portal does not list pays nothing and is logged, until its rate exists', async () => {
    const r = await referrer('Реферер GBP');
    const { deal } = await referredWin(r.code, { OPPORTUNITY: '100.00', CURRENCY_ID: 'GBP' }, 'Клиент GBP');
    expect(await entries(deal)).toEqual([]);
    expect(logged('reward.currency_not_converted', deal)).not.toEqual([]);
  });
});

describe('referral.capPerReferrerMonth, months in the portal’s time zone', () => {
  it('caps per Moscow month, records the part over the cap, and gives freed room to a capped deal', async () => {
    now = new Date('2027-03-31T20:30:00Z'); // 23:30 Moscow time, 31 March
    await useProgram((p) => ({ ...p, referral: { ...p.referral, qualify: 'every_won_deal', capPerReferrerMonth: 150 } }));
    const r = await referrer('Реферер с лимитом');
    const a = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент А'); // 100
    const b = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент Б'); // 50 of 100: cap reached
    now = new Date('2027-03-31T21:30:00Z'); // 00:30 Moscow time, 1 April: a new month
    const c = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент В'); // 100

    expect((await entries(a.deal)).map(row)).toEqual([expect.objectContaining({ amount: 100_00, capped: 0 })]);
    expect((await entries(b.deal)).map(row)).toEqual([expect.objectContaining({ amount: 50_00, capped: 50_00, kind: 'credit' })]);
    expect((await entries(c.deal)).map(row)).toEqual([expect.objectContaining({ amount: 100_00, capped: 0 })]);
    expect(Number(h.portal.get('contact', r.contact)[F.BALANCE])).toBe(250);
    const member = await api(`/api/members/contact/${r.contact}`);
    expect(member.body.ledger.find((e: { dealId: number }) => e.dealId === b.deal)).toMatchObject({ amount: 50, capped: 50 });

    // Deal A is lost: its 100 is reversed, and B — capped in the same month — is queued and paid in full.
    h.portal.resetCalls();
    await changeDeal(a.deal, { STAGE_ID: 'LOSE' });
    expect((await entries(a.deal)).map((e) => e.amount)).toEqual([100_00, -100_00]);
    expect((await entries(b.deal)).map(row)).toEqual([
      expect.objectContaining({ amount: 50_00, capped: 50_00 }),
      expect.objectContaining({ amount: 50_00, capped: 0, kind: 'correction' }),
    ]);
    expect(logged('reward.cap_room_freed', b.deal)).not.toEqual([]);
    expect(Number(h.portal.get('contact', r.contact)[F.BALANCE])).toBe(200);
    expect(Number(h.portal.get('deal', b.deal)[F.REWARD])).toBe(100);
    // Deal B was read again (the queued job) and its new reward written.
    const reads = h.portal.commands().filter((x) => x.method === 'crm.deal.list').flatMap((x) => (x.params.filter as { '@ID': string[] })['@ID']);
    expect(reads).toContain(String(b.deal));
    // The April deal was never touched: another month.
    expect((await entries(c.deal)).map((e) => e.amount)).toEqual([100_00]);
  });
});

describe('a capped deal after the cap was removed from the program', () => {
  it('still meets the cap of the version that priced it, reading the portal’s zone when none is cached', async () => {
    now = new Date('2027-04-20T09:00:00Z');
    await useProgram((p) => ({ ...p, referral: { ...p.referral, qualify: 'every_won_deal', capPerReferrerMonth: 150 } }));
    const r = await referrer('Реферер старой версии');
    await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент Л1'); // 100
    const b = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент Л2'); // 50, 50 held back
    await useProgram((p) => p); // no cap in force any more
    await (h.store as SqlStore).rawQuery('DELETE FROM portal_settings WHERE portal_id = $1', [pid]);
    h.portal.resetCalls();

    await changeDeal(b.deal, { OPPORTUNITY: 1200 }); // 120 wanted, still 50 paid under the old version's cap
    expect((await entries(b.deal)).map((e) => [e.amount, e.capped])).toEqual([
      [50_00, 50_00],
      [0, 70_00],
    ]);
    expect(h.portal.commands('server.time')).toHaveLength(1);
    expect(await h.store.portalSettings.get(pid)).toMatchObject({ utcOffsetMinutes: 180 });
  });
});

describe('overspend: clamp', () => {
  it('a reversal meeting spent bonus stops at zero and records the shortfall; winning again pays again', async () => {
    now = new Date('2027-05-10T09:00:00Z');
    await useProgram((p) => ({ ...p, overspend: 'clamp' }));
    const r = await referrer('Транжира');
    const { deal } = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент Г'); // 100
    const member = (await h.store.members.findByEntity(pid, 'contact', r.contact))!;
    // 80 of the 100 already spent (a redemption, as the redemption use case writes it).
    await h.store.ledger.append([{
      portalId: pid, memberId: member.id, amount: -80_00, reason: 'redemption', kind: 'credit', dealId: null, level: 0, programVersion: null,
      idempotencyKey: 'test:spent', availableAt: now, expiresAt: null, causedBy: 'user:1', comment: 'spent', createdAt: now,
    }]);

    await changeDeal(deal, { STAGE_ID: 'LOSE' });
    expect((await entries(deal)).map(row)).toEqual([
      expect.objectContaining({ amount: 100_00, kind: 'credit', shortfall: 0 }),
      expect.objectContaining({ amount: -20_00, kind: 'reversal', shortfall: 80_00 }),
    ]);
    const balance = (await h.store.ledger.balances(pid, [member.id], now)).get(member.id)!;
    expect(balance.available + balance.pending).toBe(0);
    expect(Number(h.portal.get('contact', r.contact)[F.BALANCE] ?? 0)).toBe(0);
    const read = await api(`/api/deals/${deal}`);
    expect(read.body.entries.map((e: { amount: number; shortfall: number }) => [e.amount, e.shortfall])).toEqual([[100, 0], [-20, 80]]);

    // Redelivered: the slot is settled (the shortfall counts as taken back), nothing more is written.
    await changeDeal(deal, { STAGE_ID: 'LOSE' });
    expect(await entries(deal)).toHaveLength(2);

    // Won again: the deal pays its reward again.
    await changeDeal(deal, { STAGE_ID: 'WON' });
    expect((await entries(deal)).map((e) => e.amount)).toEqual([100_00, -20_00, 100_00]);
    expect(Number(h.portal.get('contact', r.contact)[F.BALANCE])).toBe(100);
  });
});

describe('coupons: every N qualified referrals', () => {
  it('issues a coupon at the Nth qualified referral, shows it, and reverses it when a referral stops qualifying', async () => {
    now = new Date('2027-07-10T09:00:00Z');
    await useProgram((p) => ({ ...p, coupons: { everyReferrals: 2, value: 500 } }));
    const r = await referrer('Собиратель купонов');
    const a = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент К1');
    const member = (await h.store.members.findByEntity(pid, 'contact', r.contact))!;
    expect(await h.store.coupons.forMembers(pid, [member.id])).toEqual([]);

    h.portal.resetCalls();
    const b = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент К2');
    const [coupon] = await h.store.coupons.forMembers(pid, [member.id]);
    expect(coupon).toMatchObject({ milestone: 1, value: 500_00, status: 'issued', code: expect.stringMatching(/^[A-Z2-9]{8}$/) });
    const couponEntries = await h.store.ledger.couponEntries(pid, [member.id]);
    expect(couponEntries.map((e) => [e.amount, e.kind, e.level, e.dealId, e.comment])).toEqual([[500_00, 'credit', 1, b.deal, `coupon ${coupon!.code}`]]);
    // The referrer's balance in the CRM includes the coupon: 100 + 100 + 500.
    expect(Number(h.portal.get('contact', r.contact)[F.BALANCE])).toBe(700);
    expect(Number(h.portal.get('contact', r.contact)[F.REFERRALS])).toBe(2);
    // The deal's REWARD stays the referral reward only.
    expect(Number(h.portal.get('deal', b.deal)[F.REWARD])).toBe(100);

    const memberRead = await api(`/api/members/contact/${r.contact}`);
    expect(memberRead.body.coupons).toEqual([{ code: coupon!.code, value: 500, milestone: 1, status: 'issued', issuedAt: now.toISOString() }]);
    const dealRead = await api(`/api/deals/${b.deal}`);
    expect(dealRead.body.coupons).toEqual([{ code: coupon!.code, value: 500, milestone: 1, status: 'issued', issuedAt: now.toISOString(), member: { entity: 'contact', id: r.contact } }]);
    expect(dealRead.body.entries.find((e: { reason: string }) => e.reason === 'coupon')).toMatchObject({ amount: 500, level: 1 });

    // Redelivered: nothing new.
    await changeDeal(b.deal, {});
    expect(await h.store.ledger.couponEntries(pid, [member.id])).toHaveLength(1);

    // Deal A is lost: 1 qualified referral, below the milestone — the coupon is reversed.
    await changeDeal(a.deal, { STAGE_ID: 'LOSE' });
    expect((await h.store.ledger.couponEntries(pid, [member.id])).map((e) => [e.amount, e.kind, e.dealId])).toEqual([
      [500_00, 'credit', b.deal],
      [-500_00, 'reversal', a.deal],
    ]);
    expect((await h.store.coupons.forMembers(pid, [member.id]))[0]).toMatchObject({ code: coupon!.code, status: 'reversed' });
    expect(Number(h.portal.get('contact', r.contact)[F.BALANCE])).toBe(100);
    const afterReversal = await api(`/api/members/contact/${r.contact}`);
    expect(afterReversal.body.coupons[0]).toMatchObject({ code: coupon!.code, status: 'reversed' });
    expect(afterReversal.body.ledger.filter((e: { reason: string }) => e.reason === 'coupon').map((e: { amount: number; status: string }) => [e.amount, e.status])).toEqual([
      [-500, 'reversed'],
      [500, 'reversed'],
    ]);

    // Won again: the same coupon comes back.
    await changeDeal(a.deal, { STAGE_ID: 'WON' });
    expect((await h.store.coupons.forMembers(pid, [member.id])).map((c) => [c.code, c.status])).toEqual([[coupon!.code, 'issued']]);
    expect((await h.store.ledger.couponEntries(pid, [member.id])).map((e) => e.amount)).toEqual([500_00, -500_00, 500_00]);
  });
});

describe('program versions', () => {
  it('a reversal after the program changed takes back exactly what the old version credited', async () => {
    now = new Date('2027-06-10T09:00:00Z');
    const v1 = await useProgram((p) => p);
    const r = await referrer('Реферер версий');
    const { deal } = await referredWin(r.code, { OPPORTUNITY: 1000 }, 'Клиент Д');
    const v2 = await useProgram((p) => ({ ...p, referral: { ...p.referral, levels: [{ percent: 25 }] } }));
    expect(v2).toBe(v1 + 1);
    // An edit while won re-prices with the version that first priced it, not the new one.
    await changeDeal(deal, { OPPORTUNITY: 2000 });
    await changeDeal(deal, { STAGE_ID: 'LOSE' });
    expect((await entries(deal)).map((e) => [e.amount, e.kind, e.programVersion])).toEqual([
      [100_00, 'credit', v1],
      [100_00, 'correction', v1],
      [-200_00, 'reversal', v1],
    ]);
  });
});
