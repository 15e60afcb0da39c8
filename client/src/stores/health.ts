/**
 * The installation's health (SPEC 4, 6): what the portal has of Sarafan's registration, the last
 * event, reconciliation lag, the queue and its dead jobs; its actions re-run the registration
 * ("repair") and queue a dead job again, each then showing the health after it.
 */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { HealthAnswer, RepairAnswer, RetryJobAnswer } from '../../../src/contract/admin';
import { useDeps } from '../context';
import { viewError, type LoadState, type ViewError } from './load-state';

export const useHealthStore = defineStore('health', () => {
  const { api } = useDeps();

  const health = ref<HealthAnswer | null>(null);
  const state = ref<LoadState>('loading');
  const error = ref<ViewError | null>(null);
  /** What the last repair added or fixed (null = no repair run in this view). */
  const repaired = ref<RepairAnswer['repaired'] | null>(null);

  async function load(): Promise<void> {
    state.value = 'loading';
    error.value = null;
    try {
      health.value = await api<HealthAnswer>('/api/health');
      state.value = 'ready';
    } catch (e) {
      error.value = viewError(e);
      state.value = 'error';
    }
  }

  /** Errors reach the caller (the button shows them); the health shown stays as it was. */
  async function repair(): Promise<RepairAnswer['repaired']> {
    const answer = await api<RepairAnswer>('/api/health/repair', { method: 'POST', body: {} });
    repaired.value = answer.repaired;
    health.value = answer.health;
    return answer.repaired;
  }

  async function retry(jobId: number): Promise<void> {
    await api<RetryJobAnswer>(`/api/jobs/${jobId}/retry`, { method: 'POST', body: {} });
    health.value = await api<HealthAnswer>('/api/health');
  }

  return { health, state, error, repaired, load, repair, retry };
});
