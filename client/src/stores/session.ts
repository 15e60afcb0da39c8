/** Who is looking (admin or not, from the server's check) and the program facts every view needs. */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { useDeps } from '../context';
import type { SessionAnswer } from '../types';

export const useSessionStore = defineStore('session', () => {
  const { api } = useDeps();
  const session = ref<SessionAnswer | null>(null);
  let loading: Promise<SessionAnswer> | null = null;

  function load(): Promise<SessionAnswer> {
    loading ??= api<SessionAnswer>('/api/session').then(
      (s) => (session.value = s),
      (e: unknown) => {
        loading = null;
        throw e;
      },
    );
    return loading;
  }

  const isAdmin = computed(() => session.value?.isAdmin === true);
  const currency = computed(() => session.value?.program.currency ?? 'RUB');
  return { session, load, isAdmin, currency };
});
