/**
 * The core referral loop of core-loop.test.ts, against the sandbox portal over real HTTP instead
 * of msw: the install wizard POST and ONAPPINSTALL, events posted form-encoded by the portal
 * after each change (Sarafan's own writes included), REST through b24jssdk with the portal's
 * limits, token expiry and refresh rotation. Assertions read the portal's CRM state and
 * Sarafan's ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { DEMO_CLIENT_ID, DEMO_CLIENT_SECRET } from '../../server/demo/sandbox-demo.js';
import type { Actor, EntityKind, Row } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

let live: Live;
const manager: Actor = { userId: 2 };
const CODE_PATTERN = /^[2-9A-HJKMNP-Z]{6,8}$/;

beforeAll(async () => {
  // The portal's real limits (2/s, burst 50) and short-lived access tokens.
  live = await startLive({ limits: { drainPerSec: 2, burst: 50 }, tokenLifetimeSec: 3600 });
});

afterAll(async () => {
  await live?.close();
});

const portal = () => live.sandbox.portal;
const get = (kind: EntityKind, id: number): Row => {
  const row = portal().getEntity(kind, id);
  if (!row) throw new Error(`no ${kind} ${id}`);
  return row;
};
const add = (kind: EntityKind, fields: Row) => portal().addEntity(kind, fields, manager);
const update = (kind: EntityKind, id: number, fields: Row, actor: Actor = manager) => portal().updateEntity(kind, id, fields, actor);

async function ledgerFor(dealId: number) {
  return live.deps.store.ledger.forDeal((await live.installation()).id, dealId);
}

describe('install through the wizard POST and installFinish', () => {
  it('registers the fields, events and tabs on the portal and activates with the portal’s application token', async () => {
    const installation = await live.installation();
    expect(installation.status).toBe('active');
    expect(installation.domain).toBe(portal().domain);
    const ufNames = (kind: EntityKind) => portal().userFields(kind).map((f) => f.FIELD_NAME);
    expect(ufNames('contact')).toEqual(expect.arrayContaining([F.CODE, F.LINK, F.BALANCE, F.REF_CODE, F.REFERRER]));
    expect(ufNames('lead')).toHaveLength(10);
    expect(ufNames('deal')).toEqual(expect.arrayContaining([F.REF_CODE, F.REFERRER, F.REWARD, F.REDEEMED]));
    const events = portal().eventBindings().filter((b) => b.clientId === DEMO_CLIENT_ID);
    expect(events).toHaveLength(10);
    expect(new Set(events.map((e) => e.handler))).toEqual(new Set([`${live.sarafanUrl}/b24/events`]));
    expect(portal().placements().map((p) => p.placement).sort()).toEqual(['CRM_CONTACT_DETAIL_TAB', 'CRM_DEAL_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB']);
    const app = portal().app(DEMO_CLIENT_ID);
    expect(app?.installed).toBe(true);
    // ONAPPINSTALL was delivered and accepted.
    expect(live.sandbox.outbound.deliveries.filter((d) => d.event === 'ONAPPINSTALL').map((d) => d.status)).toEqual([200]);
  });
});

describe('the referral loop, driven by the portal’s own events', () => {
  let referrer: number;
  let referee: number;
  let refereeDeal: number;
  let code: string;

  it('enrols the winner of a first deal: code, link and joined date written to the contact', async () => {
    referrer = add('contact', { NAME: 'Анна', LAST_NAME: 'Иванова' });
    const deal = add('deal', { TITLE: 'Первая покупка', CONTACT_ID: referrer, STAGE_ID: 'NEW', OPPORTUNITY: 50000 });
    update('deal', deal, { STAGE_ID: 'WON' });
    await live.settle();
    const contact = get('contact', referrer);
    expect(contact[F.CODE]).toMatch(CODE_PATTERN);
    code = String(contact[F.CODE]);
    expect(contact[F.LINK]).toBe(`${live.sarafanUrl}/r/${(await live.installation()).publicId}/${code}`);
    expect(String(contact[F.JOINED])).toMatch(/^\d{4}-\d{2}-\d{2}/);
    expect(await ledgerFor(deal)).toEqual([]);
  });

  it('credits the referrer 10 % when the referred client’s deal is won by a robot (token-less event)', async () => {
    referee = add('contact', { NAME: 'Борис', [F.REF_CODE]: code.toLowerCase() });
    refereeDeal = add('deal', { TITLE: 'Кухня', CONTACT_ID: referee, STAGE_ID: 'NEW', OPPORTUNITY: 100000 });
    await live.settle();
    expect(get('contact', referee)[F.REFERRER]).toBe(`C_${referrer}`);

    update('deal', refereeDeal, { STAGE_ID: 'WON' }, { userId: 0, byRobot: true });
    await live.settle();
    const entries = await ledgerFor(refereeDeal);
    expect(entries.map((e) => [e.kind, e.amount, e.reason, e.level])).toEqual([['credit', 10000_00, 'referral', 1]]);
    expect(Number(get('deal', refereeDeal)[F.REWARD])).toBe(10000);
    expect(get('deal', refereeDeal)[F.REFERRER]).toBe(`C_${referrer}`);
    const ref = get('contact', referrer);
    expect(Number(ref[F.BALANCE])).toBe(10000);
    expect(Number(ref[F.REFERRALS])).toBe(1);
    expect(get('contact', referee)[F.CODE]).toMatch(CODE_PATTERN);
  });

  it('its own writes come back as events and end quietly, without a loop', async () => {
    const before = live.sandbox.outbound.deliveries.length;
    const stamp = (kind: EntityKind, id: number) => String(get(kind, id).DATE_MODIFY);
    const modified = [stamp('contact', referrer), stamp('deal', refereeDeal)];
    update('contact', referrer, { NAME: 'Анна' });
    await live.settle();
    // One event for the manager's save; Sarafan read and found nothing to write.
    expect(live.sandbox.outbound.deliveries.length - before).toBe(1);
    expect(stamp('deal', refereeDeal)).toBe(modified[1]);
    expect(await ledgerFor(refereeDeal)).toHaveLength(1);
  });

  it('duplicated and reordered deliveries credit nothing more', async () => {
    live.sandbox.outbound.setFaults({ duplicate: 3 });
    update('deal', refereeDeal, { TITLE: 'Кухня (доставка)' });
    update('deal', refereeDeal, { COMMENTS: 'Согласовано' });
    live.sandbox.outbound.setFaults({ reorder: 2 });
    update('deal', refereeDeal, { COMMENTS: 'Собрано' });
    update('contact', referee, { LAST_NAME: 'Петров' });
    await live.settle();
    // Every fault was spent on the deliveries above (Sarafan's own echo events included).
    expect(live.sandbox.outbound.getFaults()).toMatchObject({ duplicate: 0, reorder: 0 });
    expect(await ledgerFor(refereeDeal)).toHaveLength(1);
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10000);
  });

  it('a manager editing a computed field by hand is overwritten at the next sync', async () => {
    update('contact', referrer, { [F.BALANCE]: 999999 });
    await live.settle();
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10000);
  });

  it('un-winning reverses the credit; winning again pays once', async () => {
    update('deal', refereeDeal, { STAGE_ID: 'LOSE' });
    await live.settle();
    expect((await ledgerFor(refereeDeal)).map((e) => [e.kind, e.amount])).toEqual([
      ['credit', 10000_00],
      ['reversal', -10000_00],
    ]);
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(0);
    expect(Number(get('deal', refereeDeal)[F.REWARD])).toBe(0);

    update('deal', refereeDeal, { STAGE_ID: 'WON' });
    await live.settle();
    expect((await ledgerFor(refereeDeal)).reduce((s, e) => s + e.amount, 0)).toBe(10000_00);
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10000);
  });

  it('a won deal in another pipeline (C1:WON) counts too', async () => {
    const other = add('contact', { NAME: 'Вера', [F.REF_CODE]: code });
    const deal = add('deal', { CONTACT_ID: other, CATEGORY_ID: 1, STAGE_ID: 'C1:NEW', OPPORTUNITY: 2500.5 });
    update('deal', deal, { STAGE_ID: 'C1:WON' });
    await live.settle();
    expect((await ledgerFor(deal)).map((e) => e.amount)).toEqual([250_05]);
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10250.05);
  });

  it('deleting a won deal reverses what it credited', async () => {
    const other = add('contact', { NAME: 'Глеб', [F.REF_CODE]: code });
    const deal = add('deal', { CONTACT_ID: other, STAGE_ID: 'WON', OPPORTUNITY: 1000 });
    await live.settle();
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10350.05);
    portal().deleteEntity('deal', deal, manager);
    await live.settle();
    expect((await ledgerFor(deal)).reduce((s, e) => s + e.amount, 0)).toBe(0);
    expect(Number(get('contact', referrer)[F.BALANCE])).toBe(10250.05);
  });

  it('rejects a self-referral: no referrer written, nothing credited', async () => {
    update('contact', referrer, { [F.REF_CODE]: code });
    const deal = add('deal', { CONTACT_ID: referrer, STAGE_ID: 'WON', OPPORTUNITY: 7000 });
    await live.settle();
    expect(get('contact', referrer)[F.REFERRER] ?? '').toBe('');
    expect(await ledgerFor(deal)).toEqual([]);
  });

  it('a referred lead converted in the CRM keeps its referral: the contact’s won deal pays the referrer', async () => {
    const lead = add('lead', { TITLE: 'Заявка с сайта', NAME: 'Дарья', [F.REF_CODE]: code });
    await live.settle();
    expect(get('lead', lead)[F.REFERRER]).toBe(`C_${referrer}`);
    const { contactId, dealId } = portal().convertLead(lead, manager, { withDeal: true });
    update('deal', dealId!, { OPPORTUNITY: 3000 });
    update('deal', dealId!, { STAGE_ID: 'WON' });
    await live.settle();
    expect(get('contact', contactId)[F.REFERRER]).toBe(`C_${referrer}`);
    expect((await ledgerFor(dealId!)).map((e) => e.amount)).toEqual([300_00]);
  });
});

describe('tokens', () => {
  it('an expired access token is refreshed at the portal’s OAuth server, rotated, persisted and the call replayed', async () => {
    const before = (await live.installation()).tokens!;
    portal().expireAccessToken(before.accessToken);
    const contact = add('contact', { NAME: 'Егор' });
    const deal = add('deal', { CONTACT_ID: contact, STAGE_ID: 'WON', OPPORTUNITY: 10 });
    await live.settle();
    expect(get('contact', contact)[F.CODE]).toMatch(CODE_PATTERN);
    const after = (await live.installation()).tokens!;
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(portal().authenticate(after.accessToken)).toMatchObject({ clientId: DEMO_CLIENT_ID });
    // The spent refresh token no longer works at the portal (rotation).
    expect(() => portal().refresh(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, before.refreshToken)).toThrow(/invalid_grant/);
    expect(await ledgerFor(deal)).toEqual([]);
  });
});

describe('uninstall from the portal', () => {
  it('ONAPPUNINSTALL reaches Sarafan with the right token: the installation is uninstalled, bindings gone', async () => {
    await live.sandbox.outbound.uninstall(DEMO_CLIENT_ID, false);
    expect(live.sandbox.outbound.deliveries.filter((d) => d.event === 'ONAPPUNINSTALL').map((d) => d.status)).toEqual([200]);
    expect((await live.installation()).status).toBe('uninstalled');
    expect(portal().eventBindings().filter((b) => b.clientId === DEMO_CLIENT_ID)).toEqual([]);
    // A change now sends nothing.
    const before = live.sandbox.outbound.deliveries.length;
    add('contact', { NAME: 'После удаления' });
    await live.settle();
    expect(live.sandbox.outbound.deliveries.length).toBe(before);
  });
});

describe('logs', () => {
  it('never contain a token, secret or application token', async () => {
    const installation = await live.installation();
    const secrets = [installation.applicationToken, installation.tokens?.accessToken, installation.tokens?.refreshToken, DEMO_CLIENT_SECRET].filter(Boolean) as string[];
    const all = live.logs.join('\n');
    for (const s of secrets) expect(all).not.toContain(s);
  });
});
