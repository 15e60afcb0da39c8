/**
 * The admin page (PLACEMENT DEFAULT, issue 12) in headless Chromium inside the sandbox portal's
 * application page, with the real @bitrix24/b24jssdk in the frame, as the portal's administrator
 * (user 1): the program form (a preset, tiers, an error at its field, save as a new version, the
 * history), the dashboard's figures against the ledger after a referred chain A → B → C → D is
 * won, the ledger search by a person picked in the portal's CRM selector and its CSV, and the
 * installation health with a field deleted by hand and repaired. Each assertion reads the page
 * and the stored state or the portal.
 *
 * A second suite starts the demo with months of history (what `npm start` shows) for the
 * dashboard's screenshots in Russian, in English and on a 390 px wide phone, where the page must
 * not scroll sideways. Screenshots go to test-artifacts/screenshots/. Never skipped.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CLIENT_ID, DEMO_WORKER_LINGER_MS, demoClock, startDemoPortal, type DemoPortal } from '../../server/demo/sandbox-demo.js';
import { F } from '../../src/bitrix/crm-fields.js';
import type { Actor } from '../../sandbox/types.js';
import { launchChromium } from '../support/browser.js';
import { composeDemoSarafan, type DemoSarafan } from '../support/demo-sarafan.js';
import { startLive, type Live } from '../support/live.js';

/** Waits are for something to happen; this only turns a hang into a failure naming what was awaited. */
const HANG = 90_000;
const SHOTS = path.resolve(import.meta.dirname, '../../test-artifacts/screenshots');
const NB = /[\s\u00a0\u202f]/g;
const plain = (s: string | null): string => (s ?? '').replace(NB, ' ').trim();
const manager: Actor = { userId: 2 };

/** The header's user and language switch, as a form post sharing the browser's cookies. */
async function setUser(context: BrowserContext, portalUrl: string, userId: number, lang: 'ru' | 'en'): Promise<void> {
  const res = await context.request.post(`${portalUrl}/_sandbox/user`, { form: { userId: String(userId), lang, back: '/' }, maxRedirects: 0 });
  expect(res.status()).toBe(303);
}

/** The portal's page of the application (its main page, PLACEMENT DEFAULT), once the Vue client shows it. */
async function openMainPage(page: Page, portalUrl: string): Promise<FrameLocator> {
  await page.goto(`${portalUrl}/marketplace/app/${DEMO_CLIENT_ID}/`);
  const frame = page.frameLocator('[data-testid="app-frame"]');
  await frame.locator('#app[data-state="ready"]').waitFor();
  await frame.locator('[data-testid="main-page"]').waitFor();
  return frame;
}

async function openTab(frame: FrameLocator, tab: 'program' | 'analytics' | 'ledger' | 'health'): Promise<void> {
  await frame.locator(`[data-testid="tab-${tab}"]`).click();
  await frame.locator(`[data-testid="panel-${tab}"]`).waitFor();
}

/** A NumberInput or B24Input by its test id (the id may sit on the input or on its wrapper). */
const input = (frame: FrameLocator, testid: string) => frame.locator(`input[data-testid="${testid}"], [data-testid="${testid}"] input`).first();

async function shot(page: Page, name: string): Promise<void> {
  // The sandbox's sticky banner would be drawn across a tall element's screenshot as it scrolls.
  await page.locator('.sandbox-banner').evaluate((el) => (el.style.position = 'static'));
  await page.locator('[data-testid="app-frame-wrap"]').screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function until<T>(page: Page, what: string, read: () => Promise<T> | T, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + HANG;
  let value = await read();
  while (!ok(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await page.waitForTimeout(200);
    value = await read();
  }
  return value;
}

/** The text of a KPI card's figure. */
const kpi = async (frame: FrameLocator, testid: string): Promise<string> => plain(await frame.locator(`[data-testid="${testid}"] [data-testid="kpi-value"]`).textContent());

describe('the admin page on a fresh portal', () => {
  let live: Live;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let frame: FrameLocator;
  const portal = () => live.sandbox.portal;
  const pid = async () => (await live.installation()).id;
  // The referred chain of part 2: A refers B, B refers C, C refers D.
  const chain: { contact: number; deal: number; amount: number }[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    live = await startLive({ backgroundWorker: true });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(HANG);
    await setUser(context, live.sandbox.url, 1, 'ru');
  });

  afterAll(async () => {
    await browser?.close();
    await live?.close();
  });

  it('«Программа»: a preset and tiers, the live preview, an error at its field, save as a new version, the history', async () => {
    frame = await openMainPage(page, live.sandbox.url);
    await frame.locator('[data-testid="tab-program"][aria-selected="true"]').waitFor();
    await frame.locator('[data-testid="preset-network"]').waitFor();
    const before = (await live.deps.store.programs.current(await pid()))!;

    await frame.locator('[data-testid="preset-network"]').click();
    await frame.locator('[data-testid="add-tier"]').click();
    await frame.locator('[data-testid="add-tier"]').click();
    await input(frame, 'input-tiers.levels.0.name').fill('Silver');
    await input(frame, 'input-tiers.levels.0.from').fill('0');
    await input(frame, 'input-tiers.levels.0.cashbackPercent').fill('3');
    await input(frame, 'input-tiers.levels.1.name').fill('Gold');
    await input(frame, 'input-tiers.levels.1.from').fill('100 000');
    await input(frame, 'input-tiers.levels.1.cashbackPercent').fill('5');
    // The default hypothetical deal: 100 000 ₽ at depth 5, so all three levels are paid.
    const preview = frame.locator('[data-testid="preview-text"]');
    await until(page, 'the preview', async () => plain(await preview.textContent()), (t) => t.includes('уровню 3'));
    expect(plain(await preview.textContent())).toBe('Выигранная сделка на 100 000 ₽ по рекомендации принесёт рекомендателю 10 000 ₽, уровню 2 5 000 ₽, уровню 3 2 000 ₽.');

    // An error at its field, Save disabled; fixed, the form is valid again.
    await input(frame, 'input-referral.levels.1').fill('пять');
    await frame.locator('[data-testid="field-referral.levels.1"]', { hasText: 'введите число' }).waitFor();
    await expect(frame.locator('[data-testid="save"]').isDisabled()).resolves.toBe(true);
    expect(plain(await frame.locator('[data-testid="invalid-note"]').textContent())).toBe('Ошибок в форме: 1');
    await input(frame, 'input-referral.levels.1').fill('5');
    await frame.locator('[data-testid="invalid-note"]').waitFor({ state: 'detached' });
    expect(await frame.locator('[data-testid="field-referral.levels.1"]').textContent()).not.toContain('введите число');
    await until(page, 'the preview after the fix', async () => plain(await preview.textContent()), (t) => t.endsWith('уровню 3 2 000 ₽.'));
    await expect(frame.locator('[data-testid="save"]').isEnabled()).resolves.toBe(true);

    await frame.locator('[data-testid="save"]').click();
    const version = before.version + 1;
    await frame.locator('[data-testid="saved"]', { hasText: `Сохранено: версия ${version}` }).waitFor();
    const history = frame.locator(`[data-testid="version-${version}"]`);
    await history.waitFor();
    const changes = (await history.locator('[data-testid="version-change"]').allTextContents()).map(plain);
    expect(changes.some((c) => c.includes('#2') && c.endsWith('→ процент: 5'))).toBe(true);
    expect(changes.some((c) => c.includes('#3') && c.endsWith('→ процент: 2'))).toBe(true);
    expect(changes.some((c) => c.includes('Gold'))).toBe(true);
    expect(plain(await history.locator('[data-testid="version-who"]').textContent())).not.toBe('');

    const stored = (await live.deps.store.programs.current(await pid()))!;
    expect(stored.version).toBe(version);
    expect(stored.createdBy).toBe(1);
    const doc = stored.document as { referral: { levels: unknown }; tiers: { basis: string; levels: unknown } };
    expect(doc.referral.levels).toEqual([{ percent: 10 }, { percent: 5 }, { percent: 2 }]);
    expect(doc.tiers).toEqual({ basis: 'won_amount', levels: [{ name: 'Silver', from: 0, cashbackPercent: 3 }, { name: 'Gold', from: 100_000, cashbackPercent: 5 }] });
    await shot(page, 'admin-settings-ru');
  });

  it('«Аналитика»: after a won chain A → B → C → D, the figures are the ledger\'s and the charts draw them', async () => {
    const names = [
      ['Анна', 'Алексеева'],
      ['Борис', 'Белов'],
      ['Вера', 'Васильева'],
      ['Глеб', 'Горин'],
    ] as const;
    const amounts = [50_000, 100_000, 200_000, 40_000];
    let code: string | null = null;
    for (const [i, [name, last]] of names.entries()) {
      const contact = portal().addEntity('contact', { NAME: name, LAST_NAME: last, ...(code ? { [F.REF_CODE]: code } : {}) }, manager);
      const deal = portal().addEntity('deal', { TITLE: `Заказ ${name}`, CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: amounts[i]! }, manager);
      portal().updateEntity('deal', deal, { STAGE_ID: 'WON' }, manager);
      await live.settle();
      chain.push({ contact, deal, amount: amounts[i]! });
      code = String(portal().getEntity('contact', contact)![F.CODE] ?? '');
      expect(code).not.toBe('');
    }
    // By hand from the program (10 / 5 / 2 %): B's deal pays A; C's pays B and A; D's pays C, B and A.
    const expectedCost = 10_000 + (20_000 + 10_000) + (4_000 + 2_000 + 800);
    const p = await pid();
    const entries = (await live.deps.store.ledger.forDeals(p, chain.map((c) => c.deal))).filter((e) => e.reason === 'referral');
    expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(expectedCost * 100);
    const revenue = 100_000 + 200_000 + 40_000;

    await openTab(frame, 'analytics');
    await frame.locator('[data-testid="kpis"]').waitFor();
    expect(await frame.locator('[data-testid="period-preset"]').inputValue()).toBe('last30');
    expect(await kpi(frame, 'kpi-revenue')).toBe('340 000 ₽');
    expect(await kpi(frame, 'kpi-cost')).toBe('46 800 ₽');
    const roi = Math.round(((revenue - expectedCost) / expectedCost) * 1000) / 10;
    expect(roi).toBe(626.5);
    expect(await kpi(frame, 'kpi-roi')).toBe('626,5 %');
    expect(plain(await frame.locator('[data-testid="cost-by-reason"]').textContent())).toContain('46 800 ₽');

    expect(plain(await frame.locator('[data-testid="funnel-wonReferredDeals"] b').textContent())).toBe('3');
    expect(plain(await frame.locator('[data-testid="funnel-referredDeals"] b').textContent())).toBe('3');
    const month = new Date().toISOString().slice(0, 7);
    const row = frame.locator(`[data-testid="month-${month}"]`);
    await row.waitFor();
    expect((await row.locator('td').allTextContents()).map(plain)).toEqual(['3', '340 000 ₽', '46 800 ₽']);
    for (const figure of ['figure-funnel', 'figure-monthly']) {
      await frame.locator(`[data-testid="${figure}"] canvas`).waitFor();
    }
    // The numbers beside the chart: the funnel's list and the monthly table.
    expect(await frame.locator('[data-testid="funnel-list"] li').count()).toBe(4);
    expect(await frame.locator('[data-testid="monthly-table"] tbody tr').count()).toBeGreaterThanOrEqual(1);
    // Top referrers by the revenue they brought directly: Борис brought Вера's 200 000 ₽ and earned 20 000 + 2 000 ₽.
    const top = frame.locator('[data-testid="top-0"] td');
    expect((await top.allTextContents()).map(plain).filter((_, i) => i !== 1)).toEqual(['Борис Белов', '1', '200 000 ₽', '22 000 ₽']);
  });

  it('«Журнал»: the entries of a referrer picked in the CRM selector, and the ledger CSV', async () => {
    await openTab(frame, 'ledger');
    await frame.locator('[data-testid="ledger-table"]').waitFor();
    await frame.locator('[data-testid="ledger-person-pick"]').click();
    const selector = page.locator('[data-testid="crm-selector"]');
    await selector.waitFor();
    await selector.locator('[data-testid="crm-search"]').fill('Алексеева');
    const anna = chain[0]!.contact;
    await selector.locator(`[data-testid="crm-item-C_${anna}"]`).click();
    await selector.locator('[data-testid="crm-select"]').click();
    await frame.locator('[data-testid="ledger-person"]', { hasText: 'Анна Алексеева' }).waitFor();

    const p = await pid();
    const member = (await live.deps.store.members.findByEntity(p, 'contact', anna))!;
    const hers = await live.deps.store.ledger.forMember(p, member.id, { limit: 50 });
    expect(hers.map((e) => e.amount).sort((a, b) => a - b)).toEqual([800_00, 10_000_00, 10_000_00]);
    const rows = frame.locator('[data-testid="ledger-table"] tbody tr');
    await until(page, 'her rows', () => rows.count(), (n) => n === hers.length);
    for (const e of hers) expect(plain(await frame.locator(`[data-testid="row-${e.id}"]`).textContent())).toContain('Анна Алексеева');

    const [download] = await Promise.all([page.waitForEvent('download'), frame.locator('[data-testid="export-ledger"]').click()]);
    const file = await download.path();
    const csv = readFileSync(file, 'utf8');
    expect(csv.startsWith('\uFEFF')).toBe(true);
    expect(download.suggestedFilename()).toMatch(/\.csv$/);
    const lines = csv.slice(1).trim().split(/\r?\n/);
    const all = await live.deps.store.ledger.forDeals(p, chain.map((c) => c.deal));
    // A header, then one line per entry of the period (the chain's entries at least).
    expect(lines.length - 1).toBeGreaterThanOrEqual(all.length);
    expect(csv).toContain('10000');
  });

  it('«Состояние»: everything present; a field deleted on the portal shows missing and «Починить установку» restores it', async () => {
    const FIELD = 'UF_CRM_SARAFAN_REWARD';
    await openTab(frame, 'health');
    await frame.locator('[data-testid="health-panel"]').waitFor();
    expect(plain(await frame.locator('[data-testid="health-summary"]').textContent())).toBe('Всё на месте.');
    expect(await frame.locator('[data-testid="badge-missing"]').count()).toBe(0);
    expect(await frame.locator('[data-testid="badge-present"]').count()).toBeGreaterThan(5);
    for (const g of ['field', 'event', 'placement', 'robot']) await frame.locator(`[data-testid="health-group-${g}"]`).waitFor();
    expect(plain(await frame.locator('[data-testid="health-last-event"]').textContent())).not.toBe('ещё не было');
    await shot(page, 'admin-health-ru');

    // An admin deletes the field through the portal's REST API, as a person with a webhook would.
    const token = portal().issueTokens(DEMO_CLIENT_ID, 1).accessToken;
    const rest = async (method: string, params: Record<string, unknown>): Promise<unknown> => {
      const res = await fetch(`${live.sandbox.url}/rest/${method}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...params, auth: token }) });
      const body = (await res.json()) as { result?: unknown; error?: string };
      if (!res.ok || body.error) throw new Error(`${method}: ${res.status} ${JSON.stringify(body)}`);
      return body.result;
    };
    const [field] = (await rest('crm.deal.userfield.list', { filter: { FIELD_NAME: FIELD } })) as { ID: string }[];
    expect(await rest('crm.deal.userfield.delete', { id: field!.ID })).toBe(true);
    const dealFields = () => portal().userFields('deal').map((u) => String(u.FIELD_NAME));
    expect(dealFields()).not.toContain(FIELD);

    frame = await openMainPage(page, live.sandbox.url);
    await openTab(frame, 'health');
    const item = frame.locator(`[data-testid="item-${FIELD} (deal)"]`);
    await item.locator('[data-testid="badge-missing"]').waitFor();
    expect(plain(await frame.locator('[data-testid="health-summary"]').textContent())).toMatch(/1/);

    await frame.locator('[data-testid="health-repair"]').click();
    await frame.locator('[data-testid="health-repaired"]').waitFor();
    expect(plain(await frame.locator('[data-testid="health-repaired"]').textContent())).toContain(`${FIELD} (deal)`);
    await item.locator('[data-testid="badge-present"]').waitFor();
    expect(plain(await frame.locator('[data-testid="health-summary"]').textContent())).toBe('Всё на месте.');
    expect(dealFields()).toContain(FIELD);
    await live.settle();
  });
});

describe('the dashboard of the demo with months of history', () => {
  let sarafan: DemoSarafan;
  let demo: DemoPortal;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // As npm start on a fresh data directory: the shared clock starts half a year back (demo-history.sandbox.test.ts).
    const clock = demoClock(true);
    sarafan = await composeDemoSarafan({ secretKey: 'admin-page-e2e-secret-key-0123456789abcdef', workerId: 'admin-page-worker', clock, lingerMs: DEMO_WORKER_LINGER_MS });
    sarafan.worker.start();
    const { portalServer, portalPort, appBaseUrl, store, log } = sarafan;
    demo = await startDemoPortal({ server: portalServer, port: portalPort, dataDir: null, appBaseUrl, store, log, clock, history: { seed: 12 } });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(HANG);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.sandbox.close();
    await sarafan?.close();
  });

  /** The analytics tab over the last 12 months, the monthly chart drawn. */
  async function analytics12m(): Promise<FrameLocator> {
    const frame = await openMainPage(page, demo.sandbox.url);
    await openTab(frame, 'analytics');
    await frame.locator('[data-testid="kpis"]').waitFor();
    await frame.locator('[data-testid="period-preset"]').selectOption('last12m');
    await until(page, 'the monthly rows', () => frame.locator('[data-testid="monthly-table"] tbody tr').count(), (n) => n >= 6);
    await frame.locator('[data-testid="figure-monthly"] canvas').waitFor();
    return frame;
  }

  it('shows months of referred revenue in Russian (screenshot)', async () => {
    await setUser(context, demo.sandbox.url, 1, 'ru');
    const frame = await analytics12m();
    expect(await kpi(frame, 'kpi-revenue')).toMatch(/^[\d ]+ ₽$/);
    expect(await kpi(frame, 'kpi-roi')).toMatch(/%$/);
    await shot(page, 'admin-analytics-ru');
  });

  it('speaks English for an English-speaking admin (screenshot)', async () => {
    await setUser(context, demo.sandbox.url, 1, 'en');
    const frame = await analytics12m();
    expect(plain(await frame.locator('[data-testid="tab-analytics"]').textContent())).toBe('Analytics');
    expect(plain(await frame.locator('[data-testid="kpi-revenue"]').textContent())).toContain('Referred revenue');
    expect(plain(await frame.locator('[data-testid="kpi-roi"]').textContent())).toContain('Program ROI');
    await shot(page, 'admin-analytics-en');
    await setUser(context, demo.sandbox.url, 1, 'ru');
  });

  it('on a 390 px wide screen the page does not scroll sideways (tables scroll in their own box)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const frame = await analytics12m();
    const overflow = await frame.locator('body').evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      body: document.body.scrollWidth,
    }));
    // The portal's phone layout gives the frame the screen's width, less the page's padding.
    expect(overflow.client).toBeGreaterThanOrEqual(360);
    expect(overflow.scroll, JSON.stringify(overflow)).toBeLessThanOrEqual(overflow.client);
    expect(overflow.body, JSON.stringify(overflow)).toBeLessThanOrEqual(overflow.client);
    await shot(page, 'admin-analytics-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });
});
