/**
 * End to end in headless Chromium (Debian's /usr/bin/chromium through playwright-core): a person
 * in the sandbox's web CRM installs Sarafan through the wizard frame, wins a referred deal with
 * the stage buttons, sees the referrer's bonus in the CRM fields, and opens the Sarafan tab of a
 * deal card, where the real @bitrix24/b24jssdk initialises over the frame protocol.
 *
 * Never skipped: without Chromium this suite fails and says how to install it.
 */
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { DEMO_CLIENT_ID } from '../../server/demo/sandbox-demo.js';
import { startLive, type Live } from '../support/live.js';

/**
 * Every wait below is for something to happen (an element, a URL, a field's value); this only
 * turns a hang into a failure that names what was awaited. It is far beyond what a slow, busy
 * machine needs, and under the project's test timeout (vitest.config.ts).
 */
const HANG = 90_000;

let live: Live;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  live = await startLive({ install: false, backgroundWorker: true, limits: { drainPerSec: 2, burst: 50 } });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(HANG);
});

afterAll(async () => {
  await browser?.close();
  await live?.close();
});

/** Reloads until the input shows the value: Sarafan writes the field a moment after the change. */
async function waitForField(url: string, field: string, expected: RegExp): Promise<string> {
  const deadline = Date.now() + HANG;
  let value = '';
  while (Date.now() < deadline) {
    await page.goto(url);
    value = await page.locator(`[data-testid="field-${field}"]`).inputValue();
    if (expected.test(value)) return value;
    await page.waitForTimeout(300);
  }
  throw new Error(`${field} at ${url} is "${value}", expected ${expected}`);
}

function idFromUrl(url: string): number {
  const m = /\/details\/(\d+)\//.exec(url);
  if (!m) throw new Error(`not a card URL: ${url}`);
  return Number(m[1]);
}

describe('in the sandbox portal, in a browser', () => {
  it('installs Sarafan through the wizard page: the frame finishes the install with the SDK', async () => {
    await page.goto(`${live.sandbox.url}/marketplace/`);
    await expect(page.locator('[data-testid="install-status"]').first().textContent()).resolves.toContain('Не установлено');
    await page.locator(`[data-testid="app-${DEMO_CLIENT_ID}"] [data-testid="install"]`).click();
    const wizard = page.frameLocator('[data-testid="app-frame"]');
    await wizard.locator('#status[data-state="finished"]').waitFor();
    await page.locator('[data-testid="install-status"]', { hasText: 'Установлено' }).waitFor();

    const installation = await live.installation();
    expect(installation.status).toBe('active');
    expect(live.sandbox.portal.app(DEMO_CLIENT_ID)?.installed).toBe(true);
    expect(live.sandbox.portal.placements()).toHaveLength(3);
    expect(live.sandbox.outbound.deliveries.filter((d) => d.event === 'ONAPPINSTALL').map((d) => d.status)).toEqual([200]);
  });

  let referrer: number;
  let deal: number;

  it('a referred deal won with the stage buttons credits the referrer, and the CRM fields show it', async () => {
    // A client who already bought: winning a first deal enrols them.
    await page.goto(`${live.sandbox.url}/crm/contact/details/0/`);
    await page.locator('[data-testid="field-NAME"]').fill('Ольга');
    await page.locator('[data-testid="field-LAST_NAME"]').fill('Смирнова');
    await page.locator('[data-testid="save"]').click();
    await page.waitForURL(/\/crm\/contact\/details\/\d+\//);
    referrer = idFromUrl(page.url());
    await page.goto(`${live.sandbox.url}/crm/deal/details/0/?contact=${referrer}`);
    await page.locator('[data-testid="field-TITLE"]').fill('Кухонный гарнитур');
    await page.locator('[data-testid="field-OPPORTUNITY"]').fill('180000');
    await page.locator('[data-testid="save"]').click();
    await page.waitForURL(/\/crm\/deal\/details\/\d+\//);
    await page.locator('[data-testid="stage-WON"]').click();
    await page.waitForLoadState();
    const code = await waitForField(`${live.sandbox.url}/crm/contact/details/${referrer}/`, F.CODE, /^[2-9A-HJKMNP-Z]{6,8}$/);

    // A friend comes with the code; the manager types it into the friend's card.
    await page.goto(`${live.sandbox.url}/crm/contact/details/0/`);
    await page.locator('[data-testid="field-NAME"]').fill('Сергей');
    await page.locator(`[data-testid="field-${F.REF_CODE}"]`).fill(code);
    await page.locator('[data-testid="save"]').click();
    await page.waitForURL(/\/crm\/contact\/details\/\d+\//);
    const friend = idFromUrl(page.url());
    await page.goto(`${live.sandbox.url}/crm/deal/details/0/?contact=${friend}`);
    await page.locator('[data-testid="field-TITLE"]').fill('Прихожая');
    await page.locator('[data-testid="field-OPPORTUNITY"]').fill('72000');
    await page.locator('[data-testid="save"]').click();
    await page.waitForURL(/\/crm\/deal\/details\/\d+\//);
    deal = idFromUrl(page.url());
    await page.locator('[data-testid="stage-EXECUTING"]').click();
    await page.waitForLoadState();
    await page.locator('[data-testid="stage-WON"]').click();
    await page.waitForLoadState();

    expect(await waitForField(`${live.sandbox.url}/crm/contact/details/${referrer}/`, F.BALANCE, /^7\s?200([.,]0+)?$/)).toBeTruthy();
    expect(await waitForField(`${live.sandbox.url}/crm/deal/details/${deal}/`, F.REWARD, /^7\s?200([.,]0+)?$/)).toBeTruthy();
    const ledger = await live.deps.store.ledger.forDeal((await live.installation()).id, deal);
    expect(ledger.map((e) => [e.kind, e.amount])).toEqual([['credit', 7200_00]]);
  });

  it('opens the Sarafan tab inside the deal card, with the SDK initialised and the deal’s reward shown', async () => {
    await page.goto(`${live.sandbox.url}/crm/deal/details/${deal}/`);
    await page.locator('[data-testid="tab-CRM_DEAL_DETAIL_TAB"]').click();
    const frame = page.frameLocator('[data-testid="app-frame"]');
    await frame.locator('#app[data-state="ready"]').waitFor();
    await frame.locator('[data-testid="deal-tab"]').waitFor();
    const text = (await frame.locator('[data-testid="section-rewards"]').textContent()) ?? '';
    expect(text).toMatch(/7[\s\u00a0\u202f]?200/);
    expect(await frame.locator('body').textContent()).not.toMatch(/SDK|место встройки/);
    // The frame asked the portal to fit its height to the content.
    const height = await page.locator('[data-testid="app-frame"]').evaluate((el) => (el as HTMLIFrameElement).getBoundingClientRect().height);
    expect(height).toBeGreaterThan(50);
  });
});
