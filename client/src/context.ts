/**
 * What a view's stores are given: the API and the portal around the frame. Provided once by the
 * entry (or by a test with fakes) and injected by the setup stores, so components never fetch.
 */
import { inject, type InjectionKey } from 'vue';
import type { Api, Download } from './api';
import type { Formats } from './format';
import type { Portal } from './frame';

export interface AppDeps {
  api: Api;
  portal: Portal;
  /** Unique keys for Idempotency-Key (crypto.randomUUID in the browser). */
  newKey: () => string;
  /** Waits between polls (a test hands in one it controls). */
  delay: (ms: number) => Promise<void>;
  /** Files from our server (CSV exports) with the frame's auth. */
  download: Download;
  /** Today for the admin page's period presets (a test hands in a fixed one). */
  now: () => Date;
}

export const DEPS: InjectionKey<AppDeps> = Symbol('sarafan.deps');
export const FORMATS: InjectionKey<Formats> = Symbol('sarafan.formats');

export function useDeps(): AppDeps {
  const deps = inject(DEPS, null);
  if (!deps) throw new Error('Sarafan: the app was mounted without its dependencies');
  return deps;
}

export function useFormats(): Formats {
  const f = inject(FORMATS, null);
  if (!f) throw new Error('Sarafan: the app was mounted without its formats');
  return f;
}
