/**
 * GET/POST /b24/frame through createApp: the page Bitrix24 frames for the main page and the CRM
 * card tabs. The request is verified against the stored installation (known and active portal,
 * DOMAIN, APPLICATION_TOKEN) before anything is served; then the page of the placement's client
 * entry (from the built client's manifest, here tests/fixtures/client) is frameable, carries no
 * token and calls no portal. The assets are served with long-lived caching. What the client
 * renders is tested by the component tests (tests/client) and in the browser (tests/e2e).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent, form, installRequest, onAppUninstall } from '../fixtures/bitrix/payloads.js';
import { APP_BASE_URL, createHarness, type Harness } from '../support/harness.js';
import { FORM, enrolledReferrer, referredWin, sendEvent } from '../support/scenario.js';

let h: Harness;
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

  const ENTRY: Record<Placement, string> = {
    CRM_DEAL_DETAIL_TAB: 'deal-JkL012.js',
    CRM_CONTACT_DETAIL_TAB: 'person-MnO345.js',
    CRM_LEAD_DETAIL_TAB: 'person-MnO345.js',
    DEFAULT: 'main-PqR678.js',
  };

  it.each(cases)('%s: 200 HTML, frameable, loads its client entry, carries no token and calls no portal', async (placement, id) => {
    h.portal.resetCalls();
    const res = await postFrame(frameForm(placement, id()));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-frame-options']).toBeUndefined();
    expect(res.headers['content-security-policy'] ?? '').not.toMatch(/frame-ancestors/);
    expect(res.text).toContain(`<script type="module" src="${APP_BASE_URL}/client/assets/${ENTRY[placement]}"></script>`);
    expect(res.text).toContain(`<link rel="stylesheet" href="${APP_BASE_URL}/client/assets/shared-DeF456.css">`);
    expect(res.text).toContain(`<link rel="modulepreload" href="${APP_BASE_URL}/client/assets/shared-AbC123.js">`);
    // A lazily loaded part (the QR code) is not preloaded.
    expect(res.text).not.toContain('QrCode-StU901.js');
    expect(res.text).toContain('<div id="app" data-state="loading"');
    for (const secret of SECRETS()) expect(res.text).not.toContain(secret);
    expect(res.text).not.toContain(h.portal.memberId);
    expect(h.portal.calls).toEqual([]);
  });

  it('the deal entry preloads every chunk it imports', async () => {
    const res = await postFrame(frameForm('CRM_DEAL_DETAIL_TAB', client.deal));
    expect(res.text).toContain(`<link rel="modulepreload" href="${APP_BASE_URL}/client/assets/vendor-GhI789.js">`);
  });

  it('speaks Russian for LANG=ru and English otherwise', async () => {
    const ru = await postFrame(frameForm('DEFAULT', null), frameQuery({ LANG: 'ru' }));
    expect(ru.text).toContain('<html lang="ru">');
    expect(ru.text).toContain('Загружаем Сарафан');
    const en = await postFrame(frameForm('DEFAULT', null), frameQuery({ LANG: 'de' }));
    expect(en.text).toContain('<html lang="en">');
    expect(en.text).toContain('Loading Sarafan');
  });

  it('answers 404 for a placement Sarafan does not register', async () => {
    const res = await postFrame(frameForm('CRM_COMPANY_DETAIL_TAB' as Placement, 5));
    expect(res.status).toBe(404);
    expect(res.text).toContain('does not support this placement');
    expect(res.text).not.toContain('/client/assets/');
  });

  it('answers GET with the fields in the query, and accepts a form without the optional DOMAIN and APPLICATION_TOKEN', async () => {
    const get = await request(h.app).get(`/b24/frame?${frameQuery({ member_id: h.portal.memberId, PLACEMENT: 'DEFAULT' })}`);
    expect(get.status).toBe(200);
    expect(get.text).toContain('/client/assets/main-PqR678.js');
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
    expect(res.text).not.toContain('/client/assets/');
    expect(res.text).not.toContain(h.portal.domain);
    // With a token too: unknown is unknown.
    expect((await postFrame(frameForm('DEFAULT', null, { member_id: 'no-such-member' }))).status).toBe(404);
  });

  it('refuses a wrong DOMAIN or a wrong APPLICATION_TOKEN with 401, logging no token', async () => {
    const domain = await postFrame(frameForm('CRM_CONTACT_DETAIL_TAB', referrer.contact), frameQuery({ DOMAIN: 'evil.bitrix24.ru' }));
    expect(domain.status).toBe(401);
    expect(domain.text).not.toContain('/client/assets/');
    const token = await postFrame(frameForm('CRM_CONTACT_DETAIL_TAB', referrer.contact, { APPLICATION_TOKEN: 'forged-application-token' }));
    expect(token.status).toBe(401);
    expect(token.text).not.toContain('/client/assets/');
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

describe('the client assets', () => {
  it('are served with content hashes and a year of immutable caching', async () => {
    const js = await request(h.app).get('/client/assets/deal-JkL012.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.text).toContain("deal-JkL012.js");
    const css = await request(h.app).get('/client/assets/shared-DeF456.css');
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('answer 404 for an unknown file and never leave the assets directory', async () => {
    expect((await request(h.app).get('/client/assets/nope-000000.js')).status).toBe(404);
    expect((await request(h.app).get('/client/assets/..%2F.vite%2Fmanifest.json')).status).toBe(404);
    expect((await request(h.app).get('/client/.vite/manifest.json')).status).toBe(404);
  });
});

describe('without a built client', () => {
  it('a verified frame gets a 503 page that says how to build it, and the log says where it looked', async () => {
    const bare = await createHarness({ clientDir: '/nonexistent/sarafan-client' });
    try {
      const { query, body } = installRequest(bare.portal);
      expect((await request(bare.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      const res = await request(bare.app)
        .post(`/b24/frame?${new URLSearchParams({ DOMAIN: bare.portal.domain, LANG: 'en' }).toString()}`)
        .set('Content-Type', FORM)
        .send(form({ AUTH_ID: MANAGER, member_id: bare.portal.memberId, APPLICATION_TOKEN: bare.portal.applicationToken, PLACEMENT: 'DEFAULT' }));
      expect(res.status).toBe(503);
      expect(res.text).toContain('npm run build');
      expect(bare.logs.some((l) => l.includes('frame.client_not_built') && l.includes('/nonexistent/sarafan-client'))).toBe(true);
    } finally {
      await bare.close();
    }
  });
});

describe('after an uninstall', () => {
  it('the frame is refused with 404', async () => {
    expect((await sendEvent(h, onAppUninstall(h.portal, { clean: false }))).status).toBe(200);
    const res = await postFrame(frameForm('CRM_CONTACT_DETAIL_TAB', referrer.contact));
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('/client/assets/');
  });
});
