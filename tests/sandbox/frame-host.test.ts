/**
 * The server side of the sandbox's frame host: what a CRM card's app tab is framed in (Bitrix24's
 * `allow` list, the initial height, the card-tab width box), pages shown in a slider
 * (`IFRAME=Y`), what the CRM selector lists and answers, app options, openApplication's popup page,
 * and REST calls made with the token a frame gets from getInitData — reads of contacts and leads
 * and a deal update that comes back to the app as ONCRMDEALUPDATE, like any change.
 * The browser half (frame-host.js with the real b24jssdk) is tests/e2e/frame-host.e2e.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import qs from 'qs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../sandbox/server.js';
import type { Row } from '../../sandbox/types.js';
import { BITRIX24_FRAME_ALLOW, INITIAL_FRAME_HEIGHT } from '../../sandbox/web/apps.js';

const CLIENT_ID = 'local.framehost.test';
const CLIENT_SECRET = 'framehost-secret';
const MANAGER = 'sandbox_user=2';

let app: Server;
let appUrl: string;
let sandbox: Sandbox;
let delegating: Sandbox;
const events: Row[] = [];

function appSpec(url: string) {
  return {
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    code: 'framehost',
    title: 'Frame host test',
    version: '1',
    scope: 'crm,placement',
    handlerUrl: `${url}/app`,
    installUrl: `${url}/install`,
  };
}

async function installed(s: Sandbox): Promise<void> {
  const res = await fetch(`${s.url}/_sandbox/control/apps/${CLIENT_ID}/install`, { method: 'POST' });
  expect(res.status).toBe(200);
  for (const placement of ['CRM_DEAL_DETAIL_TAB', 'CRM_CONTACT_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB']) {
    await rest(s, s.portal.issueTokens(CLIENT_ID, 1).accessToken, 'placement.bind', { PLACEMENT: placement, HANDLER: `${appUrl}/tab`, TITLE: 'Тест' });
  }
}

async function rest(s: Sandbox, auth: string, method: string, params: Row = {}): Promise<Row> {
  const res = await fetch(`${s.url}/rest/${method}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ auth, ...params }) });
  const body = (await res.json()) as Row;
  if (res.status !== 200) throw new Error(`${method}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function page(s: Sandbox, path: string, cookie = MANAGER): Promise<{ status: number; text: string; location: string | null }> {
  const res = await fetch(`${s.url}${path}`, { headers: { Cookie: cookie }, redirect: 'manual' });
  return { status: res.status, text: await res.text(), location: res.headers.get('location') };
}

function frameData(html: string): { sid: string; appOrigin: string; popup: boolean; init: Row } {
  const m = /<script type="application\/json" class="sandbox-frame-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no frame data on the page');
  return JSON.parse(m[1]!) as { sid: string; appOrigin: string; popup: boolean; init: Row };
}

async function postJson(s: Sandbox, path: string, body: Row, cookie = MANAGER): Promise<{ status: number; body: Row }> {
  const res = await fetch(`${s.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Row };
}

beforeAll(async () => {
  app = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      if (req.url?.startsWith('/events')) events.push(qs.parse(raw, { depth: 10 }) as Row);
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<p>ok</p>');
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  sandbox = await startSandbox({ port: 0, dataDir: null, limits: false, apps: [appSpec(appUrl)] });
  delegating = await startSandbox({ port: 0, dataDir: null, limits: false, apps: [appSpec(appUrl)], web: { clipboardDelegation: true } });
  await installed(sandbox);
  await installed(delegating);
});

afterAll(async () => {
  await sandbox?.close();
  await delegating?.close();
  app.closeAllConnections();
  await new Promise<void>((r) => app.close(() => r()));
});

describe('the frame of a CRM card tab', () => {
  it('is framed as Bitrix24 frames apps: its allow list, an initial height, the card-tab width box', async () => {
    const id = sandbox.portal.addEntity('contact', { NAME: 'Ольга', LAST_NAME: 'Смирнова' }, { userId: 1 });
    const res = await page(sandbox, `/crm/contact/details/${id}/?tab=app0`);
    expect(res.status).toBe(200);
    expect(res.text).toContain(`allow="${BITRIX24_FRAME_ALLOW}"`);
    expect(BITRIX24_FRAME_ALLOW).not.toContain('clipboard');
    expect(res.text).toMatch(new RegExp(`data-testid="app-frame-wrap" data-frame-height="${INITIAL_FRAME_HEIGHT}"`));
    expect(res.text).toContain(`<div class="app-frame-layout" style="height:${INITIAL_FRAME_HEIGHT}px">`);
    expect(res.text).toContain('<div class="tab-area" data-testid="tab-area">');
    const data = frameData(res.text);
    expect(data.appOrigin).toBe(appUrl);
    expect(data.init).toMatchObject({ PLACEMENT: 'CRM_CONTACT_DETAIL_TAB', PLACEMENT_OPTIONS: { ID: String(id) }, IS_ADMIN: false });
  });

  it('delegates the clipboard when the portal is set up to', async () => {
    const id = delegating.portal.addEntity('deal', { TITLE: 'Шкаф' }, { userId: 1 });
    const res = await page(delegating, `/crm/deal/details/${id}/?tab=app0`);
    expect(res.text).toContain(`allow="${BITRIX24_FRAME_ALLOW} clipboard-read *; clipboard-write *;"`);
  });

  it('a page opened in a slider (IFRAME=Y) comes without the portal chrome; old card URLs redirect', async () => {
    const id = sandbox.portal.addEntity('lead', { TITLE: 'Заявка с сайта' }, { userId: 1 });
    const full = await page(sandbox, `/crm/lead/details/${id}/`);
    expect(full.text).toContain('data-testid="menu-deal"');
    const bare = await page(sandbox, `/crm/lead/details/${id}/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER&from=rest_placement&from_app=framehost`);
    expect(bare.status).toBe(200);
    expect(bare.text).not.toContain('data-testid="menu-deal"');
    expect(bare.text).not.toContain('data-testid="sandbox-banner"');
    expect(bare.text).toContain('Заявка с сайта');
    const old = await page(sandbox, `/crm/lead/show/${id}/?IFRAME=Y`);
    expect(old.status).toBe(301);
    expect(old.location).toBe(`/crm/lead/details/${id}/?IFRAME=Y`);
  });

  it('the app main page is full width; opened by openApplication it is a popup with PLACEMENT_OPTIONS', async () => {
    const main = await page(sandbox, `/marketplace/app/${CLIENT_ID}/`);
    expect(main.text).toContain('class="content content-wide"');
    expect(frameData(main.text).popup).toBe(false);
    const opts = encodeURIComponent(JSON.stringify({ contact: '5', n: 2 }));
    const popup = await page(sandbox, `/marketplace/app/${CLIENT_ID}/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER&PLACEMENT_OPTIONS=${opts}`);
    const data = frameData(popup.text);
    expect(data.popup).toBe(true);
    expect(data.init).toMatchObject({ PLACEMENT: 'DEFAULT', PLACEMENT_OPTIONS: { contact: '5', n: '2' } });
    expect(popup.text).not.toContain('data-testid="menu-deal"');
  });
});

describe('the CRM selector', () => {
  it('lists the requested types in Bitrix24’s answer shape, newest first, with no unrequested types', async () => {
    const olga = sandbox.portal.addEntity('contact', { NAME: 'Ольга', LAST_NAME: 'Смирнова' }, { userId: 1 });
    const lead = sandbox.portal.addEntity('lead', { TITLE: 'Кухня на заказ', NAME: 'Пётр', LAST_NAME: 'Ильин' }, { userId: 1 });
    const res = await postJson(sandbox, '/_sandbox/frame/crm-entities', { clientId: CLIENT_ID, entityType: ['contact', 'lead'] });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['lead', 'contact']);
    const contacts = res.body.contact as Row[];
    const leads = res.body.lead as Row[];
    expect(contacts[0]).toEqual({ id: `C_${olga}`, type: 'contact', place: 'contact', title: 'Ольга Смирнова', desc: '', url: `/crm/contact/details/${olga}/` });
    expect(leads[0]).toEqual({ id: `L_${lead}`, type: 'lead', place: 'lead', title: 'Кухня на заказ', desc: 'Пётр Ильин', url: `/crm/lead/details/${lead}/` });
    const ids = contacts.map((c) => Number(String(c.id).slice(2)));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));

    const all = await postJson(sandbox, '/_sandbox/frame/crm-entities', { clientId: CLIENT_ID });
    expect(Object.keys(all.body)).toEqual(['lead', 'contact', 'company', 'deal', 'quote']);
    expect(all.body.company).toEqual([]);
    expect((await postJson(sandbox, '/_sandbox/frame/crm-entities', { clientId: 'local.nobody' })).status).toBe(404);
  });
});

describe('app and user options from a frame', () => {
  it('only an administrator sets app options; anyone sets their own', async () => {
    const denied = await postJson(sandbox, '/_sandbox/frame/option', { clientId: CLIENT_ID, scope: 'app', name: 'mode', value: 'x' });
    expect(denied.status).toBe(403);
    expect(sandbox.portal.appOptions(CLIENT_ID)).not.toHaveProperty('mode');
    expect((await postJson(sandbox, '/_sandbox/frame/option', { clientId: CLIENT_ID, scope: 'user', name: 'view', value: 'tree' })).status).toBe(200);
    expect((await postJson(sandbox, '/_sandbox/frame/option', { clientId: CLIENT_ID, scope: 'app', name: 'mode', value: 'live' }, 'sandbox_user=1')).status).toBe(200);
    expect(sandbox.portal.appOptions(CLIENT_ID)).toMatchObject({ mode: 'live' });
  });
});

describe('REST with the token a frame gets from getInitData', () => {
  it('reads contacts and leads by id and updates a deal, which comes back to the app as ONCRMDEALUPDATE', async () => {
    const admin = sandbox.portal.issueTokens(CLIENT_ID, 1).accessToken;
    for (const name of ['SARAFAN_REF_CODE', 'SARAFAN_REFERRER']) {
      await rest(sandbox, admin, 'crm.deal.userfield.add', { fields: { FIELD_NAME: name, USER_TYPE_ID: 'string' } });
    }
    await rest(sandbox, admin, 'event.bind', { event: 'ONCRMDEALUPDATE', handler: `${appUrl}/events` });
    const olga = sandbox.portal.addEntity('contact', { NAME: 'Ольга', LAST_NAME: 'Смирнова' }, { userId: 1 });
    const ivan = sandbox.portal.addEntity('contact', { NAME: 'Иван', LAST_NAME: 'Петров' }, { userId: 1 });
    const lead = sandbox.portal.addEntity('lead', { TITLE: 'Кухня', NAME: 'Пётр' }, { userId: 1 });
    const deal = sandbox.portal.addEntity('deal', { TITLE: 'Прихожая', CONTACT_ID: ivan }, { userId: 1 });

    // The manager opens the deal's tab: the frame's token is the one getInitData answers with.
    const tab = frameData((await page(sandbox, `/crm/deal/details/${deal}/?tab=app0`)).text);
    const token = String(tab.init.AUTH_ID);
    expect(sandbox.portal.authenticate(token)).toEqual({ clientId: CLIENT_ID, userId: 2 });

    const contacts = await rest(sandbox, token, 'crm.contact.list', { filter: { ID: [olga, ivan] }, select: ['ID', 'NAME', 'LAST_NAME'] });
    expect((contacts.result as Row[]).map((r) => [r.ID, r.NAME, r.LAST_NAME])).toEqual([
      [String(olga), 'Ольга', 'Смирнова'],
      [String(ivan), 'Иван', 'Петров'],
    ]);
    expect(Object.keys((contacts.result as Row[])[0]!).sort()).toEqual(['ID', 'LAST_NAME', 'NAME']);
    const leads = await rest(sandbox, token, 'crm.lead.list', { filter: { ID: [lead] }, select: ['ID', 'TITLE', 'NAME', 'LAST_NAME'] });
    expect(leads.result).toEqual([{ ID: String(lead), TITLE: 'Кухня', NAME: 'Пётр', LAST_NAME: null }]);

    events.length = 0;
    const updated = await rest(sandbox, token, 'crm.deal.update', { id: deal, fields: { UF_CRM_SARAFAN_REF_CODE: '', UF_CRM_SARAFAN_REFERRER: `C_${olga}` } });
    expect(updated.result).toBe(true);
    expect(sandbox.portal.getEntity('deal', deal)).toMatchObject({ UF_CRM_SARAFAN_REFERRER: `C_${olga}` });
    await sandbox.outbound.idle();
    const update = events.find((e) => e.event === 'ONCRMDEALUPDATE');
    expect(update).toMatchObject({ data: { FIELDS: { ID: String(deal) } }, auth: { user_id: '2', member_id: sandbox.portal.memberId } });
  });
});
