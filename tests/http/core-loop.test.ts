/**
 * The core referral loop through createApp, with msw playing the portal and the OAuth server:
 * install wizard, ONAPPINSTALL, CRM events with and without tokens, crediting, echo events,
 * duplicates, reversal, token refresh, ONAPPUNINSTALL. Each test checks the response, the
 * stored state and the exact REST calls.
 */
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { crmEvent, installRequest, onAppInstall, onAppUninstall, onAppUpdate } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';
import type { SqlStore } from '../../src/store/open-store.js';
import type { MswPortal } from '../support/msw-portal.js';

let h: Harness;
let portal: MswPortal;

const FORM = 'application/x-www-form-urlencoded';

async function install(): Promise<request.Response> {
  const { query, body } = installRequest(portal);
  return request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body);
}

async function event(body: string): Promise<request.Response> {
  return request(h.app).post('/b24/events').set('Content-Type', FORM).send(body);
}

async function portalId(): Promise<number> {
  const inst = await h.store.installations.findByMemberId(portal.memberId);
  if (!inst) throw new Error('not installed');
  return inst.id;
}

beforeAll(async () => {
  h = await createHarness();
  portal = h.portal;
});

afterAll(async () => {
  await h.close();
});

describe('install', () => {
  it('trusts the install only after the OAuth server confirms it, then registers everything', async () => {
    const refreshFromWizard = portal.refreshToken;
    const res = await install();
    expect(res.status).toBe(200);
    expect(res.text).toContain('installFinish');
    expect(res.text).toContain(`${APP_BASE_URL}/static/b24jssdk.js`);

    // The wizard's refresh token was exchanged once at B24_OAUTH_URL.
    expect(h.portal.oauthRequests).toHaveLength(1);
    expect(h.portal.oauthRequests[0]).toMatchObject({ grant_type: 'refresh_token', refresh_token: refreshFromWizard });

    const inst = await h.store.installations.findByMemberId(portal.memberId);
    expect(inst).toMatchObject({ status: 'active', domain: portal.domain, clientEndpoint: portal.clientEndpoint, applicationToken: portal.applicationToken });
    // The rotated pair is what we keep (the wizard's refresh token is dead now).
    expect(inst!.tokens).toMatchObject({ accessToken: portal.accessToken, refreshToken: portal.refreshToken });

    // SPEC 4.1: ten person fields on contacts and leads, four on deals, exact names and types.
    const names = (e: 'deal' | 'contact' | 'lead') => portal.userFields[e].map((f) => `${f.FIELD_NAME}:${f.USER_TYPE_ID}`).sort();
    expect(names('contact')).toEqual([
      'UF_CRM_SARAFAN_BALANCE:double',
      'UF_CRM_SARAFAN_CODE:string',
      'UF_CRM_SARAFAN_JOINED:date',
      'UF_CRM_SARAFAN_LINK:url',
      'UF_CRM_SARAFAN_PENDING:double',
      'UF_CRM_SARAFAN_REFERRALS:integer',
      'UF_CRM_SARAFAN_REFERRER:crm',
      'UF_CRM_SARAFAN_REF_CODE:string',
      'UF_CRM_SARAFAN_SEGMENT:string',
      'UF_CRM_SARAFAN_TIER:string',
    ]);
    expect(names('lead')).toEqual(names('contact'));
    expect(names('deal')).toEqual([
      'UF_CRM_SARAFAN_REDEEMED:double',
      'UF_CRM_SARAFAN_REFERRER:crm',
      'UF_CRM_SARAFAN_REF_CODE:string',
      'UF_CRM_SARAFAN_REWARD:double',
    ]);
    for (const e of ['deal', 'contact', 'lead'] as const) {
      for (const f of portal.userFields[e]) expect(f.XML_ID).toBe(String(f.FIELD_NAME).toLowerCase());
    }
    // SPEC 4.2 events and 4.3 placements, all pointing at APP_BASE_URL.
    const events = portal.events.map((e) => e.event).sort();
    for (const name of ['ONCRMDEALADD', 'ONCRMDEALUPDATE', 'ONCRMDEALDELETE', 'ONCRMLEADADD', 'ONCRMLEADUPDATE', 'ONCRMCONTACTADD', 'ONCRMCONTACTUPDATE', 'ONAPPUNINSTALL', 'ONAPPUPDATE']) {
      expect(events).toContain(name);
    }
    expect(new Set(portal.events.map((e) => e.handler))).toEqual(new Set([`${APP_BASE_URL}/b24/events`]));
    expect(portal.placements.map((p) => `${p.placement}→${p.handler}`).sort()).toEqual([
      `CRM_CONTACT_DETAIL_TAB→${APP_BASE_URL}/b24/frame`,
      `CRM_DEAL_DETAIL_TAB→${APP_BASE_URL}/b24/frame`,
      `CRM_LEAD_DETAIL_TAB→${APP_BASE_URL}/b24/frame`,
    ]);
    // A fresh install starts with the default program as version 1.
    expect((await h.store.programs.current(inst!.id))?.version).toBe(1);
  });

  it('a second install changes nothing and makes no create or bind call', async () => {
    const before = { fields: portal.userFields.contact.length, events: portal.events.length, placements: portal.placements.length };
    portal.resetCalls();
    const res = await install();
    expect(res.status).toBe(200);
    const writes = portal.commands().filter((c) => /\.(add|bind|update|unbind)$/.test(c.method));
    expect(writes).toEqual([]);
    expect(portal.calls.filter((c) => c.method === 'batch')).toHaveLength(1); // the one read
    expect({ fields: portal.userFields.contact.length, events: portal.events.length, placements: portal.placements.length }).toEqual(before);
  });

  it('refuses an install whose refresh token the OAuth server rejects, storing nothing', async () => {
    const { query, body } = installRequest(portal, { member_id: 'forged-member', REFRESH_ID: 'not-a-real-token' });
    const res = await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body);
    expect(res.status).toBe(401);
    expect(await h.store.installations.findByMemberId('forged-member')).toBeNull();
  });

  it('answers 400 naming the missing field of a malformed install form', async () => {
    const res = await request(h.app).post('/b24/install').set('Content-Type', FORM).send('member_id=x');
    expect(res.status).toBe(400);
    expect(res.text).toContain('AUTH_ID');
  });

  it('ONAPPINSTALL with the stored token is accepted and changes nothing', async () => {
    const res = await event(onAppInstall(portal));
    expect(res.status).toBe(200);
    const inst = await h.store.installations.findByMemberId(portal.memberId);
    expect(inst?.applicationToken).toBe(portal.applicationToken);
  });
});

describe('events', () => {
  beforeEach(() => portal.resetCalls());

  it('refuses a wrong application token: 401, nothing queued, a warning without the token', async () => {
    const id = portal.add('deal', { TITLE: 'x', STAGE_ID: 'NEW' });
    const before = await h.store.jobs.depth(await portalId());
    const res = await event(crmEvent(portal, 'ONCRMDEALUPDATE', id, { applicationToken: 'forged-application-token' }));
    expect(res.status).toBe(401);
    expect(await h.store.jobs.depth(await portalId())).toEqual(before);
    const warning = h.logs.filter((l) => l.includes('event.rejected')).at(-1);
    expect(warning).toBeDefined();
    expect(warning).not.toContain('forged-application-token');
  });

  it('refuses an unknown member with 401', async () => {
    const res = await event(crmEvent(portal, 'ONCRMDEALUPDATE', 1, { memberId: 'unknown-member' }));
    expect(res.status).toBe(401);
  });

  it('answers 400 naming data.FIELDS.ID when it is missing', async () => {
    const res = await event(`event=ONCRMDEALUPDATE&auth[member_id]=${portal.memberId}&auth[application_token]=${portal.applicationToken}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('data.FIELDS.ID');
  });

  it('authenticates before it validates: a malformed event with a wrong token gets 401', async () => {
    const res = await event(`event=ONCRMDEALUPDATE&auth[member_id]=${portal.memberId}&auth[application_token]=wrong`);
    expect(res.status).toBe(401);
  });

  it('coalesces a burst of events for one deal into one queued job', async () => {
    const id = portal.add('deal', { TITLE: 'burst', STAGE_ID: 'NEW' });
    const pid = await portalId();
    const before = (await h.store.jobs.depth(pid)).queued;
    for (let i = 0; i < 5; i++) expect((await event(crmEvent(portal, 'ONCRMDEALUPDATE', id))).status).toBe(200);
    expect((await h.store.jobs.depth(pid)).queued).toBe(before + 1);
    await h.worker.drain();
  });
});

describe('the referral loop', () => {
  let referrer: number; // contact
  let referee: number; // contact
  let refereeDeal: number;
  let code: string;

  async function processAll(): Promise<void> {
    await h.worker.drain();
  }

  async function ledgerFor(dealId: number) {
    return h.store.ledger.forDeal(await portalId(), dealId);
  }

  it('enrols the winner of a first deal: code, link and joined date written to the contact', async () => {
    referrer = portal.add('contact', { NAME: 'Анна', LAST_NAME: 'Иванова' });
    const deal = portal.add('deal', { TITLE: 'Первая покупка', CONTACT_ID: referrer, STAGE_ID: 'WON', OPPORTUNITY: 50000 });
    portal.resetCalls();
    expect((await event(crmEvent(portal, 'ONCRMDEALUPDATE', deal))).status).toBe(200);
    await processAll();

    const member = await h.store.members.findByEntity(await portalId(), 'contact', referrer);
    expect(member?.code).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);
    code = member!.code!;
    const contact = portal.get('contact', referrer);
    expect(contact.UF_CRM_SARAFAN_CODE).toBe(code);
    expect(contact.UF_CRM_SARAFAN_LINK).toBe(`${APP_BASE_URL}/r/${(await h.store.installations.get(await portalId()))!.publicId}/${code}`);
    expect(String(contact.UF_CRM_SARAFAN_JOINED)).toMatch(/^\d{4}-\d{2}-\d{2}/);
    // No referral, so nothing credited.
    expect(await ledgerFor(deal)).toEqual([]);
    // Read the deal; read its client (a newly won deal whose client has no referral yet: the
    // contact's code may not have been seen); write — each one batch.
    expect(portal.calls.map((c) => c.method)).toEqual(['batch', 'batch', 'batch']);
    expect(portal.calls[0]!.commands!.map((c) => [c.method, c.params.filter])).toEqual([['crm.deal.list', { '@ID': [String(deal)] }]]);
    expect(portal.calls[1]!.commands!.map((c) => [c.method, c.params.filter])).toEqual([['crm.contact.list', { '@ID': [String(referrer)] }]]);
  });

  it('credits the referrer 10 % of the referee’s first won deal, once, with program version 1', async () => {
    referee = portal.add('contact', { NAME: 'Борис', UF_CRM_SARAFAN_REF_CODE: code.toLowerCase() });
    refereeDeal = portal.add('deal', { TITLE: 'Кухня', CONTACT_ID: referee, STAGE_ID: 'NEW', OPPORTUNITY: 100000 });
    await event(crmEvent(portal, 'ONCRMCONTACTADD', referee));
    await event(crmEvent(portal, 'ONCRMDEALADD', refereeDeal));
    await processAll();
    expect(portal.get('contact', referee).UF_CRM_SARAFAN_REFERRER).toBe(`C_${referrer}`);
    expect(await ledgerFor(refereeDeal)).toEqual([]);

    // A robot moves the deal to WON: the event comes without tokens.
    portal.update('deal', refereeDeal, { STAGE_ID: 'WON' });
    portal.resetCalls();
    const res = await event(crmEvent(portal, 'ONCRMDEALUPDATE', refereeDeal, { withTokens: false }));
    expect(res.status).toBe(200);
    await processAll();

    const entries = await ledgerFor(refereeDeal);
    const referrerMember = await h.store.members.findByEntity(await portalId(), 'contact', referrer);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ memberId: referrerMember!.id, amount: 10000_00, reason: 'referral', kind: 'credit', level: 1, programVersion: 1 });
    // Every REST call used the stored (installer) token.
    expect(new Set(portal.calls.map((c) => c.token))).toEqual(new Set([portal.accessToken]));
    // CRM projections: absolute values, written in one batch.
    const deal = portal.get('deal', refereeDeal);
    expect(deal.UF_CRM_SARAFAN_REFERRER).toBe(`C_${referrer}`);
    expect(Number(deal.UF_CRM_SARAFAN_REWARD)).toBe(10000);
    const ref = portal.get('contact', referrer);
    expect(Number(ref.UF_CRM_SARAFAN_BALANCE)).toBe(10000);
    expect(Number(ref.UF_CRM_SARAFAN_PENDING)).toBe(0);
    expect(Number(ref.UF_CRM_SARAFAN_REFERRALS)).toBe(1);
    // The referee won a first deal: enrolled too.
    expect(portal.get('contact', referee).UF_CRM_SARAFAN_CODE).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);
    const writes = portal.commands().filter((c) => c.method.endsWith('.update'));
    expect(writes.map((w) => `${w.method}:${String(w.params.id)}`).sort()).toEqual(
      [`crm.contact.update:${referee}`, `crm.contact.update:${referrer}`, `crm.deal.update:${refereeDeal}`].sort(),
    );
  });

  it('the events caused by its own writes end quietly: reads, no writes, no entries', async () => {
    portal.resetCalls();
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', refereeDeal, { withTokens: false }));
    await event(crmEvent(portal, 'ONCRMCONTACTUPDATE', referrer, { withTokens: false }));
    await event(crmEvent(portal, 'ONCRMCONTACTUPDATE', referee, { withTokens: false }));
    await processAll();
    expect(portal.commands().filter((c) => c.method.endsWith('.update'))).toEqual([]);
    expect(portal.calls.map((c) => c.method)).toEqual(['batch']);
    expect(await ledgerFor(refereeDeal)).toHaveLength(1);
  });

  it('duplicated events credit nothing more', async () => {
    for (let i = 0; i < 3; i++) {
      await event(crmEvent(portal, 'ONCRMDEALUPDATE', refereeDeal));
      await processAll();
    }
    expect(await ledgerFor(refereeDeal)).toHaveLength(1);
  });

  it('a manager editing a computed field by hand is overwritten at the next sync', async () => {
    portal.update('contact', referrer, { UF_CRM_SARAFAN_BALANCE: '999999' });
    portal.resetCalls();
    await event(crmEvent(portal, 'ONCRMCONTACTUPDATE', referrer));
    await processAll();
    expect(Number(portal.get('contact', referrer).UF_CRM_SARAFAN_BALANCE)).toBe(10000);
    expect(portal.commands('crm.contact.update')).toHaveLength(1);
    expect(Object.keys(portal.commands('crm.contact.update')[0]!.params.fields as object)).toEqual(['UF_CRM_SARAFAN_BALANCE']);
  });

  it('an unchanged deal skips the money transaction, yet a hand-edited reward on it is put back', async () => {
    const runJobs = async () => (await (h.store as SqlStore).rawQuery<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE kind = 'crm.project'`))[0]!.n;
    const jobsBefore = await runJobs();
    portal.update('deal', refereeDeal, { UF_CRM_SARAFAN_REWARD: '1' });
    portal.resetCalls();
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', refereeDeal));
    await processAll();
    expect(Number(portal.get('deal', refereeDeal).UF_CRM_SARAFAN_REWARD)).toBe(10000);
    expect(portal.commands('crm.deal.update')).toHaveLength(1);
    expect(Object.keys(portal.commands('crm.deal.update')[0]!.params.fields as object)).toEqual(['UF_CRM_SARAFAN_REWARD']);
    expect(await ledgerFor(refereeDeal)).toHaveLength(1);
    // No settlement ran: it would have left its durable `crm.project` job behind (done).
    expect(await runJobs()).toBe(jobsBefore);
  });

  it('un-winning the deal reverses the credit and the CRM fields follow', async () => {
    portal.update('deal', refereeDeal, { STAGE_ID: 'LOSE' });
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', refereeDeal));
    await processAll();
    const entries = await ledgerFor(refereeDeal);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['credit', 10000_00],
      ['reversal', -10000_00],
    ]);
    expect(Number(portal.get('contact', referrer).UF_CRM_SARAFAN_BALANCE)).toBe(0);
    expect(Number(portal.get('deal', refereeDeal).UF_CRM_SARAFAN_REWARD)).toBe(0);
  });

  it('won, lost and won again pays once', async () => {
    portal.update('deal', refereeDeal, { STAGE_ID: 'WON' });
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', refereeDeal));
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', refereeDeal));
    await processAll();
    const entries = await ledgerFor(refereeDeal);
    expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(10000_00);
    expect(Number(portal.get('contact', referrer).UF_CRM_SARAFAN_BALANCE)).toBe(10000);
  });

  it('a won deal in another pipeline (C1:WON) counts too', async () => {
    const other = portal.add('contact', { NAME: 'Вера', UF_CRM_SARAFAN_REF_CODE: code });
    const deal = portal.add('deal', { CONTACT_ID: other, CATEGORY_ID: 1, STAGE_ID: 'C1:WON', OPPORTUNITY: 2500.5 });
    await event(crmEvent(portal, 'ONCRMCONTACTADD', other));
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', deal));
    await processAll();
    const entries = await ledgerFor(deal);
    expect(entries.map((e) => e.amount)).toEqual([250_05]);
  });

  it('deleting a won deal reverses what it credited', async () => {
    const deal = portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'NEW', OPPORTUNITY: 1 });
    await event(crmEvent(portal, 'ONCRMDEALADD', deal));
    await processAll();
    // The referee's first won deal is refereeDeal; delete that one.
    portal.entities.deal.delete(refereeDeal);
    await event(crmEvent(portal, 'ONCRMDEALDELETE', refereeDeal));
    await processAll();
    const entries = await ledgerFor(refereeDeal);
    expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(0);
  });

  it('rejects a self-referral with the reason recorded', async () => {
    const pid = await portalId();
    const self = portal.add('contact', { NAME: 'Сам' });
    const first = portal.add('deal', { CONTACT_ID: self, STAGE_ID: 'WON', OPPORTUNITY: 10 });
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', first));
    await processAll();
    const member = await h.store.members.findByEntity(pid, 'contact', self);
    const second = portal.add('deal', { CONTACT_ID: self, STAGE_ID: 'WON', OPPORTUNITY: 1000, UF_CRM_SARAFAN_REF_CODE: member!.code });
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', second));
    await processAll();
    expect(await h.store.referrals.activeFor(pid, member!.id)).toBeNull();
    expect(await ledgerFor(second)).toEqual([]);
    const rejected = h.logs.filter((l) => l.includes('referral.rejected')).at(-1);
    expect(rejected).toContain('self_referral');
  });

  it('an expired access token is refreshed, persisted, and the call replayed', async () => {
    portal.expireAccessToken();
    portal.resetCalls();
    const deal = portal.add('deal', { STAGE_ID: 'NEW' });
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', deal));
    await processAll();
    expect(portal.oauthRequests).toHaveLength(1);
    const inst = await h.store.installations.findByMemberId(portal.memberId);
    expect(inst?.tokens).toMatchObject({ accessToken: portal.accessToken, refreshToken: portal.refreshToken });
    expect((await h.store.jobs.depth(inst!.id)).queued).toBe(0);
  });
});

describe('application lifecycle', () => {
  it('ONAPPUPDATE with a new application token rotates it after the OAuth server confirms the tokens', async () => {
    const rotated = 'rotated-application-token-value';
    const res = await event(onAppUpdate(portal, rotated));
    expect(res.status).toBe(200);
    portal.applicationToken = rotated;
    const inst = await h.store.installations.findByMemberId(portal.memberId);
    expect(inst?.applicationToken).toBe(rotated);
    await h.worker.drain(); // the queued reconciliation
    expect(inst?.status).toBe('active');
  });

  it('ONAPPUNINSTALL with a wrong token deletes nothing', async () => {
    const res = await event(onAppUninstall(portal, { clean: true, applicationToken: 'wrong-token' }));
    expect(res.status).toBe(401);
    const inst = await h.store.installations.findByMemberId(portal.memberId);
    expect(inst?.status).toBe('active');
  });

  it('ONAPPUNINSTALL marks the installation uninstalled and keeps the data without CLEAN', async () => {
    const pid = await portalId();
    const res = await event(onAppUninstall(portal, { clean: false }));
    expect(res.status).toBe(200);
    const inst = await h.store.installations.findByMemberId(portal.memberId);
    expect(inst?.status).toBe('uninstalled');
    expect(inst?.tokens).toBeNull();
    expect(await h.store.programs.current(pid)).not.toBeNull();
    // Events of an uninstalled portal are refused.
    expect((await event(crmEvent(portal, 'ONCRMDEALUPDATE', 1))).status).toBe(401);
  });
});

describe('logs', () => {
  it('never contain a token, secret or application token', () => {
    const all = h.logs.join('\n');
    expect(all.length).toBeGreaterThan(0);
    expect(all).toContain('install.finished');
    for (const secret of [portal.accessToken, portal.refreshToken, 'rotated-application-token-value', 'test-client-secret-value']) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/(access|refresh|apptoken)-\d+-[a-z0-9]{4,}/);
  });
});

describe('reordered events', () => {
  it('a deal won before its contact’s event (carrying the code) is processed still credits the referrer', async () => {
    const { query, body } = installRequest(portal);
    await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body); // reinstall after the uninstall above
    const referrer = portal.add('contact', { NAME: 'Елена' });
    const first = portal.add('deal', { CONTACT_ID: referrer, STAGE_ID: 'WON', OPPORTUNITY: 1 });
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', first));
    await h.worker.drain();
    const code = (await h.store.members.findByEntity(await portalId(), 'contact', referrer))!.code!;

    const referee = portal.add('contact', { NAME: 'Жанна', UF_CRM_SARAFAN_REF_CODE: code });
    const deal = portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 900 });
    await event(crmEvent(portal, 'ONCRMDEALUPDATE', deal)); // the deal's event first …
    await h.worker.drain();
    await event(crmEvent(portal, 'ONCRMCONTACTADD', referee)); // … the contact's afterwards
    await h.worker.drain();
    expect((await h.store.ledger.forDeal(await portalId(), deal)).map((e) => e.amount)).toEqual([90_00]);
    expect(portal.get('contact', referee).UF_CRM_SARAFAN_REFERRER).toBe(`C_${referrer}`);
  });
});
