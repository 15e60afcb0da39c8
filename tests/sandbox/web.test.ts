/**
 * The sandbox's web CRM against a real in-memory portal: form posts change the portal through
 * the facade (events and stage moves reported), cards show one tab per installed app's placement,
 * app frames carry what Bitrix24 sends (reference §1.3, §7.6), and everything rendered is escaped.
 */
import vm from 'node:vm';
import express from 'express';
import request from 'supertest';
import { beforeEach, describe, expect, it } from 'vitest';
import { createPortal, type SandboxPortal } from '../../sandbox/portal.js';
import type { ChangeNote } from '../../sandbox/types.js';
import { jsonForScript } from '../../sandbox/web/html.js';
import { webRoutes } from '../../sandbox/web/routes.js';

const DOMAIN = '127.0.0.1:4999';
const SARAFAN = 'local.sarafan.test';
const OTHER = 'local.other.test';

let portal: SandboxPortal;
let app: express.Express;
let notes: ChangeNote[];
let hookCalls: { installFinished: string[]; uninstall: [string, boolean][] };

function appSpec(clientId: string, title: string) {
  return {
    clientId,
    clientSecret: `${clientId}-secret`,
    code: clientId,
    title,
    version: '1',
    scope: 'crm,placement,bizproc,user_brief',
    handlerUrl: `http://127.0.0.1:5000/${title}/app`,
    installUrl: `http://127.0.0.1:5000/${title}/install?x=1`,
  };
}

beforeEach(() => {
  portal = createPortal({ domain: DOMAIN, stateFile: null, protocol: 'http', memberId: 'member-1' });
  portal.upsertApp(appSpec(SARAFAN, 'sarafan'));
  portal.upsertApp(appSpec(OTHER, 'other'));
  portal.setAppInstalled(SARAFAN, true);
  notes = [];
  portal.onChange((n) => notes.push(n));
  hookCalls = { installFinished: [], uninstall: [] };
  app = express();
  app.use(
    webRoutes(portal, {
      async installFinished(clientId) {
        hookCalls.installFinished.push(clientId);
        portal.setAppInstalled(clientId, true);
      },
      async uninstall(clientId, clean) {
        hookCalls.uninstall.push([clientId, clean]);
        portal.uninstallApp(clientId, clean);
      },
    }, {
      listColumns: { contact: ['UF_CRM_SARAFAN_REF_CODE', 'UF_CRM_ABSENT'] },
      guide: { title: 'Попробуйте демо', steps: [['Откройте ', { text: 'контакт <b>', href: '/crm/contact/' }, ' и скопируйте <код>.'], ['Второй шаг.']] },
    }),
  );
  for (const kind of ['contact', 'deal'] as const) {
    portal.addUserField(kind, { FIELD_NAME: 'UF_CRM_SARAFAN_REF_CODE', USER_TYPE_ID: 'string', EDIT_FORM_LABEL: { ru: 'Сарафан: код пригласившего', en: 'x' }, SORT: 1010 });
    portal.addUserField(kind, { FIELD_NAME: 'UF_CRM_SARAFAN_REFERRER', USER_TYPE_ID: 'crm', SETTINGS: { LEAD: 'Y', CONTACT: 'Y', COMPANY: 'N', DEAL: 'N' }, EDIT_FORM_LABEL: { ru: 'Сарафан: кто порекомендовал' } });
  }
  portal.addUserField('contact', { FIELD_NAME: 'UF_CRM_SARAFAN_BALANCE', USER_TYPE_ID: 'double', EDIT_IN_LIST: 'N', EDIT_FORM_LABEL: { ru: 'Сарафан: доступные бонусы' } });
  portal.addUserField('contact', { FIELD_NAME: 'UF_CRM_SARAFAN_CODE', USER_TYPE_ID: 'string', EDIT_IN_LIST: 'N', LABEL: 'Сарафан: реферальный код' });
  portal.addUserField('contact', { FIELD_NAME: 'UF_CRM_VIP', USER_TYPE_ID: 'boolean' });
  portal.addUserField('contact', { FIELD_NAME: 'UF_CRM_SINCE', USER_TYPE_ID: 'date' });
  for (const clientId of [SARAFAN, OTHER]) {
    for (const placement of ['CRM_CONTACT_DETAIL_TAB', 'CRM_DEAL_DETAIL_TAB']) {
      portal.bindPlacement({ clientId, placement, handler: `http://127.0.0.1:5000/${clientId}/tab`, title: clientId === SARAFAN ? 'Сарафан' : 'Другое', description: '', langAll: {}, userId: 0 });
    }
  }
});

const form = (agent: request.Test, body: Record<string, string>) => agent.type('form').send(body);
const asUser = (id: number) => `sandbox_user=${id}`;

function attr(htmlText: string, re: RegExp): string {
  const m = re.exec(htmlText);
  if (!m) throw new Error(`no match for ${re}`);
  return m[1] ?? '';
}

function hiddenFields(htmlText: string): Record<string, string> {
  const formHtml = attr(htmlText, /<form method="post" target="[^"]+" action="[^"]+" data-frame-form hidden>([\s\S]*?)<\/form>/);
  const out: Record<string, string> = {};
  for (const m of formHtml.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    out[m[1] ?? ''] = (m[2] ?? '').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  }
  return out;
}

function frameData(htmlText: string): { sid: string; clientId: string; init: Record<string, unknown> } {
  return JSON.parse(attr(htmlText, /<script type="application\/json" class="sandbox-frame-data">([\s\S]*?)<\/script>/));
}

describe('pages', () => {
  it('home shows the banner, the apps with their state and the guide it was given, escaped', async () => {
    const res = await request(app).get('/');
    expect(res.status).toBe(200);
    expect(res.text).toContain('Песочница Битрикс24 — локальная имитация портала для демонстрации и тестов');
    expect(res.text).toContain('<h2>Попробуйте демо</h2><ol class="checklist" data-testid="guide"><li>Откройте <a href="/crm/contact/">контакт &lt;b&gt;</a> и скопируйте &lt;код&gt;.</li><li>Второй шаг.</li></ol>');
    expect(res.text).toMatch(/home-app-local\.sarafan\.test[\s\S]*Установлено/);
    expect(res.text).toMatch(/home-app-local\.other\.test[\s\S]*Не установлено/);
    expect(res.text).toContain('data-testid="user-switch"');
  });

  it('switches the user with a cookie and returns to the page', async () => {
    const res = await form(request(app).post('/_sandbox/user'), { userId: '2', back: '/crm/deal/' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/crm/deal/');
    expect(String(res.headers['set-cookie'])).toContain('sandbox_user=2');
    const off = await form(request(app).post('/_sandbox/user'), { userId: '2', back: '//evil.example/' });
    expect(off.headers.location).toBe('/');
  });

  it('lists pages of 50 with search and shows the user-field columns it was given', async () => {
    for (let i = 1; i <= 60; i++) portal.addEntity('contact', { NAME: `Клиент ${i}`, UF_CRM_SARAFAN_REF_CODE: i === 7 ? 'REF7' : '' }, { userId: 1 });
    const first = await request(app).get('/crm/contact/');
    expect(first.status).toBe(200);
    expect(first.text.match(/data-testid="row-\d+"/g)).toHaveLength(50);
    expect(first.text).toContain('<th>Сарафан: код пригласившего</th>');
    expect(first.text).not.toContain('Сарафан: реферальный код');
    expect(first.text).toContain('data-testid="next"');
    const second = await request(app).get('/crm/contact/?page=2');
    expect(second.text.match(/data-testid="row-\d+"/g)).toHaveLength(10);
    const found = await request(app).get('/crm/contact/?q=' + encodeURIComponent('клиент 6'));
    expect(found.text.match(/data-testid="row-\d+"/g)).toHaveLength(2); // 6 and 60
    const byCode = await request(app).get('/crm/contact/?q=ref7');
    expect(byCode.text).toContain('data-testid="row-7"');
  });
});

describe('cards', () => {
  it('creates a contact with user field values, as the current user', async () => {
    const res = await form(request(app).post('/crm/contact/details/0/').set('Cookie', asUser(2)), {
      NAME: 'Пётр',
      LAST_NAME: 'Иванов',
      PHONE: '+7 900 000-00-00',
      EMAIL: '',
      UF_CRM_SARAFAN_REF_CODE: 'ABC123',
      UF_CRM_VIP: '1',
      UF_CRM_SINCE: '2026-03-01',
      UF_CRM_SARAFAN_BALANCE: '999',
    });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/crm/contact/details/1/?done=created');
    const row = portal.getEntity('contact', 1)!;
    expect(row.NAME).toBe('Пётр');
    expect(row.UF_CRM_SARAFAN_REF_CODE).toBe('ABC123');
    expect(row.UF_CRM_VIP).toBe('1');
    expect(String(row.UF_CRM_SINCE)).toMatch(/^2026-03-01/);
    expect(row.UF_CRM_SARAFAN_BALANCE).toBeNull(); // computed by the app: read-only in the card
    expect((row.PHONE as { VALUE: string }[])[0]?.VALUE).toBe('+7 900 000-00-00');
    expect(notes).toEqual([expect.objectContaining({ kind: 'add', entity: 'contact', id: 1, actor: { userId: 2 } })]);

    const card = await request(app).get('/crm/contact/details/1/');
    expect(card.status).toBe(200);
    expect(card.text).toContain('Сарафан: код пригласившего');
    expect(card.text).toMatch(/name="UF_CRM_SARAFAN_REF_CODE"[^>]*value="ABC123"/);
    expect(card.text).toMatch(/name="UF_CRM_VIP"[^>]*checked/);
    expect(card.text).toMatch(/type="date" [^>]*name="UF_CRM_SINCE"[^>]*value="2026-03-01"/);
    expect(card.text).toMatch(/name="UF_CRM_SARAFAN_BALANCE"[^>]*readonly/);
    expect(card.text).toContain('Сарафан: реферальный код'); // LABEL fallback
    expect(card.text).toContain('data-testid="save"');
  });

  it('saves only what changed, and a crm field as the portal stores it', async () => {
    const referrer = portal.addEntity('contact', { NAME: 'Ольга' }, { userId: 1 });
    const id = portal.addEntity('contact', { NAME: 'Сергей', PHONE: [{ VALUE: '+7 1', VALUE_TYPE: 'WORK' }] }, { userId: 1 });
    notes.length = 0;
    const card = await request(app).get(`/crm/contact/details/${id}/`);
    expect(card.text).toContain(`<option value="C_${referrer}">`);
    const res = await form(request(app).post(`/crm/contact/details/${id}/`), {
      NAME: 'Сергей',
      LAST_NAME: '',
      PHONE: '+7 2',
      EMAIL: '',
      UF_CRM_SARAFAN_REF_CODE: '',
      UF_CRM_SARAFAN_REFERRER: `C_${referrer}`,
      UF_CRM_SINCE: '',
    });
    expect(res.headers.location).toBe(`/crm/contact/details/${id}/?done=saved`);
    const row = portal.getEntity('contact', id)!;
    expect(row.UF_CRM_SARAFAN_REFERRER).toBe(`C_${referrer}`);
    expect(row.PHONE).toEqual([expect.objectContaining({ VALUE: '+7 2' })]);
    expect(notes).toHaveLength(1);
    const again = await form(request(app).post(`/crm/contact/details/${id}/`), {
      NAME: 'Сергей',
      PHONE: '+7 2',
      UF_CRM_SARAFAN_REFERRER: `C_${referrer}`,
    });
    expect(again.headers.location).toContain('done=unchanged');
    expect(notes).toHaveLength(1);
  });

  it('refuses bad input with the field named and changes nothing', async () => {
    const res = await form(request(app).post('/crm/deal/details/0/'), { TITLE: 'Кухня', OPPORTUNITY: 'много', CURRENCY_ID: 'RUB', CONTACT_ID: '', CATEGORY_ID: '0' });
    expect(res.status).toBe(400);
    expect(res.text).toContain('OPPORTUNITY');
    expect(res.text).toContain('Сумма');
    expect(res.text).toMatch(/name="TITLE"[^>]*value="Кухня"/); // the input is kept
    expect(portal.listEntities('deal', {}).total).toBe(0);

    const id = portal.addEntity('contact', { NAME: 'А' }, { userId: 1 });
    const bad = await form(request(app).post(`/crm/contact/details/${id}/`), { NAME: 'Б', UF_CRM_SINCE: '31.02.2026' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('UF_CRM_SINCE');
    expect(portal.getEntity('contact', id)!.NAME).toBe('А');
    const noName = await form(request(app).post('/crm/contact/details/0/'), { NAME: '', LAST_NAME: '' });
    expect(noName.status).toBe(400);
    expect(noName.text).toContain('NAME');
    expect(portal.listEntities('contact', {}).total).toBe(1);
  });

  it('creates a deal for a contact and moves it to WON from the stage bar', async () => {
    const contact = portal.addEntity('contact', { NAME: 'Наталья' }, { userId: 1 });
    const created = await form(request(app).post('/crm/deal/details/new/'), {
      TITLE: 'Детская',
      OPPORTUNITY: '120000,50',
      CURRENCY_ID: 'RUB',
      CONTACT_ID: String(contact),
      CATEGORY_ID: '0',
      UF_CRM_SARAFAN_REF_CODE: 'OLGA1',
    });
    expect(created.status).toBe(303);
    const dealId = Number(/details\/(\d+)\//.exec(created.headers.location ?? '')?.[1]);
    const deal = portal.getEntity('deal', dealId)!;
    expect(deal).toMatchObject({ TITLE: 'Детская', CONTACT_ID: String(contact), UF_CRM_SARAFAN_REF_CODE: 'OLGA1', STAGE_ID: 'NEW' });
    expect(Number(deal.OPPORTUNITY)).toBe(120000.5);

    const card = await request(app).get(`/crm/deal/details/${dealId}/`);
    for (const s of ['NEW', 'PREPARATION', 'WON', 'LOSE']) expect(card.text).toContain(`data-testid="stage-${s}"`);
    expect(card.text).toMatch(/class="stage current"[^>]*data-testid="stage-NEW"/);
    expect(card.text).toMatch(/class="stage success"[^>]*data-testid="stage-WON"/);
    expect(card.text).not.toContain('name="CATEGORY_ID"'); // funnel only on create

    notes.length = 0;
    const moved = await form(request(app).post(`/crm/deal/details/${dealId}/stage`).set('Cookie', asUser(2)), { stage: 'WON' });
    expect(moved.status).toBe(303);
    expect(portal.getEntity('deal', dealId)!.STAGE_ID).toBe('WON');
    expect(notes).toEqual([expect.objectContaining({ kind: 'update', entity: 'deal', id: dealId, enteredStage: 'WON', actor: { userId: 2 } })]);
    const after = await request(app).get(`/crm/deal/details/${dealId}/`);
    expect(after.text).toMatch(/class="stage success current"[^>]*data-testid="stage-WON"/);

    const wrong = await form(request(app).post(`/crm/deal/details/${dealId}/stage`), { stage: 'C1:WON' });
    expect(wrong.status).toBe(400);
    expect(portal.getEntity('deal', dealId)!.STAGE_ID).toBe('WON');
  });

  it('converts a lead into a contact and a deal, then opens the contact', async () => {
    const lead = portal.addEntity('lead', { TITLE: 'Заявка с сайта', NAME: 'Мария', OPPORTUNITY: 5000 }, { userId: 1 });
    const card = await request(app).get(`/crm/lead/details/${lead}/`);
    expect(card.text).toContain('data-testid="convert"');
    expect(card.text).toContain('data-testid="stage-CONVERTED"');
    const res = await request(app).post(`/crm/lead/details/${lead}/convert`);
    expect(res.status).toBe(303);
    const contactId = Number(/contact\/details\/(\d+)\//.exec(res.headers.location ?? '')?.[1]);
    expect(portal.getEntity('contact', contactId)!.NAME).toBe('Мария');
    expect(portal.getEntity('lead', lead)!.STATUS_ID).toBe('CONVERTED');
    expect(portal.listEntities('deal', { filter: { CONTACT_ID: contactId } }).total).toBe(1);
  });

  it('deletes from the card', async () => {
    const id = portal.addEntity('contact', { NAME: 'Удалить' }, { userId: 1 });
    const res = await request(app).post(`/crm/contact/details/${id}/delete`);
    expect(res.headers.location).toBe('/crm/contact/?done=deleted');
    expect(portal.getEntity('contact', id)).toBeNull();
  });

  it('renders the timeline', async () => {
    const id = portal.addEntity('contact', { NAME: 'Т' }, { userId: 1 });
    portal.addTimelineComment('contact', id, 'Начислено 500 бонусов <b>', 1);
    const card = await request(app).get(`/crm/contact/details/${id}/`);
    expect(card.text).toContain('Начислено 500 бонусов &lt;b&gt;');
  });
});

describe('app frames', () => {
  it('shows one tab per installed app placement, none for an uninstalled app', async () => {
    const id = portal.addEntity('contact', { NAME: 'Ольга' }, { userId: 1 });
    const card = await request(app).get(`/crm/contact/details/${id}/`);
    expect(card.text).toContain('data-testid="tab-main"');
    expect(card.text.match(/data-testid="tab-CRM_CONTACT_DETAIL_TAB"/g)).toHaveLength(1);
    expect(card.text).toContain(`data-client-id="${SARAFAN}">Сарафан</a>`);
    expect(card.text).not.toContain('Другое');
    expect(card.text).not.toContain('data-testid="app-frame"');
  });

  it('a tab frame: iframe name, form target and action, §1.3 fields, init data with working tokens', async () => {
    const id = portal.addEntity('deal', { TITLE: 'Шкаф' }, { userId: 1 });
    const res = await request(app).get(`/crm/deal/details/${id}/?tab=app0`).set('Cookie', asUser(2));
    expect(res.status).toBe(200);
    const name = attr(res.text, /<iframe class="app-frame" name="([^"]+)" data-testid="app-frame"/);
    const [domain, protocol, sid] = name.split('|');
    expect(domain).toBe(DOMAIN);
    expect(protocol).toBe('0');
    expect(sid).toMatch(/^[0-9a-f]{32}$/);
    const target = attr(res.text, /<form method="post" target="([^"]+)"/);
    expect(target).toBe(name);
    const action = new URL(attr(res.text, /action="([^"]+)" data-frame-form/).replace(/&amp;/g, '&'));
    expect(`${action.origin}${action.pathname}`).toBe(`http://127.0.0.1:5000/${SARAFAN}/tab`);
    expect(Object.fromEntries(action.searchParams)).toEqual({ DOMAIN, PROTOCOL: '0', LANG: 'ru', APP_SID: sid });

    const f = hiddenFields(res.text);
    expect(Object.keys(f).sort()).toEqual(
      ['AUTH_ID', 'AUTH_EXPIRES', 'REFRESH_ID', 'SERVER_ENDPOINT', 'APPLICATION_TOKEN', 'APPLICATION_SCOPE', 'member_id', 'status', 'PLACEMENT', 'PLACEMENT_OPTIONS'].sort(),
    );
    expect(f).toMatchObject({
      AUTH_EXPIRES: '3600',
      SERVER_ENDPOINT: `http://${DOMAIN}/rest/`,
      APPLICATION_TOKEN: portal.app(SARAFAN)!.applicationToken!,
      APPLICATION_SCOPE: 'crm,placement,bizproc,user_brief',
      member_id: 'member-1',
      status: 'L',
      PLACEMENT: 'CRM_DEAL_DETAIL_TAB',
      PLACEMENT_OPTIONS: `{"ID":"${id}"}`,
    });
    expect(portal.authenticate(f.AUTH_ID!)).toEqual({ clientId: SARAFAN, userId: 2 });

    const data = frameData(res.text);
    expect(data.sid).toBe(sid);
    expect(Object.keys(data.init).sort()).toEqual(
      ['DOMAIN', 'PROTOCOL', 'PATH', 'LANG', 'AUTH_ID', 'REFRESH_ID', 'AUTH_EXPIRES', 'MEMBER_ID', 'IS_ADMIN', 'APP_OPTIONS', 'USER_OPTIONS', 'PLACEMENT', 'PLACEMENT_OPTIONS', 'INSTALL', 'FIRST_RUN'].sort(),
    );
    expect(data.init).toMatchObject({
      DOMAIN,
      PROTOCOL: '0',
      PATH: '/rest',
      LANG: 'ru',
      AUTH_ID: f.AUTH_ID,
      REFRESH_ID: f.REFRESH_ID,
      AUTH_EXPIRES: '3600',
      MEMBER_ID: 'member-1',
      IS_ADMIN: false,
      PLACEMENT: 'CRM_DEAL_DETAIL_TAB',
      PLACEMENT_OPTIONS: { ID: String(id) },
      INSTALL: false,
      FIRST_RUN: false,
    });
    expect(res.text).toContain('<script src="/_sandbox/static/frame-host.js"></script>');
  });

  it('the install wizard: DEFAULT placement, INSTALL true, admins only; installFinish calls the hook', async () => {
    const page = await request(app).get(`/marketplace/app/${OTHER}/install/`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-testid="install-status"');
    const f = hiddenFields(page.text);
    expect(f.PLACEMENT).toBe('DEFAULT');
    expect(f.PLACEMENT_OPTIONS).toBeUndefined();
    expect(f.APPLICATION_TOKEN).toBeUndefined(); // not installed yet: no application token
    expect(page.text).toContain('action="http://127.0.0.1:5000/other/install?x=1&amp;DOMAIN=');
    const data = frameData(page.text);
    expect(data.init).toMatchObject({ PLACEMENT: 'DEFAULT', PLACEMENT_OPTIONS: {}, INSTALL: true, IS_ADMIN: true });

    const refused = await request(app).get(`/marketplace/app/${OTHER}/install/`).set('Cookie', asUser(2));
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('только администратор');
    expect(refused.text).not.toContain('data-testid="app-frame"');

    const denied = await request(app).post('/_sandbox/frame/install-finish').set('Cookie', asUser(2)).send({ clientId: OTHER });
    expect(denied.status).toBe(403);
    expect(hookCalls.installFinished).toEqual([]);
    const ok = await request(app).post('/_sandbox/frame/install-finish').send({ clientId: OTHER });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ ok: true, installed: true });
    expect(hookCalls.installFinished).toEqual([OTHER]);

    const main = await request(app).get(`/marketplace/app/${OTHER}/`);
    expect(main.status).toBe(200);
    expect(frameData(main.text).init).toMatchObject({ PLACEMENT: 'DEFAULT', INSTALL: false });
    expect(main.text).toContain('action="http://127.0.0.1:5000/other/app?DOMAIN=');
  });

  it('a main page of an app not installed sends admins to the wizard and tells others why', async () => {
    const admin = await request(app).get(`/marketplace/app/${OTHER}/`);
    expect(admin.status).toBe(303);
    expect(admin.headers.location).toBe(`/marketplace/app/${OTHER}/install/`);
    const user = await request(app).get(`/marketplace/app/${OTHER}/`).set('Cookie', asUser(2));
    expect(user.status).toBe(403);
    expect(user.text).toContain('установлено не полностью');
  });

  it('/_sandbox/frame/auth issues a working token pair for the cookie user', async () => {
    const res = await request(app).post('/_sandbox/frame/auth').set('Cookie', asUser(2)).send({ clientId: SARAFAN });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ AUTH_ID: expect.any(String), REFRESH_ID: expect.any(String), AUTH_EXPIRES: '3600' });
    expect(portal.authenticate(res.body.AUTH_ID)).toEqual({ clientId: SARAFAN, userId: 2 });
    const refreshed = portal.refresh(SARAFAN, `${SARAFAN}-secret`, res.body.REFRESH_ID);
    expect(refreshed.userId).toBe(2);
    expect((await request(app).post('/_sandbox/frame/auth').send({ clientId: 'nope' })).status).toBe(404);
  });

  it('setAppOption lands in the portal and in the next init data', async () => {
    const res = await request(app).post('/_sandbox/frame/option').send({ clientId: SARAFAN, scope: 'app', name: 'mode', value: 'demo' });
    expect(res.status).toBe(200);
    expect(portal.appOptions(SARAFAN)).toMatchObject({ mode: 'demo' });
    const main = await request(app).get(`/marketplace/app/${SARAFAN}/`);
    expect(frameData(main.text).init.APP_OPTIONS).toMatchObject({ mode: 'demo' });
  });

  it('uninstalls from the Applications page (admins only)', async () => {
    const list = await request(app).get('/marketplace/');
    expect(list.text).toContain(`data-testid="app-${SARAFAN}"`);
    expect(list.text).toContain('Удалить данные приложения');
    const denied = await form(request(app).post(`/marketplace/app/${SARAFAN}/uninstall`).set('Cookie', asUser(2)), { clean: '1' });
    expect(denied.status).toBe(400);
    expect(hookCalls.uninstall).toEqual([]);
    const res = await form(request(app).post(`/marketplace/app/${SARAFAN}/uninstall`), { clean: '1' });
    expect(res.status).toBe(303);
    expect(hookCalls.uninstall).toEqual([[SARAFAN, true]]);
    const id = portal.addEntity('contact', { NAME: 'X' }, { userId: 1 });
    const card = await request(app).get(`/crm/contact/details/${id}/`);
    expect(card.text).not.toContain('data-testid="tab-CRM_CONTACT_DETAIL_TAB"');
  });

  it('the frame host answers getInitData, params with ":" and unknown commands, only for its frames', async () => {
    const id = portal.addEntity('deal', { TITLE: 'Шкаф' }, { userId: 1 });
    const res = await request(app).get(`/crm/deal/details/${id}/?tab=app0`);
    const data = frameData(res.text);
    const script = (await request(app).get('/_sandbox/static/frame-host.js')).text;
    const posted: [string, string][] = [];
    const frameWindow = { postMessage: (msg: string, origin: string) => posted.push([msg, origin]) };
    let listener: ((e: unknown) => void) | null = null;
    const iframe = { contentWindow: frameWindow, style: {} as Record<string, string> };
    // The layout box resizeWindow sizes; its rendered size follows the style, as a browser's would.
    const layout = {
      style: {} as Record<string, string>,
      get offsetHeight() {
        return Number.parseInt(this.style.height ?? '0', 10);
      },
      get offsetWidth() {
        return 980;
      },
    };
    const attrs: Record<string, string> = {};
    const wrap = {
      querySelector: (q: string) => (q === 'iframe' ? iframe : q === '.app-frame-layout' ? layout : null),
      setAttribute: (k: string, v: string) => (attrs[k] = v),
    };
    const dataNode = { textContent: JSON.stringify(data), closest: () => wrap };
    const sandbox = {
      window: {
        addEventListener: (type: string, fn: (e: unknown) => void) => {
          if (type === 'message') listener = fn;
        },
        location: { origin: `http://${DOMAIN}` },
      },
      document: {
        readyState: 'complete',
        title: '',
        addEventListener: () => undefined,
        getElementById: () => null,
        querySelector: () => null,
        querySelectorAll: (q: string) => (q === 'script.sandbox-frame-data' ? [dataNode] : []),
      },
      console,
      URL,
      fetch: () => Promise.reject(new Error('no network in this test')),
    };
    vm.runInNewContext(script, sandbox);
    expect(listener).not.toBeNull();
    const send = async (msg: string, source: unknown = frameWindow) => {
      listener!({ data: msg, source, origin: 'http://127.0.0.1:5000' });
      await new Promise((r) => setTimeout(r, 0));
    };
    await send(`getInitData:k1:${data.sid}`);
    expect(posted).toHaveLength(1);
    expect(posted[0]![1]).toBe('http://127.0.0.1:5000');
    expect(posted[0]![0].startsWith('k1:')).toBe(true);
    expect(JSON.parse(posted[0]![0].slice(3))).toEqual(data.init);
    // Bitrix24's answer to resizeWindow: the layout's rendered size (applayout.js).
    await send(`resizeWindow:{"width":"100%","height":812}:k2:${data.sid}`);
    expect(posted[1]![0]).toBe('k2:{"width":980,"height":812}');
    expect(layout.style).toEqual({ width: '100%', height: '812px' });
    expect(attrs['data-frame-height']).toBe('812');
    await send(`resizeWindow:{"width":"100%","height":90000}:k3:${data.sid}`);
    expect(posted[2]![0]).toBe('k3:{"width":980,"height":5000}');
    // Placements may not set the page title: Bitrix24 ignores it without an answer.
    await send(`setTitle:{"title":"a:b:c"}:k4:${data.sid}`);
    expect(posted).toHaveLength(3);
    await send(`showAppForm:{"x":"a:b"}:k5:${data.sid}`);
    expect(JSON.parse(posted[3]![0].slice(3))).toMatchObject({ error: 'UNKNOWN_COMMAND' });
    await send(`openPath:{"path":"/etc/passwd/"}:k6:${data.sid}`);
    expect(posted[4]![0]).toBe('k6:{"result":"error","errorCode":"PATH_NOT_AVAILABLE"}');
    await send(`getInitData:k7:not-our-sid`);
    await send(`getInitData:k8:${data.sid}`, { postMessage: () => posted.push(['foreign', '']) });
    listener!({ data: `getInitData:k9:${data.sid}`, source: frameWindow, origin: 'http://127.0.0.1:5001' });
    expect(posted).toHaveLength(5);
  });
});

describe('automation', () => {
  beforeEach(() => {
    const robot = {
      handler: 'http://127.0.0.1:5000/robot',
      authUserId: 1,
      useSubscription: true,
      description: '',
      returnProperties: {},
    };
    portal.addRobot({
      ...robot,
      clientId: SARAFAN,
      code: 'sarafan_bonus',
      name: 'Сарафан: начислить бонус',
      properties: {
        amount: { Name: 'Сумма', Type: 'string', Required: 'Y' },
        mode: { Name: 'Режим', Type: 'select', Options: { accrue: 'Начислить', redeem: 'Списать' }, Default: 'accrue' },
      },
      documentType: ['crm', 'CCrmDocumentDeal', 'DEAL'],
    });
    portal.addRobot({ ...robot, clientId: OTHER, code: 'other_robot', name: 'Чужой робот', properties: {}, documentType: ['crm', 'CCrmDocumentDeal', 'DEAL'] });
    portal.addRobot({ ...robot, clientId: SARAFAN, code: 'lead_only', name: 'Только лиды', properties: {}, documentType: ['crm', 'CCrmDocumentLead', 'LEAD'] });
  });

  it('shows a column per stage and only robots of installed apps for the document type', async () => {
    const res = await request(app).get('/automation/deal/');
    expect(res.status).toBe(200);
    for (const s of ['NEW', 'WON', 'LOSE']) expect(res.text).toContain(`data-testid="column-${s}"`);
    expect(res.text).toContain('data-testid="add-robot-WON-sarafan_bonus"');
    expect(res.text).not.toContain('other_robot');
    expect(res.text).not.toContain('lead_only');
    expect(res.text).toContain('<option value="accrue" selected>Начислить</option>');
    const funnel = await request(app).get('/automation/deal/?category=1');
    expect(funnel.text).toContain('data-testid="column-C1:WON"');
    const lead = await request(app).get('/automation/lead/');
    expect(lead.text).toContain('data-testid="add-robot-CONVERTED-lead_only"');
  });

  it('adds a robot to a stage with its properties and removes it', async () => {
    const missing = await form(request(app).post('/automation/deal/robots'), { clientId: SARAFAN, code: 'sarafan_bonus', stageId: 'WON', category: '0', prop_amount: '', prop_mode: 'accrue' });
    expect(missing.status).toBe(400);
    expect(missing.text).toContain('amount');
    expect(portal.stageRobots()).toEqual([]);

    const res = await form(request(app).post('/automation/deal/robots'), {
      clientId: SARAFAN,
      code: 'sarafan_bonus',
      stageId: 'WON',
      category: '0',
      prop_amount: '{=Document:OPPORTUNITY}',
      prop_mode: 'accrue',
    });
    expect(res.status).toBe(303);
    expect(portal.stageRobots()).toEqual([
      expect.objectContaining({ clientId: SARAFAN, code: 'sarafan_bonus', documentType: 'DEAL', stageId: 'WON', properties: { amount: '{=Document:OPPORTUNITY}', mode: 'accrue' } }),
    ]);
    const robotId = portal.stageRobots()[0]!.id;
    const page = await request(app).get('/automation/deal/');
    expect(page.text).toContain(`data-testid="stage-robot-${robotId}"`);
    expect(page.text).toContain('amount: {=Document:OPPORTUNITY}');

    const removed = await request(app).post(`/automation/deal/robots/${robotId}/delete`);
    expect(removed.status).toBe(303);
    expect(portal.stageRobots()).toEqual([]);
  });

  it('lists the apps’ robots with their properties and return values', async () => {
    portal.addRobot({
      handler: 'http://127.0.0.1:5000/robot',
      authUserId: 1,
      useSubscription: true,
      description: '',
      clientId: SARAFAN,
      code: 'sarafan_status',
      name: 'Сарафан: статус',
      properties: {},
      returnProperties: { balance: { Name: 'Баланс', Type: 'double' } },
      documentType: ['crm', 'CCrmDocumentDeal', 'DEAL'],
    });
    const res = await request(app).get('/automation/deal/');
    expect(res.text).toContain('data-testid="robot-catalogue"');
    expect(res.text).toContain('data-testid="robot-sarafan_status"');
    expect(res.text).toContain('balance <span class="muted">(double)</span> — Баланс');
    expect(res.text).toContain('amount <span class="muted">(string, обязательное)</span> — Сумма');
    expect(res.text).not.toContain('data-testid="robot-other_robot"');
  });

  it('chains robots on a stage: a later one uses an earlier one’s return values in its properties and condition', async () => {
    portal.addRobot({
      handler: 'http://127.0.0.1:5000/robot',
      authUserId: 1,
      useSubscription: true,
      description: '',
      clientId: SARAFAN,
      code: 'sarafan_status',
      name: 'Сарафан: статус',
      properties: {},
      returnProperties: { balance: { Name: 'Баланс', Type: 'double' } },
      documentType: ['crm', 'CCrmDocumentDeal', 'DEAL'],
    });
    const base = { clientId: SARAFAN, code: 'sarafan_bonus', stageId: 'PREPARATION', category: '0', prop_mode: 'redeem' };
    // Nothing on the stage yet: A1 does not exist, so neither a property nor a condition can name it.
    const early = await form(request(app).post('/automation/deal/robots'), { ...base, prop_amount: '{=A1:balance}' });
    expect(early.status).toBe(400);
    expect(early.text).toContain('Поле «Сумма» (amount): {=A1:balance} — на этой стадии нет робота A1 перед этим');

    expect((await form(request(app).post('/automation/deal/robots'), { clientId: SARAFAN, code: 'sarafan_status', stageId: 'PREPARATION', category: '0' })).status).toBe(303);
    const status = portal.stageRobots()[0]!;
    const a = `A${status.id}`;
    const page = await request(app).get('/automation/deal/');
    expect(page.text).toContain(`data-testid="refs-PREPARATION"`);
    expect(page.text).toContain(`<option value="{=${a}:balance}">${a} Сарафан: статус: Баланс</option>`);

    const unknownKey = await form(request(app).post('/automation/deal/robots'), { ...base, prop_amount: `{=${a}:tier}` });
    expect(unknownKey.status).toBe(400);
    expect(unknownKey.text).toContain(`робот ${a} не возвращает «tier»`);
    const noOperator = await form(request(app).post('/automation/deal/robots'), { ...base, prop_amount: '10', cond_operand: `{=${a}:balance}`, cond_value: '1000' });
    expect(noOperator.status).toBe(400);
    expect(noOperator.text).toContain('Условие (cond_operator): выберите оператор');
    const badOperator = await form(request(app).post('/automation/deal/robots'), { ...base, prop_amount: '10', cond_operand: `{=${a}:balance}`, cond_operator: '=>', cond_value: '1000' });
    expect(badOperator.status).toBe(400);
    expect(badOperator.text).toContain('Условие (cond_operator): нет оператора «=&gt;»');
    const noOperand = await form(request(app).post('/automation/deal/robots'), { ...base, prop_amount: '10', cond_operator: '>', cond_value: '1000' });
    expect(noOperand.status).toBe(400);
    expect(noOperand.text).toContain('Условие (cond_operand)');
    expect(portal.stageRobots()).toHaveLength(1);

    const ok = await form(request(app).post('/automation/deal/robots'), { ...base, prop_amount: `{=${a}:balance}`, cond_operand: `{=${a}:balance}`, cond_operator: '>', cond_value: '1000' });
    expect(ok.status).toBe(303);
    const redeem = portal.stageRobots()[1]!;
    expect(redeem).toMatchObject({ stageId: 'PREPARATION', properties: { amount: `{=${a}:balance}`, mode: 'redeem' }, condition: { operand: `{=${a}:balance}`, operator: '>', value: '1000' } });
    const after = await request(app).get('/automation/deal/');
    expect(after.text).toContain(`data-testid="stage-robot-condition-${redeem.id}">Условие: {=${a}:balance} &gt; 1000</div>`);
  });

  it('shows a skipped run as skipped, with why', async () => {
    const deal = portal.addEntity('deal', { TITLE: 'Д' }, { userId: 1 });
    const run = portal.startRobotRun({ clientId: SARAFAN, code: 'sarafan_bonus', document: { entity: 'deal', id: deal }, subscribe: true, skipped: 'Условие не выполнено: 5 > 1000 — робот пропущен' });
    expect(run.status).toBe('skipped');
    const res = await request(app).get('/automation/deal/');
    expect(res.text).toContain(`data-testid="run-status-${run.id}">пропущен</span>`);
    expect(res.text).toContain('Условие не выполнено: 5 &gt; 1000 — робот пропущен');
  });

  it('lists robot runs with status, return values and log', async () => {
    const deal = portal.addEntity('deal', { TITLE: 'Д' }, { userId: 1 });
    const run = portal.startRobotRun({ clientId: SARAFAN, code: 'sarafan_bonus', document: { entity: 'deal', id: deal }, subscribe: true });
    portal.finishRobotRun(run.eventToken, { credited: '500' }, 'Начислено <500>');
    const res = await request(app).get('/automation/deal/');
    expect(res.text).toContain(`data-testid="run-${run.id}"`);
    expect(res.text).toContain('выполнен');
    expect(res.text).toContain('&quot;credited&quot;: &quot;500&quot;');
    expect(res.text).toContain('Начислено &lt;500&gt;');
  });
});

describe('escaping', () => {
  it('a contact named <script> renders escaped in the list, the card and the deal form', async () => {
    const id = portal.addEntity('contact', { NAME: '<script>alert(1)</script>', LAST_NAME: '"x\' &' }, { userId: 1 });
    for (const path of ['/crm/contact/', `/crm/contact/details/${id}/`, '/crm/deal/details/0/']) {
      const res = await request(app).get(path);
      expect(res.status).toBe(200);
      expect(res.text).not.toContain('<script>alert(1)</script>');
      expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    }
    const card = await request(app).get(`/crm/contact/details/${id}/`);
    expect(card.text).toContain('value="&quot;x&#39; &amp;"');
  });

  it('JSON inside <script> cannot close the element', () => {
    const out = jsonForScript({ a: '</script><!-- & \u2028' });
    expect(out).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(out)).toEqual({ a: '</script><!-- & \u2028' });
  });

  it('a placement title with markup is escaped in the tab and the frame data', async () => {
    portal.bindPlacement({ clientId: SARAFAN, placement: 'CRM_LEAD_DETAIL_TAB', handler: 'http://127.0.0.1:5000/x', title: '</script><b>', description: '', langAll: {}, userId: 0 });
    const id = portal.addEntity('lead', { TITLE: 'L' }, { userId: 1 });
    const res = await request(app).get(`/crm/lead/details/${id}/?tab=app0`);
    expect(res.text).toContain('&lt;/script&gt;&lt;b&gt;');
    expect(res.text).not.toContain('</script><b>');
  });
});
