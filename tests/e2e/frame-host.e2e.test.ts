/**
 * The sandbox's frame host in headless Chromium (Debian's /usr/bin/chromium through playwright-core)
 * against the real @bitrix24/b24jssdk frame SDK: a tiny app, served from another origin than the
 * portal (as on a real portal), is opened in a CRM card tab and on its main page, and calls
 * resizeWindow / resizeWindowAuto / fitWindow (the frame takes the height asked for),
 * dialog.selectCRM (the portal's modal lists contacts and leads; a pick is answered in Bitrix24's
 * shape, a cancel is not answered at all), slider.openPath (the card opens in a slider, the answer
 * comes when it closes), openSliderAppPage + closeApplication, setTitle and getInterface, and
 * navigator.clipboard.writeText — refused in Bitrix24's frame (no clipboard in its `allow` list),
 * where execCommand('copy') still copies, and working where the portal delegates the clipboard.
 * Every wait is for an element, an attribute or a promise of the frame; none is a timing assertion.
 *
 * Never skipped: without Chromium this suite fails and says how to install it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../sandbox/server.js';

/** Only turns a hang into a failure naming what was awaited; no assertion depends on it. */
const HANG = 90_000;
const CLIENT_ID = 'local.framehost.e2e';

const require = createRequire(import.meta.url);
/** The SDK's own browser build (UMD, global B24Js) — the same code the client bundles from the ESM build. */
const SDK = readFileSync(path.join(path.dirname(require.resolve('@bitrix24/b24jssdk/package.json')), 'dist/umd/index.min.js'), 'utf8');

/** The app page every handler URL answers with: the SDK, a box of a known height and a few buttons. */
const APP_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Frame host test app</title>
<style>html,body{margin:0;padding:0}#box{height:600px;background:#f0f6fa}</style>
<script src="/sdk.js"></script></head>
<body data-state="loading">
<div id="box">
  <button id="copy" type="button">writeText</button>
  <button id="copy-fallback" type="button">execCommand copy</button>
  <textarea id="copy-source" readonly>REF-7K2M</textarea>
  <output id="out"></output>
</div>
<script>
  var out = document.getElementById('out');
  document.getElementById('copy').addEventListener('click', function () {
    navigator.clipboard.writeText('REF-7K2M').then(
      function () { out.dataset.copy = 'ok'; },
      function (e) { out.dataset.copy = 'refused:' + e.name; },
    );
  });
  document.getElementById('copy-fallback').addEventListener('click', function () {
    var source = document.getElementById('copy-source');
    source.select();
    out.dataset.fallback = document.execCommand('copy') ? 'ok' : 'refused';
  });
  B24Js.initializeB24Frame().then(
    function (b24) {
      window.b24 = b24;
      document.body.dataset.placement = b24.placement.placement;
      document.body.dataset.state = 'ready';
    },
    function (e) { document.body.dataset.state = 'failed:' + e.message; },
  );
</script>
</body></html>`;

let app: Server;
let appUrl: string;
let sandbox: Sandbox;
let delegating: Sandbox;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const ids = { olga: 0, ivan: 0, lead: 0, deal: 0 };

async function install(s: Sandbox): Promise<void> {
  const res = await fetch(`${s.url}/_sandbox/control/apps/${CLIENT_ID}/install`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`install: ${res.status}`);
  const auth = s.portal.issueTokens(CLIENT_ID, 1).accessToken;
  for (const placement of ['CRM_DEAL_DETAIL_TAB', 'CRM_CONTACT_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB']) {
    const bound = await fetch(`${s.url}/rest/placement.bind`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth, PLACEMENT: placement, HANDLER: `${appUrl}/tab`, TITLE: 'Тест' }),
    });
    if (bound.status !== 200) throw new Error(`placement.bind: ${bound.status}`);
  }
}

function sandboxWith(web: { clipboardDelegation?: boolean }): Promise<Sandbox> {
  return startSandbox({
    port: 0,
    // The portal answers at localhost, the app at 127.0.0.1: two origins, as a portal and an app have.
    host: 'localhost',
    dataDir: null,
    limits: false,
    web,
    apps: [{ clientId: CLIENT_ID, clientSecret: 'e2e-secret', code: 'framehost', title: 'Тестовое приложение', version: '1', scope: 'crm,placement', handlerUrl: `${appUrl}/app`, installUrl: `${appUrl}/install` }],
  });
}

/** The app frame of the page (or of a slider), once the SDK inside has initialised. */
async function appFrame(selector = '[data-testid="app-frame"]', within: Page | Frame = page): Promise<Frame> {
  const handle = await within.locator(selector).first().elementHandle();
  const frame = await handle?.contentFrame();
  if (!frame) throw new Error(`no frame at ${selector}`);
  await frame.locator('body[data-state="ready"]').waitFor();
  return frame;
}

beforeAll(async () => {
  app = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/sdk.js') return void res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(SDK);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(APP_PAGE);
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  sandbox = await sandboxWith({});
  delegating = await sandboxWith({ clipboardDelegation: true });
  await install(sandbox);
  await install(delegating);
  const actor = { userId: 1 };
  ids.olga = sandbox.portal.addEntity('contact', { NAME: 'Ольга', LAST_NAME: 'Смирнова' }, actor);
  ids.ivan = sandbox.portal.addEntity('contact', { NAME: 'Иван', LAST_NAME: 'Петров' }, actor);
  ids.lead = sandbox.portal.addEntity('lead', { TITLE: 'Кухня на заказ', NAME: 'Пётр', LAST_NAME: 'Ильин' }, actor);
  ids.deal = sandbox.portal.addEntity('deal', { TITLE: 'Прихожая', CONTACT_ID: ids.ivan }, actor);
  delegating.portal.addEntity('deal', { TITLE: 'Шкаф' }, actor);

  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // The user has allowed the clipboard, as a person would when asked: what remains is the frame's policy.
  for (const origin of [sandbox.url, delegating.url, appUrl]) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  context.setDefaultTimeout(HANG);
  page = await context.newPage();
});

afterAll(async () => {
  await browser?.close();
  await sandbox?.close();
  await delegating?.close();
  app?.closeAllConnections();
  await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
});

describe('the frame of a CRM card tab, with the real b24jssdk', () => {
  let frame: Frame;

  beforeAll(async () => {
    await page.goto(`${sandbox.url}/crm/deal/details/${ids.deal}/?tab=app0`);
    frame = await appFrame();
  });

  it('sits in a card-tab-wide box and takes the height the frame asks for', async () => {
    expect(await frame.locator('body').getAttribute('data-placement')).toBe('CRM_DEAL_DETAIL_TAB');
    const tabWidth = await page.locator('[data-testid="tab-area"]').evaluate((el) => el.getBoundingClientRect().width);
    expect(tabWidth).toBeGreaterThanOrEqual(900);
    expect(tabWidth).toBeLessThanOrEqual(1000);
    const wrap = page.locator('[data-testid="app-frame-wrap"]');
    const iframeHeight = () => page.locator('[data-testid="app-frame"]').evaluate((el) => Math.round(el.getBoundingClientRect().height));

    // resizeWindow answers with the layout's new size (Bitrix24's applayout.js).
    const answer = await frame.evaluate(() => (window as unknown as { b24: { parent: { resizeWindow(w: number, h: number): Promise<unknown> } } }).b24.parent.resizeWindow(700, 450));
    expect(answer).toEqual({ width: 700, height: 450 });
    await page.locator('[data-testid="app-frame-wrap"][data-frame-height="450"]').waitFor();
    expect(await iframeHeight()).toBe(450);

    // resizeWindowAuto measures the body: the frame grows and shrinks with its content.
    await frame.evaluate(() => {
      document.getElementById('box')!.style.height = '1234px';
      return (window as unknown as { b24: { parent: { resizeWindowAuto(): Promise<unknown> } } }).b24.parent.resizeWindowAuto();
    });
    await page.locator('[data-testid="app-frame-wrap"][data-frame-height="1234"]').waitFor();
    expect(await iframeHeight()).toBe(1234);
    await frame.evaluate(() => {
      document.getElementById('box')!.style.height = '320px';
      return (window as unknown as { b24: { parent: { resizeWindowAuto(): Promise<unknown> } } }).b24.parent.resizeWindowAuto();
    });
    await page.locator('[data-testid="app-frame-wrap"][data-frame-height="320"]').waitFor();

    // fitWindow measures the document (never below the frame's own height): it grows to 100% × content.
    await frame.evaluate(() => {
      document.getElementById('box')!.style.height = '1500px';
      return (window as unknown as { b24: { parent: { fitWindow(): Promise<unknown> } } }).b24.parent.fitWindow();
    });
    await page.locator('[data-testid="app-frame-wrap"][data-frame-height="1500"]').waitFor();
    const wrapWidth = await wrap.evaluate((el) => Math.round(el.getBoundingClientRect().width));
    expect(await page.locator('[data-testid="app-frame"]').evaluate((el) => Math.round(el.getBoundingClientRect().width))).toBe(wrapWidth);

    // A runaway height is capped.
    await frame.evaluate(() => (window as unknown as { b24: { parent: { resizeWindow(w: number, h: number): Promise<unknown> } } }).b24.parent.resizeWindow(700, 90_000));
    await page.locator('[data-testid="app-frame-wrap"][data-frame-height="5000"]').waitFor();
  });

  it('selectCRM: the portal’s selector lists contacts and leads, a pick comes back in Bitrix24’s shape', async () => {
    await frame.evaluate(() => {
      const w = window as unknown as { b24: { dialog: { selectCRM(p: unknown): Promise<unknown> } }; picked?: unknown };
      void w.b24.dialog.selectCRM({ entityType: ['contact', 'lead'], multiple: false }).then((r) => (w.picked = r));
    });
    const modal = page.locator('[data-testid="crm-selector"]');
    await modal.waitFor();
    await expect(modal.locator(`[data-testid="crm-item-L_${ids.lead}"]`).textContent()).resolves.toContain('Кухня на заказ');
    await page.locator('[data-testid="crm-search"]').fill('смирн');
    await modal.locator(`[data-testid="crm-item-C_${ids.ivan}"]`).waitFor({ state: 'hidden' });
    await modal.locator(`[data-testid="crm-item-C_${ids.olga}"]`).click();
    await page.locator('[data-testid="crm-select"]').click();
    await modal.waitFor({ state: 'detached' });
    const picked = await frame.waitForFunction(() => (window as unknown as { picked?: unknown }).picked).then((h) => h.jsonValue());
    expect(picked).toEqual({
      lead: [],
      contact: [{ id: `C_${ids.olga}`, type: 'contact', place: 'contact', title: 'Ольга Смирнова', desc: '', url: `/crm/contact/details/${ids.olga}/` }],
    });
  });

  it('selectCRM cancelled: the selector closes and, as in Bitrix24, the frame gets no answer', async () => {
    await frame.evaluate(() => {
      const w = window as unknown as { b24: { dialog: { selectCRM(p: unknown): Promise<unknown> } }; cancelled?: unknown };
      void w.b24.dialog.selectCRM({ entityType: ['lead'] }).then((r) => (w.cancelled = r ?? 'answered'));
    });
    await page.locator('[data-testid="crm-selector"]').waitFor();
    expect(await page.locator('[data-testid="crm-selector"] [role="option"]').count()).toBe(1);
    await page.locator('[data-testid="crm-cancel"]').click();
    await page.locator('[data-testid="crm-selector"]').waitFor({ state: 'detached' });
    // A later command's answer arrives after anything the cancel could have sent.
    await frame.evaluate(() => (window as unknown as { b24: { parent: { resizeWindow(w: number, h: number): Promise<unknown> } } }).b24.parent.resizeWindow(700, 500));
    expect(await frame.evaluate(() => (window as unknown as { cancelled?: unknown }).cancelled)).toBeUndefined();
  });

  it('openPath: the card opens in a slider over the page, and the frame is answered when it closes', async () => {
    await frame.evaluate((id) => {
      const w = window as unknown as { b24: { slider: { getUrl(p: string): URL; openPath(u: URL): Promise<unknown> } }; pathClosed?: unknown };
      void w.b24.slider.openPath(w.b24.slider.getUrl(`/crm/contact/details/${id}/`)).then((r) => (w.pathClosed = r));
    }, ids.olga);
    const slider = page.locator('[data-testid="slider"]');
    await slider.waitFor();
    const card = page.frameLocator('[data-testid="slider-frame"]');
    await card.locator('text=Ольга Смирнова').first().waitFor();
    const src = new URL(String(await page.locator('[data-testid="slider-frame"]').getAttribute('src')), sandbox.url);
    expect(src.pathname).toBe(`/crm/contact/details/${ids.olga}/`);
    expect(Object.fromEntries(src.searchParams)).toMatchObject({ IFRAME: 'Y', IFRAME_TYPE: 'SIDE_SLIDER', from: 'rest_placement', from_app: 'framehost' });
    expect(await card.locator('[data-testid="menu-deal"]').count()).toBe(0);
    expect(await frame.evaluate(() => (window as unknown as { pathClosed?: unknown }).pathClosed)).toBeUndefined();
    await page.locator('[data-testid="slider-close"]').click();
    await slider.waitFor({ state: 'detached' });
    const closed = await frame.waitForFunction(() => (window as unknown as { pathClosed?: unknown }).pathClosed).then((h) => h.jsonValue());
    expect(closed).toEqual({ isOpenAtNewWindow: false, isClose: true });
  });

  it('openSliderAppPage opens the app in a slider with its options; closeApplication there closes it', async () => {
    await frame.evaluate(() => {
      const w = window as unknown as { b24: { slider: { openSliderAppPage(p: unknown): Promise<unknown> } }; appClosed?: unknown };
      void w.b24.slider.openSliderAppPage({ bx24_title: 'Рекомендации', contact: '5' }).then((r) => (w.appClosed = r === '' ? 'closed' : r));
    });
    await page.locator('[data-testid="slider"]').waitFor();
    await expect(page.locator('[data-testid="slider-title"]').textContent()).resolves.toBe('Рекомендации');
    const sliderPage = await page.locator('[data-testid="slider-frame"]').elementHandle().then((h) => h!.contentFrame());
    const inner = await appFrame('[data-testid="app-frame"]', sliderPage!);
    const options = await inner.evaluate(() => {
      const p = (window as unknown as { b24: { placement: { placement: string; options: unknown } } }).b24.placement;
      return { placement: p.placement, options: p.options };
    });
    expect(options).toMatchObject({ placement: 'DEFAULT', options: { contact: '5' } });
    void inner.evaluate(() => {
      void (window as unknown as { b24: { parent: { closeApplication(): Promise<unknown> } } }).b24.parent.closeApplication().catch(() => undefined);
    }).catch(() => undefined);
    await page.locator('[data-testid="slider"]').waitFor({ state: 'detached' });
    await frame.waitForFunction(() => (window as unknown as { appClosed?: unknown }).appClosed === 'closed');
  });

  it('getInterface lists what a placement may call; denied and unknown commands never hang the SDK', async () => {
    const iface = (await frame.evaluate(() => (window as unknown as { b24: { placement: { getInterface(): Promise<unknown> } } }).b24.placement.getInterface())) as { command: string[]; event: string[] };
    expect(iface.command).toEqual(expect.arrayContaining(['resizeWindow', 'selectCRM', 'openPath', 'refreshAuth', 'closeApplication']));
    expect(iface.command).not.toContain('setTitle');
    // setTitle is denied in placements: Bitrix24 ignores it, and the SDK settles it "safely" by itself.
    expect(await frame.evaluate(() => (window as unknown as { b24: { parent: { setTitle(t: string): Promise<unknown> } } }).b24.parent.setTitle('x'))).toEqual({ isSafely: true });
    const unknown = await frame.evaluate(() => (window as unknown as { b24: { placement: { call(c: string, p: unknown): Promise<unknown> } } }).b24.placement.call('noSuchCommand', { a: 1 }));
    expect(unknown).toMatchObject({ error: 'UNKNOWN_COMMAND' });
  });

  it('clipboard: Bitrix24’s frame has no clipboard-write, so writeText is refused and execCommand copy works', async () => {
    await frame.locator('#copy').click();
    await frame.locator('#out[data-copy]').waitFor({ state: 'attached' });
    expect(await frame.locator('#out').getAttribute('data-copy')).toBe('refused:NotAllowedError');
    await frame.locator('#copy-fallback').click();
    expect(await frame.locator('#out').getAttribute('data-fallback')).toBe('ok');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('REF-7K2M');
  });
});

describe('the app main page', () => {
  it('is full width, and setTitle sets the page title', async () => {
    await page.goto(`${sandbox.url}/marketplace/app/${CLIENT_ID}/`);
    const frame = await appFrame();
    expect(await frame.locator('body').getAttribute('data-placement')).toBe('DEFAULT');
    const content = await page.locator('main.content').evaluate((el) => el.clientWidth - 48);
    const wrap = await page.locator('[data-testid="app-frame-wrap"]').evaluate((el) => Math.round(el.getBoundingClientRect().width));
    expect(wrap).toBe(content);
    const answer = await frame.evaluate(() => (window as unknown as { b24: { parent: { setTitle(t: string): Promise<unknown> } } }).b24.parent.setTitle('Программа лояльности'));
    expect(answer).toEqual({ title: 'Программа лояльности' });
    await expect(page.locator('#pagetitle').textContent()).resolves.toBe('Программа лояльности');
  });
});

describe('a portal that delegates the clipboard', () => {
  it('lets the frame write with navigator.clipboard.writeText', async () => {
    const deal = delegating.portal.listEntities('deal', { order: { ID: 'DESC' }, select: ['ID'], start: 0 }).rows[0]!;
    await page.goto(`${delegating.url}/crm/deal/details/${String(deal.ID)}/?tab=app0`);
    const frame = await appFrame();
    await page.evaluate(() => navigator.clipboard.writeText('something else'));
    await frame.locator('#copy').click();
    await frame.locator('#out[data-copy]').waitFor({ state: 'attached' });
    expect(await frame.locator('#out').getAttribute('data-copy')).toBe('ok');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('REF-7K2M');
  });
});
