/**
 * The admin page's ledger search: filters (a person picked in the portal's CRM selector, a deal,
 * a reason, a kind, a period), the matching entries newest first, paged by the `nextBefore`
 * cursor, and the CSV exports of the period (fetched with the frame's auth, then saved).
 */
import { defineStore } from 'pinia';
import { computed, reactive, ref } from 'vue';
import type { LedgerSearchAnswer, LedgerSearchItem } from '../../../src/contract/admin';
import type { LedgerKind, LedgerReason } from '../../../src/contract/api';
import { useDeps } from '../context';
import type { PickedPerson } from '../frame';
import { viewError, type LoadState, type ViewError } from './load-state';
import { useNamesStore } from './names';

export const LEDGER_PAGE = 50;
export const REASONS: LedgerReason[] = ['referral', 'welcome', 'cashback', 'coupon', 'promo', 'adjustment', 'redemption', 'expiry'];
export const KINDS: LedgerKind[] = ['credit', 'reversal', 'correction'];
export type Separator = ',' | ';';
export type ExportKind = 'ledger' | 'payouts';

export interface LedgerFilters {
  person: PickedPerson | null;
  /** As typed; a positive whole number or empty. */
  deal: string;
  reason: LedgerReason | '';
  kind: LedgerKind | '';
  from: string;
  to: string;
}

/** Bad filter fields (name → i18n key); a search is not sent while any is bad. */
export function filterProblems(f: LedgerFilters): Partial<Record<keyof LedgerFilters, string>> {
  const out: Partial<Record<keyof LedgerFilters, string>> = {};
  const deal = f.deal.trim();
  if (deal && !/^[1-9]\d{0,9}$/.test(deal)) out.deal = 'dash.ledger.badDeal';
  if (f.from && f.to && f.from > f.to) out.to = 'dash.period.reversed';
  return out;
}

export const useLedgerSearchStore = defineStore('ledger-search', () => {
  const { api, portal, download } = useDeps();
  const names = useNamesStore();

  const filters = reactive<LedgerFilters>({ person: null, deal: '', reason: '', kind: '', from: '', to: '' });
  const items = ref<LedgerSearchItem[]>([]);
  const currency = ref<string | null>(null);
  const nextBefore = ref<number | null>(null);
  const state = ref<LoadState>('loading');
  const error = ref<ViewError | null>(null);
  const loadingMore = ref(false);
  const moreError = ref<ViewError | null>(null);
  const problems = computed(() => filterProblems(filters));
  let seq = 0;

  function searchQuery(before: number | null): string {
    const q = new URLSearchParams();
    if (filters.person) q.set('person', `${filters.person.entity}:${filters.person.id}`);
    if (filters.deal.trim()) q.set('deal', filters.deal.trim());
    if (filters.reason) q.set('reason', filters.reason);
    if (filters.kind) q.set('kind', filters.kind);
    if (filters.from) q.set('from', filters.from);
    if (filters.to) q.set('to', filters.to);
    if (before !== null) q.set('before', String(before));
    q.set('limit', String(LEDGER_PAGE));
    return `/api/ledger?${q.toString()}`;
  }

  function take(page: LedgerSearchAnswer, append: boolean): void {
    items.value = append ? [...items.value, ...page.items] : page.items;
    currency.value = page.currency;
    nextBefore.value = page.nextBefore;
    void names.resolve(page.items.map((i) => i.member));
  }

  async function search(): Promise<void> {
    if (Object.keys(problems.value).length) return;
    const mine = ++seq;
    state.value = 'loading';
    error.value = null;
    moreError.value = null;
    try {
      const page = await api<LedgerSearchAnswer>(searchQuery(null));
      if (mine !== seq) return;
      take(page, false);
      state.value = 'ready';
    } catch (e) {
      if (mine !== seq) return;
      error.value = viewError(e);
      state.value = 'error';
    }
  }

  async function loadMore(): Promise<void> {
    if (nextBefore.value === null || loadingMore.value) return;
    const mine = seq;
    loadingMore.value = true;
    moreError.value = null;
    try {
      const page = await api<LedgerSearchAnswer>(searchQuery(nextBefore.value));
      // A new search started meanwhile: this page belongs to the old results.
      if (mine === seq) take(page, true);
    } catch (e) {
      moreError.value = viewError(e);
    } finally {
      loadingMore.value = false;
    }
  }

  /** The CRM selector; a closed selector keeps the person chosen before. */
  async function pickPerson(): Promise<void> {
    const picked = await portal.pickPerson();
    if (!picked) return;
    filters.person = picked;
    await search();
  }

  async function clearPerson(): Promise<void> {
    filters.person = null;
    await search();
  }

  /** The export's path for the filters' period; `sep=;` is what Excel with a Russian locale opens as columns. */
  function exportPath(kind: ExportKind, sep: Separator): string {
    const q = new URLSearchParams();
    if (filters.from) q.set('from', filters.from);
    if (filters.to) q.set('to', filters.to);
    q.set('sep', sep);
    return `/api/${kind}.csv?${q.toString()}`;
  }

  /** Fetches an export; the caller saves the Blob under the returned file name. */
  async function exportCsv(kind: ExportKind, sep: Separator): Promise<{ blob: Blob; fileName: string }> {
    const blob = await download(exportPath(kind, sep));
    const span = [filters.from, filters.to].filter(Boolean).join('_');
    return { blob, fileName: `sarafan-${kind}${span ? `-${span}` : ''}.csv` };
  }

  return { filters, items, currency, nextBefore, state, error, loadingMore, moreError, problems, searchQuery, search, loadMore, pickPerson, clearPerson, exportPath, exportCsv };
});
