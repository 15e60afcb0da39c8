/**
 * Starts a placement's view: connects to the portal, then mounts the view with its stores, texts
 * and formats. Without the portal (the page opened outside Bitrix24) it says so in both languages.
 */
import { createPinia } from 'pinia';
import { createApp, h, type Component } from 'vue';
import App from './App.vue';
import { createApi, createDownload } from './api';
import { DEPS, FORMATS } from './context';
import { formats } from './format';
import { connectPortal, type Portal } from './frame';
import { createTexts, loadMessages } from './i18n';
import { useSessionStore } from './stores/session';
import './styles.css';

export interface StartOptions {
  /** Load the admin page's texts too (the main page). */
  admin?: boolean;
}

export async function start(view: (portal: Portal) => { component: Component; props: Record<string, unknown> } | null, options: StartOptions = {}): Promise<void> {
  const root = document.getElementById('app');
  if (!root) return;
  // The page's language (the server set it from LANG) starts loading its texts while the frame connects.
  const pageLang = document.documentElement.lang === 'ru' ? 'ru' : 'en';
  const pageMessages = loadMessages(pageLang, options.admin);
  let portal: Portal;
  try {
    portal = await connectPortal();
  } catch {
    root.dataset.state = 'error';
    root.textContent = 'Откройте приложение из Битрикс24. / Open the application from Bitrix24.';
    return;
  }
  const chosen = view(portal);
  const [messages, kitLocale] = await Promise.all([
    portal.lang === pageLang ? pageMessages : loadMessages(portal.lang, options.admin),
    portal.lang === 'ru' ? import('@bitrix24/b24ui-nuxt/runtime/locale/ru.js').then((m) => m.default) : null,
  ]);
  const i18n = createTexts(portal.lang, messages);
  const pinia = createPinia();
  const api = createApi(portal);
  const app = createApp({ render: () => h(App, { kitLocale }, { default: () => (chosen ? h(chosen.component, chosen.props) : h('p', { 'data-testid': 'no-entity' }, i18n.global.t('errors.noEntity'))) }) });
  app.use(pinia).use(i18n);
  app.provide(DEPS, { api, portal, newKey: () => crypto.randomUUID(), delay: (ms) => new Promise((r) => setTimeout(r, ms)), download: createDownload(portal), now: () => new Date() });
  const session = app.runWithContext(() => useSessionStore());
  app.provide(FORMATS, formats(portal.lang, () => session.currency));
  app.mount(root);
  root.dataset.state = 'ready';
  portal.fit();
}
