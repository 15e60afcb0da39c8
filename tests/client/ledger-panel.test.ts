/**
 * The admin page's ledger panel in happy-dom: the filters become the query (the person from the
 * portal's CRM selector), bad input asks nothing, «Show more» appends the older page, rows open
 * people and deals in the portal, and the CSV exports download the period with the chosen
 * separator through the API's authenticated download. Also the download itself (auth, 401 retry).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, createDownload } from '../../client/src/api';
import LedgerPanel from '../../client/src/views/admin/LedgerPanel.vue';
import { searchItem } from './fixtures';
import { byTestId, FakeApi, FakePortal, flushPromises, mountView, textOf } from './support';

const saved: { url: string; name: string }[] = [];
const blobs: Blob[] = [];
const original = { create: URL.createObjectURL, revoke: URL.revokeObjectURL };

beforeEach(() => {
  saved.length = 0;
  blobs.length = 0;
  URL.createObjectURL = (b: Blob) => {
    blobs.push(b);
    return `blob:sarafan/${blobs.length}`;
  };
  URL.revokeObjectURL = () => undefined;
  vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
    saved.push({ url: this.href, name: this.download });
  });
});
afterEach(() => {
  URL.createObjectURL = original.create;
  URL.revokeObjectURL = original.revoke;
  vi.restoreAllMocks();
  document.body.innerHTML = '';
});

const FIRST = '/api/ledger?limit=50';

function portal(): FakePortal {
  const p = new FakePortal();
  p.placement = 'DEFAULT';
  p.isAdmin = true;
  p.people.set('contact:5', 'Anna Smirnova');
  p.people.set('lead:7', 'Oleg Petrov');
  return p;
}

const page1 = {
  currency: 'RUB',
  items: [
    searchItem({ id: 120, amount: 7200, comment: 'first won deal' }),
    searchItem({ id: 119, reason: 'redemption', kind: 'credit', amount: -1500, dealId: 30, member: { entity: 'lead', id: 7 }, causedBy: 'deal:30' }),
  ],
  nextBefore: 119,
};
const page2 = { currency: 'RUB', items: [searchItem({ id: 80, reason: 'adjustment', kind: 'correction', amount: 300, dealId: null, comment: 'goodwill' })], nextBefore: null };

describe('the ledger panel', () => {
  it('lists the newest entries with names, reasons, kinds, amounts, statuses, deals and comments; rows open the portal', async () => {
    const api = new FakeApi().on(`GET ${FIRST}`, page1);
    const { wrapper, portal: p } = await mountView(LedgerPanel, {}, { api, portal: portal() });
    expect(textOf(wrapper, 'row-120')).toBe('November 20, 2026Anna SmirnovaFor a referralCredit+RUB 7,200AvailableDeal #12first won deal');
    expect(textOf(wrapper, 'row-119')).toContain('Oleg PetrovPaid with bonusCredit-RUB 1,500');
    await byTestId(wrapper, 'deal-30').trigger('click');
    await byTestId(wrapper, 'person-lead-7').trigger('click');
    expect(p.opened).toEqual([
      { entity: 'deal', id: 30 },
      { entity: 'lead', id: 7 },
    ]);
    expect(api.calls.map((c) => c.path)).toEqual([FIRST]);
  });

  it('the filters become the query: a person picked in the CRM (shown by name, clearable), deal, reason, kind and period', async () => {
    const p = portal();
    p.picks.push({ entity: 'contact', id: 12, title: 'Irina Volkova' });
    const api = new FakeApi()
      .on(`GET ${FIRST}`, page1)
      .on('GET /api/ledger?person=contact%3A12&limit=50', page1)
      .on('GET /api/ledger?person=contact%3A12&deal=44&limit=50', page1)
      .on('GET /api/ledger?person=contact%3A12&deal=44&reason=cashback&limit=50', page1)
      .on('GET /api/ledger?person=contact%3A12&deal=44&reason=cashback&kind=reversal&limit=50', page1)
      .on('GET /api/ledger?person=contact%3A12&deal=44&reason=cashback&kind=reversal&from=2026-11-01&limit=50', page1)
      .on('GET /api/ledger?person=contact%3A12&deal=44&reason=cashback&kind=reversal&from=2026-11-01&to=2026-11-30&limit=50', page1)
      .on('GET /api/ledger?deal=44&reason=cashback&kind=reversal&from=2026-11-01&to=2026-11-30&limit=50', { currency: 'RUB', items: [], nextBefore: null });
    const { wrapper } = await mountView(LedgerPanel, {}, { api, portal: p });
    await byTestId(wrapper, 'ledger-person-pick').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'ledger-person').text()).toBe('Irina Volkova');
    await byTestId(wrapper, 'ledger-deal').setValue(' 44 ');
    await byTestId(wrapper, 'ledger-filters').find('form').trigger('submit');
    await flushPromises();
    await byTestId(wrapper, 'ledger-reason').setValue('cashback');
    await flushPromises();
    await byTestId(wrapper, 'ledger-kind').setValue('reversal');
    await flushPromises();
    await byTestId(wrapper, 'ledger-from').setValue('2026-11-01');
    await flushPromises();
    await byTestId(wrapper, 'ledger-to').setValue('2026-11-30');
    await flushPromises();
    await byTestId(wrapper, 'ledger-person-clear').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'ledger-empty').text()).toBe('Nothing found. Change the filters or the period.');
    expect(api.calls.map((c) => c.path)).toEqual([
      FIRST,
      '/api/ledger?person=contact%3A12&limit=50',
      '/api/ledger?person=contact%3A12&deal=44&limit=50',
      '/api/ledger?person=contact%3A12&deal=44&reason=cashback&limit=50',
      '/api/ledger?person=contact%3A12&deal=44&reason=cashback&kind=reversal&limit=50',
      '/api/ledger?person=contact%3A12&deal=44&reason=cashback&kind=reversal&from=2026-11-01&limit=50',
      '/api/ledger?person=contact%3A12&deal=44&reason=cashback&kind=reversal&from=2026-11-01&to=2026-11-30&limit=50',
      '/api/ledger?deal=44&reason=cashback&kind=reversal&from=2026-11-01&to=2026-11-30&limit=50',
    ]);
  });

  it('a closed CRM selector keeps the filters and asks nothing; a bad deal number or a reversed period is shown and not sent', async () => {
    const api = new FakeApi().on(`GET ${FIRST}`, page1).on('GET /api/ledger?from=2026-12-01&limit=50', page1);
    const { wrapper } = await mountView(LedgerPanel, {}, { api, portal: portal() });
    await byTestId(wrapper, 'ledger-person-pick').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'ledger-person').exists()).toBe(false);
    await byTestId(wrapper, 'ledger-deal').setValue('12a');
    await byTestId(wrapper, 'ledger-filters').find('form').trigger('submit');
    await flushPromises();
    expect(byTestId(wrapper, 'ledger-deal-error').text()).toBe('A deal number is a positive whole number.');
    await byTestId(wrapper, 'ledger-deal').setValue('');
    await byTestId(wrapper, 'ledger-from').setValue('2026-12-01');
    await byTestId(wrapper, 'ledger-to').setValue('2026-11-01');
    await flushPromises();
    expect(byTestId(wrapper, 'ledger-period-error').text()).toBe('The period starts after it ends: swap the dates.');
    // The start alone was a valid search; the reversed end was not sent.
    expect(api.calls.map((c) => c.path)).toEqual([FIRST, '/api/ledger?from=2026-12-01&limit=50']);
  });

  it('«Show more» appends the older page from nextBefore and disappears on the last page', async () => {
    const api = new FakeApi().on(`GET ${FIRST}`, page1).on('GET /api/ledger?before=119&limit=50', page2);
    const { wrapper } = await mountView(LedgerPanel, {}, { api, portal: portal() });
    await byTestId(wrapper, 'ledger-more').trigger('click');
    await flushPromises();
    expect(wrapper.findAll('[data-testid^="row-"]').map((r) => r.attributes('data-testid'))).toEqual(['row-120', 'row-119', 'row-80']);
    expect(textOf(wrapper, 'row-80')).toContain('AdjustmentCorrection+RUB 300');
    expect(byTestId(wrapper, 'ledger-more').exists()).toBe(false);
    expect(api.calls.map((c) => c.path)).toEqual([FIRST, '/api/ledger?before=119&limit=50']);
  });

  it('exports the ledger and the payouts of the period with the chosen separator, saved under a file name', async () => {
    const ledgerCsv = new Blob(['\ufeffdate;amount\n'], { type: 'text/csv' });
    const payoutsCsv = new Blob(['\ufeffreferrer,amount\n'], { type: 'text/csv' });
    const api = new FakeApi()
      .on(`GET ${FIRST}`, page1)
      .on('GET /api/ledger?from=2026-11-01&limit=50', page1)
      .on('GET /api/ledger?from=2026-11-01&to=2026-11-30&limit=50', page1)
      .onDownload('/api/ledger.csv?from=2026-11-01&to=2026-11-30&sep=%3B', ledgerCsv)
      .onDownload('/api/payouts.csv?from=2026-11-01&to=2026-11-30&sep=%2C', payoutsCsv);
    const { wrapper } = await mountView(LedgerPanel, {}, { api, portal: portal() });
    await byTestId(wrapper, 'ledger-from').setValue('2026-11-01');
    await byTestId(wrapper, 'ledger-to').setValue('2026-11-30');
    await flushPromises();
    expect((byTestId(wrapper, 'export-sep').element as HTMLSelectElement).value).toBe(';');
    await byTestId(wrapper, 'export-ledger').trigger('click');
    await flushPromises();
    await byTestId(wrapper, 'export-sep').setValue(',');
    await byTestId(wrapper, 'export-payouts').trigger('click');
    await flushPromises();
    expect(api.calls.slice(-2).map((c) => c.path)).toEqual(['/api/ledger.csv?from=2026-11-01&to=2026-11-30&sep=%3B', '/api/payouts.csv?from=2026-11-01&to=2026-11-30&sep=%2C']);
    expect(blobs).toEqual([ledgerCsv, payoutsCsv]);
    expect(saved).toEqual([
      { url: 'blob:sarafan/1', name: 'sarafan-ledger-2026-11-01_2026-11-30.csv' },
      { url: 'blob:sarafan/2', name: 'sarafan-payouts-2026-11-01_2026-11-30.csv' },
    ]);
    expect(document.querySelectorAll('a[download]').length).toBe(0);
  });

  it('a refused export says why and saves nothing; a failed search offers a retry', async () => {
    const api = new FakeApi()
      .on(`GET ${FIRST}`, new ApiError(500, 'internal', 'boom'), page1)
      .onDownload('/api/ledger.csv?sep=%3B', new ApiError(403, 'forbidden', 'Admins only'));
    const { wrapper } = await mountView(LedgerPanel, {}, { api, portal: portal() });
    expect(byTestId(wrapper, 'state-error').text()).toContain('Could not load the data: boom');
    await byTestId(wrapper, 'state-error').find('button').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'row-120').exists()).toBe(true);
    await byTestId(wrapper, 'export-ledger').trigger('click');
    await flushPromises();
    expect(byTestId(wrapper, 'export-error').text()).toBe('Only portal administrators can do this.');
    expect(saved).toEqual([]);
  });

  it('Russian labels: reasons, kinds and the Excel separator', async () => {
    const api = new FakeApi().on(`GET ${FIRST}`, page1);
    const { wrapper } = await mountView(LedgerPanel, {}, { api, portal: portal(), lang: 'ru' });
    expect(textOf(wrapper, 'row-120')).toContain('За рекомендациюНачисление+7 200 ₽');
    expect(byTestId(wrapper, 'export-sep').findAll('option').map((o) => o.text())).toEqual(['«;» — для Excel', '«,» — стандартный CSV']);
    expect(byTestId(wrapper, 'ledger-kind').findAll('option').map((o) => o.text())).toEqual(['Любой', 'Начисление', 'Отмена', 'Поправка']);
  });
});

describe('the API download', () => {
  it('sends the frame auth, retries once with fresh tokens after a 401, and answers the file', async () => {
    const sent: { url: string; headers: Record<string, string> }[] = [];
    const answers = [new Response('{"error":{"code":"unauthorized","message":"expired"}}', { status: 401 }), new Response('\ufeffa;b\n', { status: 200, headers: { 'Content-Type': 'text/csv' } })];
    let token = 'old';
    const source = { auth: () => ({ accessToken: token, memberId: 'm1' }), refreshAuth: async () => ((token = 'new'), { accessToken: token, memberId: 'm1' }) };
    const download = createDownload(source, 'https://app.example', async (url, init) => {
      sent.push({ url: String(url), headers: init?.headers as Record<string, string> });
      return answers.shift()!;
    });
    const blob = await download('/api/ledger.csv?sep=%3B');
    expect(await blob.text()).toBe('\ufeffa;b\n');
    expect(sent).toEqual([
      { url: 'https://app.example/api/ledger.csv?sep=%3B', headers: { Authorization: 'Bearer old', 'X-Sarafan-Portal': 'm1' } },
      { url: 'https://app.example/api/ledger.csv?sep=%3B', headers: { Authorization: 'Bearer new', 'X-Sarafan-Portal': 'm1' } },
    ]);
  });

  it('a refusal becomes an ApiError naming the bad field', async () => {
    const download = createDownload({ auth: () => ({ accessToken: 't', memberId: 'm' }), refreshAuth: async () => ({ accessToken: 't', memberId: 'm' }) }, '', async () =>
      new Response(JSON.stringify({ error: { code: 'bad_request', message: 'invalid', details: [{ path: 'from', message: 'must be YYYY-MM-DD' }] } }), { status: 400 }),
    );
    const e = await download('/api/payouts.csv?from=x').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 400, code: 'bad_request', fields: [{ path: 'from', message: 'must be YYYY-MM-DD' }] });
  });
});
