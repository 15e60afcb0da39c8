/**
 * The CRM card tabs in headless Chromium (Debian's /usr/bin/chromium through playwright-core),
 * inside the sandbox portal's cards, with the real @bitrix24/b24jssdk in the frame (issue 11):
 * each tab shows the right numbers after a referred deal is won, fits its frame, and every action
 * works — copying the link, opening a referred person, an admin's adjustment, redeeming against a
 * deal, setting a deal's referral by a typed code and with the portal's CRM selector, enrolling a
 * lead and activating a promo code — in Russian and in English. Each assertion reads the page and
 * the stored state (ledger, referrals) or the portal's CRM fields.
 *
 * Screenshots of each tab in both languages are saved to test-artifacts/screenshots/.
 * Never skipped: without Chromium this suite fails and says how to install it.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/bitrix/crm-fields.js';
import { createPromoCampaign } from '../../src/handlers/create-promo-campaign.js';
import type { Actor } from '../../sandbox/types.js';
import { startLive, type Live } from '../support/live.js';

/** Waits are for something to happen; this only turns a hang into a failure naming what was awaited. */
const HANG = 90_000;
const SHOTS = path.resolve(import.meta.dirname, '../../test-artifacts/screenshots');

let live: Live;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const manager: Actor = { userId: 2 };

const portal = () => live.sandbox.portal;
const NB = /[\s\u00a0\u202f]/g;
const plain = (s: string | null): string => (s ?? '').replace(NB, ' ').trim();

let olga: number;
let olgaCode: string;
let sergey: number;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  live = await startLive({ backgroundWorker: true });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // The person has allowed the clipboard when the browser asked; what remains is the frame's policy.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: live.sandbox.url });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: live.sarafanUrl });
  page = await context.newPage();
  page.setDefaultTimeout(HANG);

  // A client who bought (enrolled by the first won deal), and a friend who came with her code.
  olga = portal().addEntity('contact', { NAME: 'Ольга', LAST_NAME: 'Смирнова', PHONE: [{ VALUE: '+79990000001', VALUE_TYPE: 'WORK' }] }, manager);
  const first = portal().addEntity('deal', { TITLE: 'Кухня', CONTACT_ID: olga, STAGE_ID: 'NEW', OPPORTUNITY: 180000 }, manager);
  portal().updateEntity('deal', first, { STAGE_ID: 'WON' }, manager);
  await live.settle();
  olgaCode = String(portal().getEntity('contact', olga)![F.CODE]);
  expect(olgaCode).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);
  sergey = portal().addEntity('contact', { NAME: 'Сергей', LAST_NAME: 'Петров', [F.REF_CODE]: olgaCode }, manager);
  const second = portal().addEntity('deal', { TITLE: 'Прихожая', CONTACT_ID: sergey, STAGE_ID: 'NEW', OPPORTUNITY: 72000 }, manager);
  portal().updateEntity('deal', second, { STAGE_ID: 'WON' }, manager);
  await live.settle();
  expect(Number(portal().getEntity('contact', olga)![F.BALANCE])).toBe(7200);
});

afterAll(async () => {
  await browser?.close();
  await live?.close();
});

/** The header's user and language switch, as a form post sharing the browser's cookies. */
async function setUser(userId: number, lang: 'ru' | 'en'): Promise<void> {
  const res = await context.request.post(`${live.sandbox.url}/_sandbox/user`, { form: { userId: String(userId), lang, back: '/' }, maxRedirects: 0 });
  expect(res.status()).toBe(303);
}

/** Opens a card's Sarafan tab and waits until the Vue client shows its content. */
async function openTab(kind: 'deal' | 'contact' | 'lead', id: number): Promise<FrameLocator> {
  const placement = { deal: 'CRM_DEAL_DETAIL_TAB', contact: 'CRM_CONTACT_DETAIL_TAB', lead: 'CRM_LEAD_DETAIL_TAB' }[kind];
  await page.goto(`${live.sandbox.url}/crm/${kind}/details/${id}/`);
  await page.locator(`[data-testid="tab-${placement}"]`).click();
  const frame = page.frameLocator('[data-testid="tab-area"] [data-testid="app-frame"]');
  await frame.locator('#app[data-state="ready"]').waitFor();
  await frame.locator(kind === 'deal' ? '[data-testid="deal-tab"]' : '[data-testid="person-tab"]').waitFor();
  return frame;
}

/** The frame's box has taken the height of its content (resizeWindowAuto after every change). */
async function expectFitted(frame: FrameLocator): Promise<void> {
  const deadline = Date.now() + HANG;
  for (;;) {
    const content = await frame.locator('#app').evaluate((el) => Math.ceil(el.getBoundingClientRect().height));
    const box = Number(await page.locator('[data-testid="tab-area"] [data-testid="app-frame-wrap"]').getAttribute('data-frame-height'));
    if (Math.abs(box - Math.max(content, 120)) <= 4) return;
    if (Date.now() > deadline) throw new Error(`the frame is ${box} px high, its content ${content} px`);
    await page.waitForTimeout(100);
  }
}

async function shot(name: string): Promise<void> {
  await page.locator('[data-testid="tab-area"]').screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

async function until<T>(what: string, read: () => Promise<T> | T, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + HANG;
  let value = await read();
  while (!ok(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await page.waitForTimeout(200);
    value = await read();
  }
  return value;
}

describe('the contact tab', () => {
  it('shows the code, the link, the balance, the referred friend by name and the history, and fits its frame', async () => {
    await setUser(1, 'ru');
    const frame = await openTab('contact', olga);
    await expect(frame.locator('[data-testid="code-value"]').inputValue()).resolves.toBe(olgaCode);
    const publicId = (await live.installation()).publicId;
    await expect(frame.locator('[data-testid="link-value"]').inputValue()).resolves.toBe(`${live.sarafanUrl}/r/${publicId}/${olgaCode}`);
    expect(plain(await frame.locator('[data-testid="balance"]').textContent())).toBe('7 200 ₽');
    await frame.locator(`[data-testid="person-contact-${sergey}"]`, { hasText: 'Сергей Петров' }).waitFor();
    expect(plain(await frame.locator('[data-testid="section-history"]').textContent())).toContain('За рекомендацию');
    const text = plain(await frame.locator('body').textContent());
    expect(text).not.toMatch(/SDK|место встройки|Контакт #/);
    await expectFitted(frame);
    await shot('contact-ru');
  });

  it('copies the link (the frame has no clipboard permission, as in Bitrix24: the copy command does it)', async () => {
    const frame = await openTab('contact', olga);
    await frame.locator('[data-testid="link-copy"]').click();
    await frame.locator('[data-testid="link-copy"]', { hasText: 'Скопировано' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(`${live.sarafanUrl}/r/${(await live.installation()).publicId}/${olgaCode}`);
  });

  it('opens a referred person\'s card in the portal\'s slider', async () => {
    const frame = await openTab('contact', olga);
    await frame.locator(`[data-testid="person-contact-${sergey}"]`).click();
    await page.locator('[data-testid="slider"]').waitFor();
    const src = String(await page.locator('[data-testid="slider-frame"]').getAttribute('src'));
    expect(new URL(src, live.sandbox.url).pathname).toBe(`/crm/contact/details/${sergey}/`);
    await page.locator('[data-testid="slider-close"]').click();
    await page.locator('[data-testid="slider"]').waitFor({ state: 'detached' });
  });

  it('an admin adjusts the balance with a comment: the ledger records who, the CRM field follows', async () => {
    const frame = await openTab('contact', olga);
    await frame.locator('[data-testid="adjust-amount"]').fill('-200');
    await frame.locator('[data-testid="adjust-comment"]').fill('Возврат товара');
    await frame.locator('[data-testid="adjust-submit"]').click();
    await frame.locator('[data-testid="adjust-done"]').waitFor();
    expect(plain(await frame.locator('[data-testid="adjust-done"]').textContent())).toBe('Проведено: -200 ₽. Баланс: 7 000 ₽.');
    expect(plain(await frame.locator('[data-testid="balance"]').textContent())).toBe('7 000 ₽');
    const pid = (await live.installation()).id;
    const member = await live.deps.store.members.findByEntity(pid, 'contact', olga);
    const [latest] = await live.deps.store.ledger.forMember(pid, member!.id, { limit: 1 });
    expect([latest?.reason, latest?.amount, latest?.comment, latest?.causedBy]).toEqual(['adjustment', -200_00, 'Возврат товара', 'user:1']);
    await until('the balance field', () => Number(portal().getEntity('contact', olga)![F.BALANCE]), (v) => v === 7000);
  });

  it('a manager (not an admin) has no adjustment', async () => {
    await setUser(2, 'ru');
    const frame = await openTab('contact', olga);
    expect(await frame.locator('[data-testid="section-adjust"]').count()).toBe(0);
    await setUser(1, 'ru');
  });
});

describe('the deal tab', () => {
  it('redeems bonus against an open deal of the client within the limit, and shows the new total', async () => {
    const deal = portal().addEntity('deal', { TITLE: 'Шкаф', CONTACT_ID: olga, STAGE_ID: 'NEW', OPPORTUNITY: 10000 }, manager);
    await live.settle();
    const frame = await openTab('deal', deal);
    expect(plain(await frame.locator('[data-testid="client-balance"]').textContent())).toBe('7 000 ₽');
    expect(plain(await frame.locator('[data-testid="deal-to-pay"]').textContent())).toBe('10 000 ₽');
    await frame.locator('[data-testid="redeem-amount"]').fill('6000');
    await frame.locator('text=Можно списать до 5 000').first().waitFor();
    await frame.locator('[data-testid="redeem-amount"]').fill('3000');
    await frame.locator('[data-testid="redeem-submit"]').click();
    await frame.locator('[data-testid="redeem-done"]').waitFor();
    expect(plain(await frame.locator('[data-testid="redeem-done"]').textContent())).toBe('Списано 3 000 ₽. Сумма сделки к оплате: 7 000 ₽.');
    expect(plain(await frame.locator('[data-testid="deal-to-pay"]').textContent())).toBe('7 000 ₽');
    expect(plain(await frame.locator('[data-testid="client-balance"]').textContent())).toBe('4 000 ₽');
    const pid = (await live.installation()).id;
    expect((await live.deps.store.ledger.forDeal(pid, deal)).map((e) => [e.reason, e.amount])).toEqual([['redemption', -3000_00]]);
    await until('the deal\'s redeemed field', () => Number(portal().getEntity('deal', deal)![F.REDEEMED]), (v) => v === 3000);
    await expectFitted(frame);
    await shot('deal-ru');
  });

  it('a typed code is checked as it is typed and saved to the deal; the referral then shows', async () => {
    const pavel = portal().addEntity('contact', { NAME: 'Павел', LAST_NAME: 'Новиков' }, manager);
    const deal = portal().addEntity('deal', { TITLE: 'Стол', CONTACT_ID: pavel, STAGE_ID: 'NEW', OPPORTUNITY: 20000 }, manager);
    await live.settle();
    const frame = await openTab('deal', deal);
    await frame.locator('[data-testid="deal-no-referral"]').waitFor();
    await frame.locator('[data-testid="referral-code-input"]').fill('ZZZZZZ');
    await frame.locator('text=Такого кода нет в программе.').waitFor();
    await frame.locator('[data-testid="referral-code-input"]').fill(olgaCode.toLowerCase());
    await frame.locator('text=Код принадлежит: Ольга Смирнова').waitFor();
    await frame.locator('[data-testid="referral-code-submit"]').click();
    await frame.locator('[data-testid="deal-referral-code"]', { hasText: olgaCode }).waitFor();
    await frame.locator(`[data-testid="person-contact-${olga}"]`, { hasText: 'Ольга Смирнова' }).waitFor();
    expect(portal().getEntity('deal', deal)![F.REF_CODE]).toBe(olgaCode);
    const pid = (await live.installation()).id;
    const referee = await live.deps.store.members.findByEntity(pid, 'contact', pavel);
    const referrer = await live.deps.store.members.findByEntity(pid, 'contact', olga);
    const referrals = await live.deps.store.referrals.ofReferees(pid, [referee!.id]);
    expect(referrals.map((r) => [r.status, r.referrerMemberId])).toEqual([['active', referrer!.id]]);
  });

  it('the referrer can be picked with the portal\'s CRM selector', async () => {
    const irina = portal().addEntity('contact', { NAME: 'Ирина', LAST_NAME: 'Белова' }, manager);
    const deal = portal().addEntity('deal', { TITLE: 'Кресло', CONTACT_ID: irina, STAGE_ID: 'NEW', OPPORTUNITY: 15000 }, manager);
    await live.settle();
    const frame = await openTab('deal', deal);
    await frame.locator('[data-testid="referral-pick"]').click();
    const selector = page.locator('[data-testid="crm-selector"]');
    await selector.waitFor();
    await selector.locator('[data-testid="crm-search"]').fill('Смирнова');
    await selector.locator(`[data-testid="crm-item-C_${olga}"]`).click();
    await selector.locator('[data-testid="crm-select"]').click();
    await frame.locator(`[data-testid="deal-referral"] [data-testid="person-contact-${olga}"]`).waitFor();
    expect(portal().getEntity('deal', deal)![F.REFERRER]).toBe(`C_${olga}`);
  });
});

describe('the lead tab', () => {
  it('enrols a lead not yet in the program, then activates a promo code for it', async () => {
    const lead = portal().addEntity('lead', { TITLE: 'Заявка с сайта', NAME: 'Анна', LAST_NAME: 'Кузнецова' }, manager);
    await live.settle();
    const pid = (await live.installation()).id;
    const campaign = await createPromoCampaign(live.deps, pid, { name: 'Весна', count: 1, value: 500_00, expiresAt: null }, 1);
    const [promo] = await live.deps.store.promo.codes(pid, campaign.id, { limit: 1 });
    const frame = await openTab('lead', lead);
    await frame.locator('[data-testid="section-enroll"]').waitFor();
    await frame.locator('[data-testid="enroll-submit"]').click();
    await frame.locator('[data-testid="code-value"]').waitFor();
    const code = await frame.locator('[data-testid="code-value"]').inputValue();
    expect((await live.deps.store.members.findByEntity(pid, 'lead', lead))?.code).toBe(code);
    await until('the lead\'s code field', () => portal().getEntity('lead', lead)![F.CODE], (v) => v === code);

    await frame.locator('[data-testid="promo-code"]').fill(promo!.code);
    await frame.locator('[data-testid="promo-submit"]').click();
    await frame.locator('[data-testid="promo-done"]').waitFor();
    expect(plain(await frame.locator('[data-testid="promo-done"]').textContent())).toBe('Промокод активирован: +500 ₽.');
    expect(plain(await frame.locator('[data-testid="balance"]').textContent())).toBe('500 ₽');
    await frame.locator('[data-testid="promo-code"]').fill(promo!.code);
    await frame.locator('[data-testid="promo-submit"]').click();
    await frame.locator('[data-testid="promo-error"]', { hasText: 'Этот промокод уже использован.' }).waitFor();
    await expectFitted(frame);
    await shot('lead-ru');
  });
});

describe('in English', () => {
  it('each tab speaks English for an English-speaking user', async () => {
    await setUser(1, 'en');
    const contact = await openTab('contact', olga);
    expect(plain(await contact.locator('[data-testid="section-balance"]').textContent())).toContain('Available');
    expect(plain(await contact.locator('[data-testid="balance"]').textContent())).toMatch(/^RUB 4,000$|^₽4,000$/);
    await expectFitted(contact);
    await shot('contact-en');
    const deals = await live.deps.store.ledger.forMember((await live.installation()).id, (await live.deps.store.members.findByEntity((await live.installation()).id, 'contact', olga))!.id, { limit: 20 });
    const dealId = deals.find((e) => e.reason === 'redemption')!.dealId!;
    const deal = await openTab('deal', dealId);
    expect(plain(await deal.locator('[data-testid="section-client"]').textContent())).toContain('Pay with bonus');
    await shot('deal-en');
    const lead = portal().addEntity('lead', { TITLE: 'Website request', NAME: 'John' }, manager);
    await live.settle();
    const leadTab = await openTab('lead', lead);
    expect(plain(await leadTab.locator('[data-testid="section-enroll"]').textContent())).toContain('Not in the program yet.');
    await shot('lead-en');
    await setUser(1, 'ru');
  });
});
