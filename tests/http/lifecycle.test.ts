/**
 * Installation lifecycle and the lead path through createApp: ONAPPINSTALL bringing the
 * application token (wizard without one), ONAPPUPDATE re-running reconciliation, CLEAN
 * uninstall, and a referral that arrives on a lead.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent, installRequest, onAppInstall, onAppUninstall, onAppUpdate } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';

let h: Harness;
const FORM = 'application/x-www-form-urlencoded';
const post = (path: string, body: string) => request(h.app).post(path).set('Content-Type', FORM).send(body);

beforeAll(async () => {
  h = await createHarness();
});

afterAll(async () => {
  await h.close();
});

async function pid(): Promise<number> {
  return (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
}

describe('lifecycle', () => {
  it('a wizard without APPLICATION_TOKEN leaves the installation new; ONAPPINSTALL brings the token and activates it', async () => {
    const { query, body } = installRequest(h.portal, { APPLICATION_TOKEN: '' });
    expect((await post(`/b24/install?${query}`, body)).status).toBe(200);
    let inst = await h.store.installations.findByMemberId(h.portal.memberId);
    expect(inst).toMatchObject({ status: 'new', applicationToken: null });
    // Events cannot be authenticated yet.
    expect((await post('/b24/events', crmEvent(h.portal, 'ONCRMDEALUPDATE', 1))).status).toBe(401);

    h.portal.resetCalls();
    expect((await post('/b24/events', onAppInstall(h.portal))).status).toBe(200);
    expect(h.portal.oauthRequests).toHaveLength(1); // the event's tokens were confirmed
    inst = await h.store.installations.findByMemberId(h.portal.memberId);
    expect(inst).toMatchObject({ status: 'active', applicationToken: h.portal.applicationToken });
  });

  it('ONAPPINSTALL with an unknown token and unconfirmable tokens is refused and changes nothing', async () => {
    const res = await post('/b24/events', onAppInstall(h.portal, { application_token: 'attacker-token', refresh_token: 'stolen-or-guessed', access_token: 'nope' }));
    expect(res.status).toBe(401);
    expect((await h.store.installations.findByMemberId(h.portal.memberId))?.applicationToken).toBe(h.portal.applicationToken);
  });

  it('ONAPPUPDATE re-runs reconciliation: a binding the update dropped is bound again', async () => {
    h.portal.events = h.portal.events.filter((e) => e.event !== 'ONCRMDEALUPDATE');
    h.portal.resetCalls();
    expect((await post('/b24/events', onAppUpdate(h.portal, h.portal.applicationToken))).status).toBe(200);
    await h.worker.drain();
    expect(h.portal.commands('event.bind').map((c) => c.params)).toEqual([{ event: 'ONCRMDEALUPDATE', handler: `${APP_BASE_URL}/b24/events` }]);
    expect(h.portal.commands().filter((c) => /\.add$/.test(c.method))).toEqual([]);
    expect(await h.store.jobs.depth(await pid())).toEqual({ queued: 0, running: 0, dead: 0 });
  });
});

describe('a referral on a lead', () => {
  it('writes the lead’s referrer and credits the referrer when the lead’s deal is won', async () => {
    const p = h.portal;
    const referrer = p.add('contact', { NAME: 'Галина' });
    const first = p.add('deal', { CONTACT_ID: referrer, STAGE_ID: 'WON', OPPORTUNITY: 100 });
    await post('/b24/events', crmEvent(p, 'ONCRMDEALUPDATE', first));
    await h.worker.drain();
    const code = (await h.store.members.findByEntity(await pid(), 'contact', referrer))!.code!;

    const lead = p.add('lead', { TITLE: 'Заявка с сайта', NAME: 'Дмитрий', UF_CRM_SARAFAN_REF_CODE: ` ${code.toLowerCase()} ` });
    await post('/b24/events', crmEvent(p, 'ONCRMLEADADD', lead));
    await h.worker.drain();
    expect(p.get('lead', lead).UF_CRM_SARAFAN_REFERRER).toBe(`C_${referrer}`);

    const deal = p.add('deal', { LEAD_ID: lead, STAGE_ID: 'WON', OPPORTUNITY: 7777.77 });
    await post('/b24/events', crmEvent(p, 'ONCRMDEALUPDATE', deal, { withTokens: false }));
    await h.worker.drain();
    const entries = await h.store.ledger.forDeal(await pid(), deal);
    expect(entries.map((e) => e.amount)).toEqual([777_78]);
    expect(Number(p.get('contact', referrer).UF_CRM_SARAFAN_BALANCE)).toBe(777.78);
    // The lead won its first deal: enrolled, its own code on the lead.
    expect(p.get('lead', lead).UF_CRM_SARAFAN_CODE).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);
  });

  it('a referred lead converted into a contact keeps its referral: the contact’s won deal pays the referrer', async () => {
    const p = h.portal;
    const referrer = p.add('contact', { NAME: 'Ирина' });
    const first = p.add('deal', { CONTACT_ID: referrer, STAGE_ID: 'WON', OPPORTUNITY: 100 });
    await post('/b24/events', crmEvent(p, 'ONCRMDEALUPDATE', first));
    await h.worker.drain();
    const code = (await h.store.members.findByEntity(await pid(), 'contact', referrer))!.code!;
    const lead = p.add('lead', { TITLE: 'Лид', NAME: 'Олег', UF_CRM_SARAFAN_REF_CODE: code });
    await post('/b24/events', crmEvent(p, 'ONCRMLEADADD', lead));
    await h.worker.drain();
    const leadMember = await h.store.members.findByEntity(await pid(), 'lead', lead);

    // Conversion: a contact and a deal are created from the lead; the deal is won.
    p.update('lead', lead, { STATUS_ID: 'CONVERTED' });
    const contact = p.add('contact', { NAME: 'Олег', LEAD_ID: lead });
    const deal = p.add('deal', { CONTACT_ID: contact, LEAD_ID: lead, STAGE_ID: 'WON', OPPORTUNITY: 4000 });
    await post('/b24/events', crmEvent(p, 'ONCRMDEALUPDATE', deal));
    await post('/b24/events', crmEvent(p, 'ONCRMCONTACTADD', contact));
    await h.worker.drain();

    expect((await h.store.members.findByEntity(await pid(), 'contact', contact))?.id).toBe(leadMember!.id);
    expect((await h.store.ledger.forDeal(await pid(), deal)).map((e) => e.amount)).toEqual([400_00]);
    expect(p.get('contact', contact).UF_CRM_SARAFAN_REFERRER).toBe(`C_${referrer}`);
    expect(p.get('contact', contact).UF_CRM_SARAFAN_CODE).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);
  });

  it('an unknown code is recorded as rejected and writes no referrer', async () => {
    const p = h.portal;
    const lead = p.add('lead', { TITLE: 'Ещё заявка', UF_CRM_SARAFAN_REF_CODE: 'ZZZZZZZ' });
    await post('/b24/events', crmEvent(p, 'ONCRMLEADADD', lead));
    await h.worker.drain();
    expect(p.get('lead', lead).UF_CRM_SARAFAN_REFERRER).toBeUndefined();
    const member = await h.store.members.findByEntity(await pid(), 'lead', lead);
    expect(member).not.toBeNull();
    expect(await h.store.referrals.activeFor(await pid(), member!.id)).toBeNull();
    expect(h.logs.filter((l) => l.includes('referral.rejected')).at(-1)).toContain('unknown_code');
  });
});

describe('CLEAN uninstall', () => {
  it('deletes the portal’s data and keeps the installation row as uninstalled', async () => {
    const id = await pid();
    expect((await h.store.programs.current(id))).not.toBeNull();
    expect((await post('/b24/events', onAppUninstall(h.portal, { clean: true }))).status).toBe(200);
    const inst = await h.store.installations.findByMemberId(h.portal.memberId);
    expect(inst).toMatchObject({ status: 'uninstalled', tokens: null });
    expect(await h.store.programs.current(id)).toBeNull();
    expect(await h.store.members.findByEntity(id, 'contact', 1)).toBeNull();
  });

  it('a reinstall brings the portal back to work', async () => {
    const { query, body } = installRequest(h.portal);
    expect((await post(`/b24/install?${query}`, body)).status).toBe(200);
    expect((await h.store.installations.findByMemberId(h.portal.memberId))?.status).toBe('active');
  });
});

describe('only an administrator can install or change the application token', () => {
  it('a non-admin’s access token cannot vouch for a new application token (forged ONAPPUPDATE)', async () => {
    const before = (await h.store.installations.findByMemberId(h.portal.memberId))!.applicationToken;
    h.portal.users.set('employee-frame-token', { ID: '9', ADMIN: false, NAME: 'Сотрудник' });
    const forged = onAppUpdate(h.portal, 'attacker-chosen-token')
      .replace(/auth%5Brefresh_token%5D=[^&]*&?|auth\[refresh_token\]=[^&]*&?/, '')
      .replace(/(auth(?:%5B|\[)access_token(?:%5D|\])=)[^&]*/, '$1employee-frame-token');
    expect((await post('/b24/events', forged)).status).toBe(401);
    expect((await h.store.installations.findByMemberId(h.portal.memberId))!.applicationToken).toBe(before);
    // … so a forged uninstall with the attacker's token is refused too.
    expect((await post('/b24/events', onAppUninstall(h.portal, { clean: true, applicationToken: 'attacker-chosen-token' }))).status).toBe(401);
  });
});
