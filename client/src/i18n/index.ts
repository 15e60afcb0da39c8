/**
 * Russian and English from the portal's language (SPEC 7). Messages are plain objects; the
 * English one is typed by the Russian one, so a missing key fails the type check. Only the
 * language in use is loaded. Our messages use named placeholders only (`{name}`), so a small
 * compiler replaces vue-i18n's (which the runtime build leaves out).
 */
import { createI18n, type MessageCompiler, type MessageContext } from 'vue-i18n';
import type { Lang } from '../frame';
import type ru from './ru';

export type Messages = typeof ru | Record<string, unknown>;

const compile: MessageCompiler = (source) => {
  const text = String(source);
  if (!text.includes('{')) return () => text;
  return (ctx: MessageContext) => text.replace(/\{(\w+)\}/g, (_, name: string) => String(ctx.named(name) ?? ''));
};

/** The texts of a language; `admin` adds the admin page's (`settings`, `dash`), which only the main page loads. */
export function loadMessages(lang: Lang, admin = false): Promise<Messages> {
  const base = lang === 'ru' ? import('./ru').then((m) => m.default) : import('./en').then((m) => m.default);
  if (!admin) return base;
  const extra = lang === 'ru' ? import('./admin/ru').then((m) => m.default) : import('./admin/en').then((m) => m.default);
  return Promise.all([base, extra]).then(([b, a]) => ({ ...b, ...a }));
}

export function createTexts(lang: Lang, messages: Messages) {
  return createI18n({
    legacy: false,
    locale: lang,
    messages: { [lang]: messages } as Record<Lang, typeof ru>,
    messageCompiler: compile,
    missingWarn: false,
    fallbackWarn: false,
  });
}
