/** The main page (PLACEMENT DEFAULT) in happy-dom: the program for an admin, a note for others, errors. */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../client/src/api';
import MainPage from '../../client/src/views/MainPage.vue';
import { byTestId, FakeApi, FakePortal, flushPromises, mountView, textOf } from './support';

afterEach(() => {
  document.body.innerHTML = '';
});

const program = {
  currency: 'RUB',
  referral: { enabled: true, levels: [{ percent: 10 }, { fixed: 500 }], referee: { fixed: 300 } },
  redemption: { maxPercentOfDeal: 50 },
  expiry: { days: 365 },
};

function admin(): FakePortal {
  const p = new FakePortal();
  p.placement = 'DEFAULT';
  p.isAdmin = true;
  return p;
}

describe('the main page', () => {
  it('shows an admin the program in force with its version', async () => {
    const api = new FakeApi()
      .on('GET /api/program', { version: 3, program })
      .on('GET /api/program/versions', { versions: [] })
      .on('POST /api/program/preview', { currency: 'RUB', deal: { amount: 100_000, currency: 'RUB', depth: 5 }, priced: true, entries: [], total: 0, fx: null });
    const { wrapper } = await mountView(MainPage, {}, { api, portal: admin() });
    const text = textOf(wrapper, 'program');
    expect(text).toContain('Program · Version 3');
    expect(text).toContain('Level 1 — 10 %');
    expect(text).toContain('Level 2 — RUB 500');
    expect(text).toContain('Welcome bonus for the newcomer: RUB 300');
    expect(text).toContain('up to 50% of a deal');
    expect(text).toContain('Bonus expires after 365 days');
    // The settings form below the summary reads the history and previews the program in force.
    expect(api.calls.map((c) => c.path)).toEqual(['/api/program', '/api/program/versions', '/api/program/preview']);
  });

  it('tells a manager the settings are for administrators, and asks the server nothing', async () => {
    const api = new FakeApi();
    const portal = new FakePortal();
    portal.placement = 'DEFAULT';
    const { wrapper } = await mountView(MainPage, {}, { api, portal, lang: 'ru' });
    expect(byTestId(wrapper, 'admins-only').text()).toBe('Настройки программы видят администраторы портала.');
    expect(api.calls).toEqual([]);
  });

  it('a refusal from the server (403) says it is for administrators, and can be retried', async () => {
    const api = new FakeApi().on('GET /api/program', new ApiError(403, 'forbidden', 'Admins only'), { version: 1, program });
    const { wrapper } = await mountView(MainPage, {}, { api, portal: admin() });
    expect(byTestId(wrapper, 'state-error').text()).toContain('Only portal administrators can do this.');
    await byTestId(wrapper, 'state-error').find('button').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'program').exists()).toBe(true);
  });
});
