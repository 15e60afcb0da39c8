/** The main page's state: the program in force (admins), read-only until the settings page. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { Program } from '../../../src/rules/program';
import { useDeps } from '../context';
import { viewError, type LoadState, type ViewError } from './load-state';

export interface ProgramAnswer {
  version: number;
  program: Program;
}

export const useProgramStore = defineStore('program', () => {
  const { api } = useDeps();
  const answer = ref<ProgramAnswer | null>(null);
  const state = ref<LoadState>('loading');
  const error = ref<ViewError | null>(null);

  async function load(): Promise<void> {
    state.value = 'loading';
    error.value = null;
    try {
      answer.value = await api<ProgramAnswer>('/api/program');
      state.value = 'ready';
    } catch (e) {
      error.value = viewError(e);
      state.value = 'error';
    }
  }

  return { answer, state, error, load };
});
