/**
 * The contact and lead tab in happy-dom: loading, not enrolled (enrol), enrolled (code, link,
 * copy with its fallback, QR on demand, balance, tier progress, referred people, ledger paging,
 * coupons), promo activation, and the admin-only adjustment — asserting requests and frame calls.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../client/src/api';
import PersonTab from '../../client/src/views/PersonTab.vue';
import { entry, member, session, tree } from './fixtures';
import { byTestId, FakeApi, FakePortal, flushPromises, mountView, textOf } from './support';

afterEach(() => {
  vi.restoreAllMocks();
  document.body.innerHTML = '';
});

const BASE = '/api/members/contact/5';

function api(m = member(), t = tree(), s = session()): FakeApi {
  return new FakeApi().on(`GET ${BASE}?limit=20`, m).on(`GET ${BASE}/referrals`, t).on('GET /api/session', s);
}

describe('the contact tab', () => {
  it('shows the code, the link, the balance, the tier with progress, the referred people and the history', async () => {
    const portal = new FakePortal();
    portal.people.set('contact:9', 'Сергей Иванов');
    const fake = api().hold(`GET ${BASE}?limit=20`);
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: fake, portal });
    expect(byTestId(wrapper, 'state-loading').exists()).toBe(true);
    fake.release(`GET ${BASE}?limit=20`);
    await flushPromises();
    expect((byTestId(wrapper, 'code-value').element as HTMLInputElement).value).toBe('K7M2QX');
    expect((byTestId(wrapper, 'link-value').element as HTMLInputElement).value).toBe('https://sarafan.example.com/r/p1/K7M2QX');
    expect(textOf(wrapper, 'balance')).toBe('RUB 7,200');
    expect(textOf(wrapper, 'pending')).toBe('RUB 1,000');
    expect(textOf(wrapper, 'tier')).toBe('Silver');
    expect(textOf(wrapper, 'tier-progress')).toContain('To "Gold": RUB 320,000');
    expect(byTestId(wrapper, 'person-contact-9').text()).toBe('Сергей Иванов');
    expect(textOf(wrapper, 'section-referred')).toContain('Counted');
    expect(textOf(wrapper, 'section-referred')).toContain('earned RUB 7,200');
    expect(textOf(wrapper, 'section-history')).toContain('For a referral');
    expect(byTestId(wrapper, 'section-adjust').exists()).toBe(false);
    expect(byTestId(wrapper, 'enroll').exists()).toBe(false);
  });

  it('a person not in the program gets an enrol button, and enrolling shows the new code', async () => {
    const fake = api(member({ enrolled: false, code: null, link: null, joinedAt: null, balance: 0, pending: 0, tier: null, ledger: [], tierProgress: { basis: 'won_amount', value: 0, nextFrom: null }, nextTier: null }), tree({ referrals: [], total: 0, earned: 0 }))
      .on(`POST ${BASE}/enroll`, member({ code: 'NEW234', balance: 0, ledger: [] }));
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: fake });
    expect(textOf(wrapper, 'section-enroll')).toContain('Not in the program yet.');
    // Nothing on record yet: only the ways in, no empty balance, tree or history.
    expect(byTestId(wrapper, 'section-balance').exists()).toBe(false);
    expect(byTestId(wrapper, 'section-history').exists()).toBe(false);
    expect(byTestId(wrapper, 'section-promo').exists()).toBe(true);
    await byTestId(wrapper, 'enroll').trigger('submit');
    await flushPromises();
    expect(fake.calls.at(-1)).toMatchObject({ method: 'POST', path: `${BASE}/enroll` });
    expect((byTestId(wrapper, 'code-value').element as HTMLInputElement).value).toBe('NEW234');
    expect(byTestId(wrapper, 'no-referred').text()).toContain('Give the client the link or the code');
  });

  it('copies the link where the browser allows it, falls back to the copy command, and selects it with a message where both are refused', async () => {
    const writes: string[] = [];
    Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText: async (t: string) => void writes.push(t) } });
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: api() });
    await byTestId(wrapper, 'link-copy').trigger('click');
    await flushPromises();
    expect(writes).toEqual(['https://sarafan.example.com/r/p1/K7M2QX']);
    expect(byTestId(wrapper, 'link-copy').text()).toBe('Copied');

    // Refused, as in a Bitrix24 frame: the copy command copies the selected text instead.
    Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText: async () => Promise.reject(new DOMException('denied', 'NotAllowedError')) } });
    const commands: string[] = [];
    const execCommand = vi.fn((command: string) => {
      commands.push(`${command}:${window.getSelection?.()?.toString() ?? ''}:${(document.activeElement as HTMLInputElement).value}`);
      return true;
    });
    Object.defineProperty(document, 'execCommand', { configurable: true, value: execCommand });
    await byTestId(wrapper, 'link-copy').trigger('click');
    await flushPromises();
    expect(execCommand).toHaveBeenCalledWith('copy');
    expect(commands.at(-1)).toMatch(/https:\/\/sarafan\.example\.com\/r\/p1\/K7M2QX$/);
    expect(byTestId(wrapper, 'link-copy-failed').exists()).toBe(false);

    // Refused both ways: the text stays selected and the manager is told what to press.
    execCommand.mockReturnValue(false);
    await byTestId(wrapper, 'code-copy').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'code-copy-failed').text()).toContain('press Ctrl+C');
    const input = byTestId(wrapper, 'code-value').element as HTMLInputElement;
    expect(document.activeElement).toBe(input);
    expect([input.selectionStart, input.selectionEnd]).toEqual([0, 'K7M2QX'.length]);
  });

  it('pages the history with the cursor the server gave', async () => {
    const fake = api(member({ ledger: [entry({ id: 30 })], nextBefore: 30 })).on(`GET ${BASE}?limit=20&before=30`, member({ ledger: [entry({ id: 12, reason: 'welcome', amount: 500 })], nextBefore: null }));
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: fake });
    await byTestId(wrapper, 'ledger-more').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'entry-30').exists()).toBe(true);
    expect(textOf(wrapper, 'entry-12')).toContain('Welcome bonus');
    expect(byTestId(wrapper, 'ledger-more').exists()).toBe(false);
  });

  it('activates a promo code, and a used one is refused in words', async () => {
    const fake = api()
      .on(`POST ${BASE}/promo`, { code: 'SPRING1', entry: entry({ reason: 'promo', amount: 500 }), balance: 7700, pending: 1000 }, new ApiError(409, 'conflict', 'used', [{ path: 'code', message: 'already_used' }], 'already_used'));
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: fake });
    await byTestId(wrapper, 'promo-code').setValue(' spring1 ');
    await byTestId(wrapper, 'promo').trigger('submit');
    await flushPromises();
    expect(fake.calls.find((c) => c.method === 'POST')?.body).toEqual({ code: 'spring1' });
    expect(textOf(wrapper, 'promo-done')).toBe('Promo code activated: +RUB 500.');
    await byTestId(wrapper, 'promo-code').setValue('SPRING1');
    await byTestId(wrapper, 'promo').trigger('submit');
    await flushPromises();
    expect(textOf(wrapper, 'promo-error')).toBe('This promo code has already been used.');
  });

  it('an admin adjusts the balance; the comment is mandatory', async () => {
    const fake = api(member(), tree(), session({ isAdmin: true })).on(`POST ${BASE}/adjust`, { entity: 'contact', id: 5, entry: entry({ reason: 'adjustment', amount: -200 }), balance: 7000, pending: 1000 });
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: fake });
    await byTestId(wrapper, 'adjust-amount').setValue('-200');
    await byTestId(wrapper, 'adjust').trigger('submit');
    await flushPromises();
    expect(wrapper.text()).toContain('Say why the balance changes.');
    expect(fake.calls.some((c) => c.method === 'POST')).toBe(false);
    await byTestId(wrapper, 'adjust-comment').setValue('Вернули товар');
    await byTestId(wrapper, 'adjust').trigger('submit');
    await flushPromises();
    expect(fake.calls.find((c) => c.method === 'POST')).toEqual({ method: 'POST', path: `${BASE}/adjust`, body: { amount: -200, comment: 'Вернули товар' }, idempotencyKey: 'key-1' });
    expect(textOf(wrapper, 'adjust-done')).toBe('Applied: -RUB 200. Balance: RUB 7,000.');
  });

  it('a non-admin does not see the adjustment; a 403 would say it is for administrators', async () => {
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: api() });
    expect(byTestId(wrapper, 'section-adjust').exists()).toBe(false);
  });

  it('the QR code is made only when asked for, and can be downloaded', async () => {
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: api() });
    await vi.dynamicImportSettled();
    await flushPromises();
    expect(byTestId(wrapper, 'qr-image').exists()).toBe(false);
    await byTestId(wrapper, 'qr-show').trigger('click');
    await vi.waitFor(() => expect(byTestId(wrapper, 'qr-image').exists()).toBe(true));
    expect(byTestId(wrapper, 'qr-image').attributes('src')).toMatch(/^data:image\/png;base64,/);
    expect(byTestId(wrapper, 'qr-download').attributes('download')).toBe('sarafan-K7M2QX.png');
  });

  it('a 401 says to reload the portal', async () => {
    const fake = new FakeApi().on(`GET ${BASE}?limit=20`, new ApiError(401, 'unauthorized', 'no')).on(`GET ${BASE}/referrals`, tree()).on('GET /api/session', session());
    const { wrapper } = await mountView(PersonTab, { entity: 'contact', id: 5 }, { api: fake, lang: 'ru' });
    expect(byTestId(wrapper, 'state-error').text()).toContain('Портал не подтвердил вход');
  });

  it('a lead tab reads the lead', async () => {
    const fake = new FakeApi().on('GET /api/members/lead/8?limit=20', member({ entity: 'lead', id: 8 })).on('GET /api/members/lead/8/referrals', tree({ referrals: [], total: 0, earned: 0 })).on('GET /api/session', session());
    const { wrapper } = await mountView(PersonTab, { entity: 'lead', id: 8 }, { api: fake });
    expect(byTestId(wrapper, 'person-tab').exists()).toBe(true);
  });
});
