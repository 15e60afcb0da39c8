/**
 * The deal tab (CRM_DEAL_DETAIL_TAB) in happy-dom: each state (loading, ready, empty, error),
 * the referral editor (a code checked as it is typed, the CRM selector), and redeeming bonus
 * against the deal — asserting the requests made and the frame calls, not only the text.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../client/src/api';
import DealTab from '../../client/src/views/DealTab.vue';
import { deal, session } from './fixtures';
import { byTestId, FakeApi, FakePortal, flushPromises, mountView, textOf } from './support';

afterEach(() => {
  vi.useRealTimers();
  document.body.innerHTML = '';
});

function api(d = deal(), s = session()): FakeApi {
  return new FakeApi().on('GET /api/deals/12', d).on('GET /api/session', s);
}

describe('the deal tab', () => {
  it('shows a loading state until the deal arrives, then the referral, the rewards and the client', async () => {
    const fake = api().hold('GET /api/deals/12');
    const portal = new FakePortal();
    portal.people.set('contact:5', 'Ольга Смирнова');
    portal.people.set('contact:9', 'Сергей Иванов');
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: fake, portal });
    expect(byTestId(wrapper, 'state-loading').exists()).toBe(true);
    fake.release('GET /api/deals/12');
    await flushPromises();
    expect(byTestId(wrapper, 'state-loading').exists()).toBe(false);
    expect(textOf(wrapper, 'deal-referral-code')).toBe('K7M2QX');
    // People by name, as links that open their card.
    const referrer = byTestId(wrapper, 'person-contact-5');
    expect(referrer.text()).toBe('Ольга Смирнова');
    await referrer.trigger('click');
    expect(portal.opened).toEqual([{ entity: 'contact', id: 5 }]);
    expect(textOf(wrapper, 'section-rewards')).toContain('For a referral');
    expect(textOf(wrapper, 'section-rewards')).toContain('+RUB 7,200');
    expect(byTestId(wrapper, 'status-available').exists()).toBe(true);
    expect(textOf(wrapper, 'client-balance')).toBe('RUB 3,000');
    expect(wrapper.text()).not.toMatch(/SDK|placement/i);
    expect(fake.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /api/deals/12', 'GET /api/session']);
  });

  it('in Russian for a Russian portal, amounts the Russian way', async () => {
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: api(), lang: 'ru' });
    expect(textOf(wrapper, 'section-rewards')).toContain('За рекомендацию');
    expect(byTestId(wrapper, 'client-balance').text().replace(/\s/g, ' ')).toBe('3 000 ₽');
    expect(byTestId(wrapper, 'person-contact-5').text()).toBe('Контакт №5');
  });

  it('a deal without a referral, rewards or client says what to do', async () => {
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: api(deal({ referral: null, entries: [], client: null })) });
    expect(textOf(wrapper, 'deal-no-referral')).toContain('Type a code or pick who referred the client');
    expect(textOf(wrapper, 'no-rewards')).toContain('appears when the deal is won');
    expect(textOf(wrapper, 'no-client')).toContain('link a contact or lead');
    expect(byTestId(wrapper, 'redeem').exists()).toBe(false);
  });

  it('a rejected referral shows the fraud verdict with its reason, and can be set again', async () => {
    const rejected = deal({ referral: { id: 3, code: 'K7M2QX', referrer: { entity: 'contact', id: 5 }, source: 'deal', status: 'rejected', rejectReason: 'self_referral', override: null }, entries: [] });
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: api(rejected) });
    expect(textOf(wrapper, 'deal-referral-rejected')).toContain('self-referral (same client, phone or e-mail)');
    expect(byTestId(wrapper, 'referral-code-input').exists()).toBe(true);
  });

  it('an error says what happened and retries on request', async () => {
    const fake = new FakeApi()
      .on('GET /api/deals/12', new ApiError(500, 'internal', 'Internal server error'), deal())
      .on('GET /api/session', session());
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: fake });
    expect(textOf(wrapper, 'state-error')).toContain('Could not load the data: Internal server error');
    await byTestId(wrapper, 'state-error').find('button').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'deal-tab').exists()).toBe(true);
  });

  it('a typed code is checked as it is typed; a valid one is written to the deal and the tab waits for the referral', async () => {
    vi.useFakeTimers();
    const none = deal({ referral: null, entries: [] });
    const fake = new FakeApi()
      .on('GET /api/deals/12', none, none, deal())
      .on('GET /api/session', session())
      .on('GET /api/codes/ZZZZ', { code: 'ZZZZ', valid: false, reason: 'unknown_code' })
      .on('GET /api/codes/K7M2QX', { code: 'K7M2QX', valid: true, referrer: { entity: 'contact', id: 5 } });
    const portal = new FakePortal();
    portal.people.set('contact:5', 'Ольга Смирнова');
    const { wrapper, delays } = await mountView(DealTab, { dealId: 12 }, { api: fake, portal });
    const input = byTestId(wrapper, 'referral-code-input');
    await input.setValue('zz');
    await vi.advanceTimersByTimeAsync(300);
    expect(wrapper.text()).toContain('A code is 4–16 Latin letters and digits');
    await input.setValue('zzzz');
    await vi.advanceTimersByTimeAsync(300);
    expect(wrapper.text()).toContain('There is no such code in the program');
    expect(byTestId(wrapper, 'referral-code-submit').attributes('disabled')).toBeDefined();
    await input.setValue('k7m2qx');
    await vi.advanceTimersByTimeAsync(300);
    expect(wrapper.text()).toContain('The code belongs to Ольга Смирнова');
    await byTestId(wrapper, 'referral-code').trigger('submit');
    await vi.runAllTimersAsync();
    expect(portal.dealWrites).toEqual([{ dealId: 12, claim: { code: 'K7M2QX' } }]);
    // Polled until the referral appeared (the second poll), one second apart.
    expect(delays).toEqual([1000, 1000]);
    expect(textOf(wrapper, 'deal-referral-code')).toBe('K7M2QX');
    // Only the two codes that looked like codes were asked about.
    expect(fake.calls.filter((c) => c.path.startsWith('/api/codes/')).map((c) => c.path)).toEqual(['/api/codes/ZZZZ', '/api/codes/K7M2QX']);
  });

  it('the referrer can be picked in the portal\'s CRM selector', async () => {
    const none = deal({ referral: null, entries: [] });
    const fake = new FakeApi().on('GET /api/deals/12', none, deal()).on('GET /api/session', session());
    const portal = new FakePortal();
    portal.picks.push({ entity: 'lead', id: 44, title: 'Анна' });
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: fake, portal });
    await byTestId(wrapper, 'referral-pick').trigger('click');
    await flushPromises();
    expect(portal.dealWrites).toEqual([{ dealId: 12, claim: { referrer: { entity: 'lead', id: 44 } } }]);
    expect(byTestId(wrapper, 'deal-referral').exists()).toBe(true);
  });

  it('a selector closed without a choice (never answered, as in Bitrix24) leaves the button usable', async () => {
    const none = deal({ referral: null, entries: [] });
    const portal = new FakePortal();
    let opened = 0;
    portal.pickPerson = () => {
      opened++;
      return new Promise(() => undefined);
    };
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: api(none), portal });
    await byTestId(wrapper, 'referral-pick').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'referral-pick').attributes('disabled')).toBeUndefined();
    await byTestId(wrapper, 'referral-pick').trigger('click');
    expect(opened).toBe(2);
    expect(portal.dealWrites).toEqual([]);
  });

  it('redeems within the limit, shows the new deal total, and sends an idempotency key', async () => {
    const after = deal({ client: { entity: 'contact', id: 9, balance: 1000, pending: 0 }, redemption: { dealAmount: 72000, dealCurrency: 'RUB', redeemed: 2000, maxNow: 1000, open: true, blocked: null }, dealTotal: 70000 });
    const fake = api()
      .on('GET /api/deals/12', deal(), after)
      .on('POST /api/deals/12/redeem', { dealId: 12, dealRedeemed: 2000 });
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: fake });
    expect(textOf(wrapper, 'deal-to-pay')).toBe('RUB 72,000');
    const amount = byTestId(wrapper, 'redeem-amount');
    await amount.setValue('3500');
    expect(wrapper.text().replace(/[\u00a0\u202f]/g, ' ')).toContain('Up to RUB 3,000');
    expect(byTestId(wrapper, 'redeem-submit').attributes('disabled')).toBeDefined();
    await amount.setValue('2000');
    await byTestId(wrapper, 'redeem').trigger('submit');
    await flushPromises();
    const post = fake.calls.find((c) => c.method === 'POST');
    expect(post).toEqual({ method: 'POST', path: '/api/deals/12/redeem', body: { amount: 2000 }, idempotencyKey: 'key-1' });
    expect(textOf(wrapper, 'redeem-done')).toBe('Redeemed RUB 2,000. The deal now costs RUB 70,000.');
    expect(textOf(wrapper, 'deal-to-pay')).toBe('RUB 70,000');
    expect(textOf(wrapper, 'client-balance')).toBe('RUB 1,000');
  });

  it('a refused redemption says why in words', async () => {
    const fake = api().on('POST /api/deals/12/redeem', new ApiError(409, 'conflict', 'no', [], 'insufficient_balance'));
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: fake });
    await byTestId(wrapper, 'redeem-max').trigger('click');
    await byTestId(wrapper, 'redeem').trigger('submit');
    await flushPromises();
    expect(textOf(wrapper, 'redeem-error')).toBe('The client does not have enough bonus.');
  });

  it('nothing to redeem: says why instead of a form', async () => {
    const { wrapper } = await mountView(DealTab, { dealId: 12 }, { api: api(deal({ client: { entity: 'contact', id: 9, balance: 0, pending: 0 }, redemption: { dealAmount: 72000, dealCurrency: 'RUB', redeemed: 0, maxNow: 0, open: true, blocked: 'insufficient_balance' } })) });
    expect(textOf(wrapper, 'redeem-nothing')).toContain('the client has no available bonus');
    expect(byTestId(wrapper, 'redeem').exists()).toBe(false);
  });
});
