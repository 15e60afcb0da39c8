/**
 * Names of the CRM people a view shows, read through the frame with the user's own rights, in
 * one request per entity for everything a view needs. A person the user may not see stays
 * unnamed (shown as «Контакт №5» with a link).
 */
import { defineStore } from 'pinia';
import { reactive } from 'vue';
import { useDeps } from '../context';
import { personKey } from '../frame';
import type { PersonRef } from '../types';

export const useNamesStore = defineStore('names', () => {
  const { portal } = useDeps();
  const names = reactive(new Map<string, string>());
  const asked = new Set<string>();

  async function resolve(people: (PersonRef | null | undefined)[]): Promise<void> {
    const wanted = people.filter((p): p is PersonRef => !!p && !asked.has(personKey(p)));
    if (!wanted.length) return;
    for (const p of wanted) asked.add(personKey(p));
    try {
      const found = await portal.names(wanted);
      for (const [k, v] of found) names.set(k, v);
    } catch {
      // Names are a courtesy: without them people show as «Контакт №5», still linked.
      for (const p of wanted) asked.delete(personKey(p));
    }
  }

  const nameOf = (p: PersonRef): string | null => names.get(personKey(p)) ?? null;

  return { names, resolve, nameOf };
});
