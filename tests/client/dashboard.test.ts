/**
 * The admin page in happy-dom: its tabs (remembered across a reload, admins only) and the
 * analytics panel — the query for each period and pipeline, every figure formatted with the rule
 * it is computed by, ROI without costs, the empty and error states, and charts that load lazily
 * while their numbers are always in a table beside them.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../client/src/api';
import type { BarSpec } from '../../client/src/components/admin/bar-chart';
import AnalyticsPanel from '../../client/src/views/admin/AnalyticsPanel.vue';
import MainPage from '../../client/src/views/MainPage.vue';
import { analytics, health } from './fixtures';
import { byTestId, FakeApi, FakePortal, flushPromises, mountView, textOf } from './support';

// The chart module (chart.js), replaced by one that counts its loads and records what it draws:
// the panel must fetch it on first use only (a dynamic import), never with its own module.
const charts = vi.hoisted(() => ({ loads: 0, drawn: [] as { labels: string[]; values: number[][]; horizontal: boolean }[] }));
vi.mock('../../client/src/components/admin/bar-chart', () => {
  charts.loads++;
  return {
    drawBars: (_canvas: HTMLCanvasElement, spec: BarSpec) => {
      charts.drawn.push({ labels: spec.labels, values: spec.series.map((x) => x.values), horizontal: !!spec.horizontal });
      return { update: () => undefined, destroy: () => undefined };
    },
  };
});

beforeEach(() => {
  charts.drawn = [];
  window.history.replaceState(null, '', '/');
  window.sessionStorage.clear();
});
afterEach(() => {
  document.body.innerHTML = '';
});

const LAST30 = '/api/analytics?from=2026-11-04&to=2026-12-03';
const program = { currency: 'RUB', referral: { enabled: true, levels: [{ percent: 10 }], referee: null }, redemption: { maxPercentOfDeal: 50 }, expiry: { days: 0 } };

function admin(lang: 'ru' | 'en' = 'en'): FakePortal {
  const p = new FakePortal();
  p.placement = 'DEFAULT';
  p.isAdmin = true;
  p.lang = lang;
  p.pipelineList = [
    { id: 0, name: 'General' },
    { id: 2, name: 'Wholesale' },
  ];
  p.people.set('contact:5', 'Anna Smirnova');
  return p;
}

const plain = (s: string): string => s.replace(/[\u00a0\u202f]/g, ' ');

// First in the file: once loaded, a module stays loaded for the file's other tests.
describe('the dashboard charts', () => {
  it('loads the chart module only when the charts are shown, and the numbers are there without it', async () => {
    expect(charts.loads).toBe(0);
    const api = new FakeApi().on(`GET ${LAST30}`, analytics()).hold(`GET ${LAST30}`);
    const { wrapper } = await mountView(AnalyticsPanel, {}, { api, portal: admin() });
    // Loading the panel did not load the charts.
    expect(charts.loads).toBe(0);
    api.release(`GET ${LAST30}`);
    await flushPromises();
    await vi.waitFor(() => expect(charts.drawn).toHaveLength(4));
    expect(wrapper.findAll('[data-testid="chart-canvas"]')).toHaveLength(4);
    expect(charts.loads).toBe(1);
    expect(charts.drawn[0]).toEqual({ labels: ['Link clicks', 'Came by referral', 'Referred deals', 'Won deals'], values: [[400, 100, 40, 10]], horizontal: true });
    expect(charts.drawn[1]).toEqual({
      labels: ['Nov 2026', 'Dec 2026'],
      values: [
        [900000, 350000],
        [90000, 35000],
      ],
      horizontal: false,
    });
    // Every chart carries its numbers beside it.
    for (const id of ['figure-funnel', 'figure-monthly', 'figure-segments', 'figure-tiers']) {
      expect(byTestId(wrapper, id).find('ol, ul, table').exists()).toBe(true);
    }
  });
});

describe('the admin page tabs', () => {
  it('an admin starts on the program, switches tabs by click and by arrow keys, and a reload keeps the tab', async () => {
    const api = new FakeApi()
      .on('GET /api/program', { version: 2, program })
      .on('GET /api/program/versions', { versions: [] })
      .on('POST /api/program/preview', { currency: 'RUB', deal: { amount: 100_000, currency: 'RUB', depth: 5 }, priced: true, entries: [], total: 0, fx: null })
      .on(`GET ${LAST30}`, analytics())
      .on('GET /api/health', health());
    const { wrapper } = await mountView(MainPage, {}, { api, portal: admin() });
    expect(wrapper.findAll('[role="tab"]').map((t) => t.text())).toEqual(['Program', 'Analytics', 'Ledger', 'Health']);
    expect(byTestId(wrapper, 'tab-program').attributes('aria-selected')).toBe('true');
    expect(byTestId(wrapper, 'program').exists()).toBe(true);

    await byTestId(wrapper, 'tab-analytics').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'panel-analytics').exists()).toBe(true);
    expect(byTestId(wrapper, 'program').exists()).toBe(false);
    expect(byTestId(wrapper, 'kpi-revenue').exists()).toBe(true);
    expect(window.location.hash).toBe('#tab=analytics');
    expect(window.sessionStorage.getItem('sarafan.main.tab')).toBe('analytics');

    // The keyboard: End jumps to the last tab and focuses it (WAI-ARIA tabs).
    await byTestId(wrapper, 'tab-analytics').trigger('keydown', { key: 'End' });
    await flushPromises();
    expect(byTestId(wrapper, 'tab-health').attributes('aria-selected')).toBe('true');
    expect(document.activeElement?.getAttribute('data-testid')).toBe('tab-health');
    expect(byTestId(wrapper, 'health-panel').exists()).toBe(true);
    // The program tab reads the program, its history and the preview; each other tab reads once.
    expect(api.calls.map((c) => c.path)).toEqual(['/api/program', '/api/program/versions', '/api/program/preview', LAST30, '/api/health']);
    wrapper.unmount();

    // The frame reloads: the hash chooses the tab.
    const again = await mountView(MainPage, {}, { api, portal: admin() });
    expect(byTestId(again.wrapper, 'tab-health').attributes('aria-selected')).toBe('true');
    expect(byTestId(again.wrapper, 'health-panel').exists()).toBe(true);
    again.wrapper.unmount();

    // The portal page reloads the frame without our hash: the session remembers.
    window.history.replaceState(null, '', '/');
    const third = await mountView(MainPage, {}, { api, portal: admin() });
    expect(byTestId(third.wrapper, 'tab-health').attributes('aria-selected')).toBe('true');
  });

  it('Russian tab names for a Russian portal', async () => {
    const api = new FakeApi().on('GET /api/program', { version: 2, program });
    const { wrapper } = await mountView(MainPage, {}, { api, portal: admin('ru') });
    expect(wrapper.findAll('[role="tab"]').map((t) => t.text())).toEqual(['Программа', 'Аналитика', 'Журнал', 'Состояние']);
  });

  it('a non-admin sees only the notice: no tabs, no request', async () => {
    const api = new FakeApi();
    const portal = admin();
    portal.isAdmin = false;
    window.history.replaceState(null, '', '/#tab=analytics');
    const { wrapper } = await mountView(MainPage, {}, { api, portal });
    expect(byTestId(wrapper, 'admins-only').text()).toBe('Program settings are shown to portal administrators.');
    expect(byTestId(wrapper, 'admin-tabs').exists()).toBe(false);
    expect(api.calls).toEqual([]);
  });
});

describe('the analytics panel', () => {
  it('asks for the last 30 days of every pipeline first, then for the chosen preset, pipeline and custom days', async () => {
    const api = new FakeApi()
      .on(`GET ${LAST30}`, analytics())
      .on('GET /api/analytics?from=2026-10-01&to=2026-12-03', analytics())
      .on('GET /api/analytics?from=2026-10-01&to=2026-12-03&category=2', analytics({ category: 2 }))
      .on('GET /api/analytics?from=2026-01-01&to=2026-12-03&category=2', analytics({ category: 2 }))
      .on('GET /api/analytics?category=2', analytics({ category: 2 }));
    const { wrapper } = await mountView(AnalyticsPanel, {}, { api, portal: admin(), now: new Date('2026-12-03T10:00:00.000Z') });
    expect(byTestId(wrapper, 'pipeline').findAll('option').map((o) => o.text())).toEqual(['All pipelines', 'General', 'Wholesale']);

    await byTestId(wrapper, 'period-preset').setValue('quarter');
    await flushPromises();
    await byTestId(wrapper, 'pipeline').setValue('2');
    await flushPromises();
    await byTestId(wrapper, 'period-preset').setValue('last12m');
    await flushPromises();
    await byTestId(wrapper, 'period-preset').setValue('all');
    await flushPromises();
    expect(api.calls.map((c) => c.path)).toEqual([
      LAST30,
      '/api/analytics?from=2026-10-01&to=2026-12-03',
      '/api/analytics?from=2026-10-01&to=2026-12-03&category=2',
      // Twelve whole months, this one included: January to December 2026.
      '/api/analytics?from=2026-01-01&to=2026-12-03&category=2',
      '/api/analytics?category=2',
    ]);
  });

  it('a custom period starts from the days shown, asks for the typed days, and refuses a reversed one without asking', async () => {
    const api = new FakeApi()
      .on(`GET ${LAST30}`, analytics())
      .on('GET /api/analytics?from=2026-11-04&to=2026-12-03', analytics())
      .on('GET /api/analytics?from=2026-01-01&to=2026-12-03', analytics())
      .on('GET /api/analytics?from=2026-01-01&to=2026-06-30', analytics());
    const { wrapper } = await mountView(AnalyticsPanel, {}, { api, portal: admin() });
    await byTestId(wrapper, 'period-preset').setValue('custom');
    await flushPromises();
    expect((byTestId(wrapper, 'period-from').element as HTMLInputElement).value).toBe('2026-11-04');
    expect((byTestId(wrapper, 'period-to').element as HTMLInputElement).value).toBe('2026-12-03');
    await byTestId(wrapper, 'period-from').setValue('2026-01-01');
    await flushPromises();
    await byTestId(wrapper, 'period-to').setValue('2026-06-30');
    await flushPromises();
    const asked = api.calls.length;
    await byTestId(wrapper, 'period-from').setValue('2026-07-01');
    await flushPromises();
    expect(byTestId(wrapper, 'period-problem').text()).toBe('The period starts after it ends: swap the dates.');
    expect(api.calls.length).toBe(asked);
    expect(api.calls.map((c) => c.path)).toEqual([LAST30, '/api/analytics?from=2026-11-04&to=2026-12-03', '/api/analytics?from=2026-01-01&to=2026-12-03', '/api/analytics?from=2026-01-01&to=2026-06-30']);
  });

  it('shows every figure formatted, with how each is computed, and top referrers by name opening their card', async () => {
    const api = new FakeApi().on(`GET ${LAST30}`, analytics());
    const { wrapper, portal } = await mountView(AnalyticsPanel, {}, { api, portal: admin() });
    expect(textOf(wrapper, 'kpi-revenue')).toContain('RUB 1,250,000');
    expect(textOf(wrapper, 'kpi-revenue')).toContain('Sum of won deals that came by referral');
    expect(textOf(wrapper, 'kpi-cost')).toContain('RUB 125,000');
    expect(textOf(wrapper, 'cost-by-reason')).toContain('For a referral: RUB 100,000');
    expect(textOf(wrapper, 'cost-by-reason')).toContain('Cashback: RUB 7,500');
    expect(byTestId(wrapper, 'kpi-roi').find('[data-testid="kpi-value"]').text()).toBe('900 %');
    expect(textOf(wrapper, 'kpi-roi')).toContain('ROI = (referred revenue − reward cost) / cost × 100 %');
    expect(plain(byTestId(wrapper, 'kpi-liability').find('[data-testid="kpi-value"]').text())).toBe('RUB 90,000');
    expect(textOf(wrapper, 'liability-available')).toBe('RUB 72,000');
    expect(textOf(wrapper, 'liability-pending')).toBe('RUB 18,000');
    expect(textOf(wrapper, 'liability-expiring')).toBe('RUB 4,500.5');
    expect(textOf(wrapper, 'ltv-referred')).toBe('RUB 104,166.67 · 12 clients');
    expect(textOf(wrapper, 'ltv-others')).toBe('RUB 80,000 · 30 clients');
    expect(textOf(wrapper, 'repeat-referred')).toBe('25 %');
    expect(textOf(wrapper, 'repeat-others')).toBe('10 %');
    expect(textOf(wrapper, 'kpi-repeat')).toContain('two or more won deals');

    expect(textOf(wrapper, 'funnel-clicks')).toBe('Link clicks400');
    expect(textOf(wrapper, 'funnel-referredLeads')).toContain('100conversion 25 %');
    expect(textOf(wrapper, 'funnel-referredDeals')).toContain('40conversion 40 %');
    expect(textOf(wrapper, 'funnel-wonReferredDeals')).toContain('10conversion 25 %');
    expect(textOf(wrapper, 'month-2026-11')).toBe('Nov 20267RUB 900,000RUB 90,000');
    expect(textOf(wrapper, 'segments-computed')).toBe('Updated December 3, 2026');
    expect(textOf(wrapper, 'segment-at_risk')).toBe('At risk7');
    expect(textOf(wrapper, 'segment-sleeping')).toBe('Sleeping0');
    expect(textOf(wrapper, 'tiers-list')).toContain('No tier30');
    expect(textOf(wrapper, 'tiers-list')).toContain('Gold3');

    expect(textOf(wrapper, 'top-0')).toContain('Anna SmirnovaK7M2QX6RUB 750,000RUB 75,000');
    expect(textOf(wrapper, 'top-1')).toContain('——4RUB 500,000RUB 25,000');
    await byTestId(wrapper, 'person-contact-5').trigger('click');
    expect(portal.opened).toEqual([{ entity: 'contact', id: 5 }]);
  });

  it('in Russian: segment names, ROI formula and money the Russian way', async () => {
    const api = new FakeApi().on(`GET ${LAST30}`, analytics());
    const { wrapper } = await mountView(AnalyticsPanel, {}, { api, portal: admin('ru') });
    expect(textOf(wrapper, 'kpi-revenue')).toContain('1 250 000 ₽');
    expect(textOf(wrapper, 'kpi-roi')).toContain('ROI = (выручка по рекомендациям − стоимость вознаграждений) / стоимость × 100 %');
    expect(textOf(wrapper, 'segments-list')).toContain('Чемпионы4');
    expect(textOf(wrapper, 'segments-list')).toContain('Под угрозой ухода7');
    expect(textOf(wrapper, 'segments-list')).toContain('Потерянные2');
    expect(textOf(wrapper, 'segments-computed')).toBe('Обновлено 3 декабря 2026 г.');
  });

  it('ROI without any reward cost is «—» with the reason; segments never computed say so', async () => {
    const api = new FakeApi().on(`GET ${LAST30}`, analytics({ rewardCost: 0, rewardCostByReason: { referral: 0, welcome: 0, cashback: 0, coupon: 0 }, roiPercent: null, segments: { computedAt: null, counts: [] } }));
    const { wrapper } = await mountView(AnalyticsPanel, {}, { api, portal: admin() });
    expect(byTestId(wrapper, 'kpi-roi').find('[data-testid="kpi-value"]').text()).toBe('—');
    expect(byTestId(wrapper, 'roi-none').text()).toBe('Nothing was credited in the period: there is nothing to divide by, so no ROI.');
    expect(textOf(wrapper, 'segments-computed')).toBe('Segments have not been computed yet: they are computed every night.');
  });

  it('a period without any referral says what to do, and «all time» asks for the whole history', async () => {
    const none = analytics({
      funnel: { clicks: 0, referredLeads: 0, referredDeals: 0, wonReferredDeals: 0 },
      referredRevenue: 0,
      rewardCost: 0,
      rewardCostByReason: { referral: 0, welcome: 0, cashback: 0, coupon: 0 },
      roiPercent: null,
      topReferrers: [],
      monthly: [],
    });
    const api = new FakeApi().on(`GET ${LAST30}`, none).on('GET /api/analytics', analytics());
    const { wrapper } = await mountView(AnalyticsPanel, {}, { api, portal: admin() });
    expect(byTestId(wrapper, 'analytics-empty').text()).toContain('No referrals in this period.');
    expect(byTestId(wrapper, 'analytics-empty').text()).toContain('Choose a longer period or another pipeline');
    expect(byTestId(wrapper, 'kpis').exists()).toBe(false);
    await byTestId(wrapper, 'analytics-all-time').trigger('click');
    await flushPromises();
    expect(api.calls.at(-1)?.path).toBe('/api/analytics');
    expect(byTestId(wrapper, 'kpis').exists()).toBe(true);
  });

  it('a failed load says so and retries', async () => {
    const api = new FakeApi().on(`GET ${LAST30}`, new ApiError(500, 'internal', 'boom'), analytics());
    const { wrapper } = await mountView(AnalyticsPanel, {}, { api, portal: admin() });
    expect(byTestId(wrapper, 'state-error').text()).toContain('Could not load the data: boom');
    await byTestId(wrapper, 'state-error').find('button').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'kpis').exists()).toBe(true);
    expect(api.calls.map((c) => c.path)).toEqual([LAST30, LAST30]);
  });

});
