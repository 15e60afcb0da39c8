/**
 * The Vue client (SPEC 7): one entry per placement, built into dist/client with a manifest the
 * server reads to serve each placement's page (server/client-assets.ts). Assets carry content
 * hashes and are served with long-lived caching. The UI kit runs in its plain Vue mode: no
 * vue-router (the frame has one view per placement) and no colour-mode storage (localStorage is
 * partitioned in third-party frames).
 */
import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import b24ui from '@bitrix24/b24ui-nuxt/vite';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/client/',
  // Generated declarations stay in client/ also when Vitest runs this config from the root.
  plugins: [vue(), b24ui({ router: false, colorMode: false, root: here('.'), components: { dts: here('components.d.ts') }, autoImport: { dts: here('auto-imports.d.ts') } })],
  resolve: {
    // The runtime build of vue-i18n: messages are compiled by our own small compiler
    // (client/src/i18n), so the message compiler is not shipped.
    alias: { 'vue-i18n': 'vue-i18n/dist/vue-i18n.runtime.mjs' },
  },
  define: {
    __VUE_I18N_FULL_INSTALL__: 'false',
    __VUE_I18N_LEGACY_API__: 'false',
    __INTLIFY_PROD_DEVTOOLS__: 'false',
  },
  build: {
    outDir: here('../dist/client'),
    emptyOutDir: true,
    manifest: true,
    // The shared chunk (Vue, the kit, the SDK) is ~530 KB raw / ~173 KB gzip by design; the
    // budget that matters is gzip before content, measured by `npm run bench` (card-tab).
    chunkSizeWarningLimit: 600,
    target: 'es2022',
    rollupOptions: {
      input: {
        deal: here('src/entries/deal.ts'),
        person: here('src/entries/person.ts'),
        main: here('src/entries/main.ts'),
      },
    },
  },
});
