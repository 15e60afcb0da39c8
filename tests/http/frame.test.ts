/**
 * GET/POST /b24/frame through createApp: the page Bitrix24 frames for the main page and the CRM
 * card tabs. The request is verified against the stored installation (known and active portal,
 * DOMAIN, APPLICATION_TOKEN) before anything is rendered; the page is frameable, loads the frame
 * SDK and carries no token. Its inline script is then run against a stand-in DOM and frame SDK,
 * with fetch served by the app, to check what each placement renders.
 */
import vm from 'node:vm';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent, form, installRequest, onAppUninstall } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';
import { FORM, enrolledReferrer, referredWin, sendEvent } from '../support/scenario.js';

let h: Harness;
const ADMIN = 'user-token-frame-admin-0001';
const MANAGER = 'user-token-frame-manager-0002';
const FRAME_REFRESH = 'frame-refresh-token-never-shown';

let referrer: { contact: number; code: string };
let client: { contact: number; deal: number };
let lead: number;

type Placement = 'CRM_DEAL_DETAIL_TAB' | 'CRM_CONTACT_DETAIL_TAB' | 'CRM_LEAD_DETAIL_TAB' | 'DEFAULT';

function frameQuery(over: Record<string, string> = {}): string {
  return new URLSearchParams({ DOMAIN: h.portal.domain, PROTOCOL: '1', LANG: 'en', APP_SID: '5f1c0e9a7b', ...over }).toString();
}

function frameForm(placement: Placement, id: number | null, over: Record<string, unknown> = {}): string {
  return form({
    AUTH_ID: MANAGER,
    AUTH_EXPIRES: '3600',
    REFRESH_ID: FRAME_REFRESH,
    SERVER_ENDPOINT: 'https://oauth.bitrix.info/rest/',
    member_id: h.portal.memberId,
    APPLICATION_TOKEN: h.portal.applicationToken,
    status: 'F',
    PLACEMENT: placement,
    PLACEMENT_OPTIONS: id === null ? '' : JSON.stringify({ ID: String(id), URI: `/crm/x/details/${id}/?IFRAME=Y&IFRAME_TYPE=SIDE_SLIDER` }),
    ...over,
  });
}

function postFrame(body: string, query = frameQuery()) {
  return request(h.app).post(`/b24/frame?${query}`).set('Content-Type', FORM).send(body);
}

const SECRETS = () => [MANAGER, FRAME_REFRESH, h.portal.applicationToken, h.portal.accessToken, h.portal.refreshToken];

beforeAll(async () => {
  h = await createHarness();
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  const portalId = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  referrer = await enrolledReferrer(h, portalId, 'Анна');
  client = await referredWin(h, referrer.code, 100000, 'Борис');
  lead = h.portal.add('lead', { TITLE: 'Заявка' });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMLEADADD', lead));
  await h.worker.drain();
});

afterAll(async () => {
  await h.close();
});

describe('the frame page', () => {
  const cases: [Placement, () => number | null][] = [
    ['CRM_DEAL_DETAIL_TAB', () => client.deal],
    ['CRM_CONTACT_DETAIL_TAB', () => referrer.contact],
    ['CRM_LEAD_DETAIL_TAB', () => lead],
    ['DEFAULT', () => null],
  ];

  it.each(cases)('%s: 200 HTML, frameable, loads the SDK, carries no token and calls no portal', async (placement, id) => {
    h.portal.resetCalls();
    const res = await postFrame(frameForm(placement, id()));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['x-frame-options']).toBeUndefined();
    expect(res.headers['content-security-policy'] ?? '').not.toMatch(/frame-ancestors/);
    expect(res.text).toContain(`<script src="${APP_BASE_URL}/static/b24jssdk.js"></script>`);
    expect(res.text).toContain('id="sdk-status"');
    expect(res.text).toContain('initializeB24Frame');
    for (const secret of SECRETS()) expect(res.text).not.toContain(secret);
    expect(h.portal.calls).toEqual([]);
  });

  it('speaks Russian for LANG=ru and English otherwise', async () => {
    const ru = await postFrame(frameForm('DEFAULT', null), frameQuery({ LANG: 'ru' }));
    expect(ru.text).toContain('<html lang="ru">');
    expect(ru.text).toContain('Подключаемся к Битрикс24');
    const en = await postFrame(frameForm('DEFAULT', null), frameQuery({ LANG: 'de' }));
    expect(en.text).toContain('Connecting to Bitrix24');
  });

  it('answers GET with the fields in the query, and accepts a form without the optional DOMAIN and APPLICATION_TOKEN', async () => {
    const get = await request(h.app).get(`/b24/frame?${frameQuery({ member_id: h.portal.memberId, PLACEMENT: 'DEFAULT' })}`);
    expect(get.status).toBe(200);
    expect(get.text).toContain('/static/b24jssdk.js');
    const bare = await request(h.app)
      .post('/b24/frame')
      .set('Content-Type', FORM)
      .send(form({ AUTH_ID: MANAGER, REFRESH_ID: FRAME_REFRESH, member_id: h.portal.memberId, PLACEMENT: 'DEFAULT' }));
    expect(bare.status).toBe(200);
  });

  it('refuses an unknown member with 404 and no data', async () => {
    const res = await postFrame(frameForm('CRM_DEAL_DETAIL_TAB', client.deal, { member_id: 'no-such-member', APPLICATION_TOKEN: '' }));
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('not installed');
    expect(res.text).not.toContain('b24jssdk.js');
    expect(res.text).not.toContain(h.portal.domain);
    // With a token too: unknown is unknown.
    expect((await postFrame(frameForm('DEFAULT', null, { member_id: 'no-such-member' }))).status).toBe(404);
  });

  it('refuses a wrong DOMAIN or a wrong APPLICATION_TOKEN with 401, logging no token', async () => {
    const domain = await postFrame(frameForm('CRM_CONTACT_DETAIL_TAB', referrer.contact), frameQuery({ DOMAIN: 'evil.bitrix24.ru' }));
    expect(domain.status).toBe(401);
    expect(domain.text).not.toContain('b24jssdk.js');
    const token = await postFrame(frameForm('CRM_CONTACT_DETAIL_TAB', referrer.contact, { APPLICATION_TOKEN: 'forged-application-token' }));
    expect(token.status).toBe(401);
    expect(token.text).not.toContain('b24jssdk.js');
    const warnings = h.logs.filter((l) => l.includes('frame.rejected'));
    expect(warnings.some((l) => l.includes('domain_mismatch'))).toBe(true);
    expect(warnings.some((l) => l.includes('token_mismatch'))).toBe(true);
    for (const line of warnings) {
      expect(line).not.toContain('forged-application-token');
      for (const secret of SECRETS()) expect(line).not.toContain(secret);
    }
  });

  it('answers 400 (an HTML page) without member_id', async () => {
    const res = await request(h.app).get('/b24/frame');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
  });
});

// ---------------------------------------------------------------------------------------------
// The page's script, run against a stand-in DOM and frame SDK
// ---------------------------------------------------------------------------------------------

class FakeElement {
  children: FakeElement[] = [];
  dataset: Record<string, string> = {};
  style: Record<string, string> = {};
  className = '';
  id = '';
  type = '';
  href = '';
  target = '';
  rel = '';
  private ownText = '';
  readonly listeners: Record<string, (() => void)[]> = {};
  constructor(readonly tagName: string) {}
  get textContent(): string {
    return this.ownText + this.children.map((c) => c.textContent).join(' ');
  }
  set textContent(value: string) {
    this.ownText = value;
    this.children = [];
  }
  appendChild(child: FakeElement): FakeElement {
    this.children.push(child);
    return child;
  }
  append(...children: (FakeElement | string)[]): void {
    for (const c of children) {
      if (typeof c === 'string') {
        const text = new FakeElement('#text');
        text.textContent = c;
        this.children.push(text);
      } else {
        this.children.push(c);
      }
    }
  }
  addEventListener(type: string, fn: () => void): void {
    (this.listeners[type] ??= []).push(fn);
  }
  find(predicate: (e: FakeElement) => boolean): FakeElement[] {
    return [...(predicate(this) ? [this] : []), ...this.children.flatMap((c) => c.find(predicate))];
  }
}

interface FrameRun {
  body: FakeElement;
  status: FakeElement;
  content: FakeElement;
  fitted: number;
  refreshed: number;
  errors: unknown[];
}

async function runFrame(
  html: string,
  sdk: { placement: Placement; id?: number | null; token?: string; staleToken?: string; initFails?: boolean },
): Promise<FrameRun> {
  const body = new FakeElement('body');
  // The page ends in data-state "ready" or "error": wait for that write, not for a deadline.
  let ended!: () => void;
  const end = new Promise<void>((resolve) => (ended = resolve));
  body.dataset = new Proxy<Record<string, string>>({}, {
    set(target, key, value: string) {
      target[key as string] = value;
      if (key === 'state' && (value === 'ready' || value === 'error')) ended();
      return true;
    },
  });
  const status = new FakeElement('p');
  const content = new FakeElement('main');
  const byId: Record<string, FakeElement> = { 'sdk-status': status, content };
  const run: FrameRun = { body, status, content, fitted: 0, refreshed: 0, errors: [] };
  const auth = (token: string) => ({ access_token: token, refresh_token: 'never-used', expires: 0, expires_in: 3600, domain: h.portal.domain, member_id: h.portal.memberId });
  const $b24 = {
    placement: { placement: sdk.placement, options: sdk.id ? { ID: String(sdk.id) } : {} },
    auth: {
      getAuthData: () => auth(sdk.staleToken ?? sdk.token ?? MANAGER),
      refreshAuth: async () => {
        run.refreshed++;
        return auth(sdk.token ?? MANAGER);
      },
    },
    parent: {
      fitWindow: async () => {
        run.fitted++;
      },
    },
    slider: { getUrl: (p: string) => p, openPath: async () => ({}) },
  };
  const context: Record<string, unknown> = {
    document: { body, createElement: (tag: string) => new FakeElement(tag), getElementById: (id: string) => byId[id] ?? null },
    B24Js: { initializeB24Frame: async () => (sdk.initFails ? Promise.reject(new Error('JSSDK_CLIENT_SIDE_WARNING')) : $b24) },
    fetch: async (path: string, init: { headers: Record<string, string> }) => {
      let req = request(h.app).get(path);
      for (const [k, v] of Object.entries(init.headers)) req = req.set(k, v);
      const res = await req;
      return { status: res.status, ok: res.status >= 200 && res.status < 300, json: async () => res.body as unknown };
    },
    navigator: { clipboard: { writeText: async () => undefined } },
    console: { error: (e: unknown) => run.errors.push(e), log: () => undefined },
    setTimeout,
  };
  context.window = context;
  vm.createContext(context);
  const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  expect(inline.length).toBeGreaterThan(0);
  for (const code of inline) vm.runInContext(code, context);
  await end;
  // What the script does right after (fitting the frame) runs before the test looks.
  await new Promise((resolve) => setImmediate(resolve));
  return run;
}

async function pageFor(placement: Placement, id: number | null, lang = 'en'): Promise<string> {
  const res = await postFrame(frameForm(placement, id), frameQuery({ LANG: lang }));
  expect(res.status).toBe(200);
  return res.text;
}

describe('the page script', () => {
  it('deal tab: the referral code, the referrer, the reward with its status and the client balance', async () => {
    const run = await runFrame(await pageFor('CRM_DEAL_DETAIL_TAB', client.deal), { placement: 'CRM_DEAL_DETAIL_TAB', id: client.deal });
    expect(run.body.dataset.state).toBe('ready');
    expect(run.body.dataset.placement).toBe('CRM_DEAL_DETAIL_TAB');
    expect(run.status.textContent).toContain('CRM_DEAL_DETAIL_TAB');
    const text = run.content.textContent;
    expect(text).toContain(referrer.code);
    expect(text).toContain(`Contact #${referrer.contact}`);
    expect(text).toContain('Referral reward');
    expect(text).toContain('10,000.00');
    expect(text).toContain('Available');
    expect(text).toContain(`Contact #${client.contact}`);
    expect(run.fitted).toBe(1);
    expect(run.errors).toEqual([]);
  });

  it('contact tab: code, link, balance, referrals and the ledger with reasons', async () => {
    const run = await runFrame(await pageFor('CRM_CONTACT_DETAIL_TAB', referrer.contact), { placement: 'CRM_CONTACT_DETAIL_TAB', id: referrer.contact });
    expect(run.body.dataset.state).toBe('ready');
    const text = run.content.textContent;
    expect(text).toContain(referrer.code);
    expect(text).toContain(`${APP_BASE_URL}/r/${(await h.store.installations.findByMemberId(h.portal.memberId))!.publicId}/${referrer.code}`);
    expect(text).toContain('10,000.00');
    expect(text).toContain('Referrals');
    expect(text).toContain('Referral reward, level 1');
    expect(text).toContain(`#${client.deal}`);
    const link = run.content.find((e) => e.tagName === 'a')[0];
    expect(link?.href).toBe(`${APP_BASE_URL}/r/${(await h.store.installations.findByMemberId(h.portal.memberId))!.publicId}/${referrer.code}`);
  });

  it('contact tab of the referred client shows who referred them', async () => {
    const run = await runFrame(await pageFor('CRM_CONTACT_DETAIL_TAB', client.contact), { placement: 'CRM_CONTACT_DETAIL_TAB', id: client.contact });
    expect(run.body.dataset.state).toBe('ready');
    expect(run.content.textContent).toContain(`Referred by: Contact #${referrer.contact}`);
  });

  it('lead tab of a person not in the program says so (in Russian for LANG=ru)', async () => {
    const run = await runFrame(await pageFor('CRM_LEAD_DETAIL_TAB', lead, 'ru'), { placement: 'CRM_LEAD_DETAIL_TAB', id: lead });
    expect(run.body.dataset.state).toBe('ready');
    expect(run.status.textContent).toContain('CRM_LEAD_DETAIL_TAB');
    expect(run.content.textContent).toContain('Ещё не участвует в программе');
  });

  it('main page: the program summary for an admin, a note for a manager', async () => {
    const admin = await runFrame(await pageFor('DEFAULT', null), { placement: 'DEFAULT', token: ADMIN });
    expect(admin.body.dataset.state).toBe('ready');
    expect(admin.status.textContent).toContain('DEFAULT');
    expect(admin.content.textContent).toContain('version 1');
    expect(admin.content.textContent).toContain('level 1: 10 % of the deal amount');
    const manager = await runFrame(await pageFor('DEFAULT', null), { placement: 'DEFAULT', token: MANAGER });
    expect(manager.body.dataset.state).toBe('ready');
    expect(manager.content.textContent).toContain('available to portal administrators');
  });

  it('asks the SDK for a fresh token once when the API answers 401', async () => {
    const run = await runFrame(await pageFor('CRM_DEAL_DETAIL_TAB', client.deal), {
      placement: 'CRM_DEAL_DETAIL_TAB',
      id: client.deal,
      staleToken: 'expired-user-token',
    });
    expect(run.body.dataset.state).toBe('ready');
    expect(run.refreshed).toBe(1);
  });

  it('shows an error state with a visible message when the SDK cannot start or the card id is missing', async () => {
    const failed = await runFrame(await pageFor('DEFAULT', null), { placement: 'DEFAULT', initFails: true });
    expect(failed.body.dataset.state).toBe('error');
    expect(failed.content.find((e) => e.id === 'message')[0]?.textContent).toContain('Could not connect to Bitrix24');
    const noId = await runFrame(await pageFor('CRM_DEAL_DETAIL_TAB', null), { placement: 'CRM_DEAL_DETAIL_TAB', id: null });
    expect(noId.body.dataset.state).toBe('error');
    expect(noId.content.textContent).toContain('did not pass the card id');
  });
});

describe('after an uninstall', () => {
  it('the frame is refused with 404', async () => {
    expect((await sendEvent(h, onAppUninstall(h.portal, { clean: false }))).status).toBe(200);
    const res = await postFrame(frameForm('CRM_CONTACT_DETAIL_TAB', referrer.contact));
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('b24jssdk.js');
  });
});
