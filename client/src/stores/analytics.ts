/**
 * The dashboard's state (SPEC 8): the chosen period (a preset or custom days) and pipeline, and
 * the figures the server computed for them. Only the answer to the latest choice is kept, so a
 * slow answer to an earlier choice never overwrites a newer one.
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { AnalyticsAnswer } from '../../../src/contract/admin';
import { useDeps } from '../context';
import { viewError, type LoadState, type ViewError } from './load-state';
import { useNamesStore } from './names';

export type PeriodPreset = 'last30' | 'quarter' | 'last12m' | 'all' | 'custom';
export const PRESETS: PeriodPreset[] = ['last30', 'quarter', 'last12m', 'all', 'custom'];

/** Days as the API takes them: YYYY-MM-DD, `to` inclusive; null = unbounded. */
export interface Period {
  from: string | null;
  to: string | null;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The user's calendar day (local time: "today" is the admin's today, not UTC's). */
export function isoDay(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The days a preset covers, ending today; `last12m` starts a month boundary so the monthly chart has 12 whole bars. */
export function presetPeriod(preset: Exclude<PeriodPreset, 'custom'>, now: Date): Period {
  const today = isoDay(now);
  const y = now.getFullYear();
  const m = now.getMonth();
  switch (preset) {
    case 'last30':
      return { from: isoDay(new Date(y, m, now.getDate() - 29)), to: today };
    case 'quarter':
      return { from: isoDay(new Date(y, m - (m % 3), 1)), to: today };
    case 'last12m':
      return { from: isoDay(new Date(y, m - 11, 1)), to: today };
    case 'all':
      return { from: null, to: null };
  }
}

export const useAnalyticsStore = defineStore('analytics', () => {
  const { api, now } = useDeps();
  const names = useNamesStore();

  const preset = ref<PeriodPreset>('last30');
  const custom = ref<Period>({ from: null, to: null });
  /** null = every pipeline. */
  const category = ref<number | null>(null);
  const answer = ref<AnalyticsAnswer | null>(null);
  const state = ref<LoadState>('loading');
  const error = ref<ViewError | null>(null);
  let seq = 0;

  /** Why the custom period cannot be asked for (i18n key), or null. */
  const customProblem = computed(() => {
    if (preset.value !== 'custom') return null;
    const { from, to } = custom.value;
    if (!from || !to || !DAY.test(from) || !DAY.test(to)) return 'dash.period.needBoth';
    if (from > to) return 'dash.period.reversed';
    return null;
  });

  const period = computed<Period>(() => (preset.value === 'custom' ? custom.value : presetPeriod(preset.value, now())));

  const query = computed(() => {
    const q = new URLSearchParams();
    if (period.value.from) q.set('from', period.value.from);
    if (period.value.to) q.set('to', period.value.to);
    if (category.value !== null) q.set('category', String(category.value));
    const s = q.toString();
    return `/api/analytics${s ? `?${s}` : ''}`;
  });

  async function load(): Promise<void> {
    if (customProblem.value) return;
    const mine = ++seq;
    state.value = 'loading';
    error.value = null;
    try {
      const a = await api<AnalyticsAnswer>(query.value);
      if (mine !== seq) return;
      answer.value = a;
      state.value = 'ready';
      void names.resolve(a.topReferrers.map((r) => r.member));
    } catch (e) {
      if (mine !== seq) return;
      error.value = viewError(e);
      state.value = 'error';
    }
  }

  function choose(next: { preset?: PeriodPreset; custom?: Period; category?: number | null }): Promise<void> {
    if (next.preset !== undefined) {
      // Switching to custom starts from the period shown, so the date inputs are never blank.
      if (next.preset === 'custom' && preset.value !== 'custom') custom.value = { ...period.value };
      preset.value = next.preset;
    }
    if (next.custom !== undefined) custom.value = next.custom;
    if (next.category !== undefined) category.value = next.category;
    return load();
  }

  return { preset, custom, category, period, customProblem, query, answer, state, error, load, choose };
});
