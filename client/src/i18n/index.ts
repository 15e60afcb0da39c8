/**
 * Russian and English from the portal's language (SPEC 7). Messages are plain objects; the
 * English one is typed by the Russian one, so a missing key fails the type check.
 */
import { createI18n } from 'vue-i18n';
import type { Lang } from '../frame';
import en from './en';
import ru from './ru';

export function createTexts(lang: Lang) {
  return createI18n({
    legacy: false,
    locale: lang,
    fallbackLocale: 'en',
    messages: { ru, en },
    missingWarn: false,
    fallbackWarn: false,
  });
}
