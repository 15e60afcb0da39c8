/**
 * What the settings panel gives its fields: each field registers the document path it edits, so
 * an error path (from the schema or a server 400) is shown at the field that owns it.
 */
import { inject, type InjectionKey } from 'vue';

export interface FormContext {
  register(path: string): void;
  unregister(path: string): void;
  errorsAt(path: string): string[];
}

export const FORM: InjectionKey<FormContext> = Symbol('sarafan.settings.form');

export function useForm(): FormContext {
  const form = inject(FORM, null);
  if (!form) throw new Error('Sarafan: a settings field outside the settings form');
  return form;
}

/** `referral.levels.1.percent` → `referral.levels.percent`: the key of its label and help. */
export const labelKey = (path: string): string =>
  path
    .split('.')
    .filter((s) => !/^\d+$/.test(s))
    .join('.');
