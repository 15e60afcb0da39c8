import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importPlugin from 'eslint-plugin-import';
import globals from 'globals';
import pluginVue from 'eslint-plugin-vue';
import path from 'node:path';

export default tseslint.config(
  { ignores: ['tools/**', 'node_modules/**', 'dist/**', 'data/**', 'coverage/**', 'src/store/migrations/**', 'client/components.d.ts', 'client/auto-imports.d.ts', 'tests/fixtures/client/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.vue'],
    languageOptions: { globals: { ...globals.node } },
    plugins: { import: importPlugin },
    settings: { 'import/resolver': { [path.resolve(import.meta.dirname, 'tools/eslint-resolver.cjs')]: {} } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['error'] }],
      // Dependencies point one way: rules <- handlers <- (bitrix, store) <- server (STYLE.md); the API
      // contract (src/contract) sits beside rules, shared by handlers, server and client.
      // The sandbox is a Bitrix24 emulator, apart from the product in both directions; only the
      // demo (server/demo, loaded in sandbox mode) joins the two. tests/unit/import-zones.test.ts proves each zone.
      'import/no-restricted-paths': ['error', {
        zones: [
          {
            target: './src/rules',
            from: ['./server', './src/contract', './src/handlers', './src/bitrix', './src/store', './install', './client'],
            message: 'src/rules is pure: it imports nothing outside src/rules.',
          },
          {
            target: './src/contract',
            from: ['./server', './src/handlers', './src/bitrix', './src/store', './install', './client', './sandbox'],
            message: 'src/contract is the API contract the browser shares: it imports only zod and src/rules.',
          },
          {
            target: './src/handlers',
            from: ['./server', './src/bitrix', './src/store', './install', './client'],
            message: 'src/handlers imports only src/rules and its own ports.',
          },
          {
            target: ['./src/bitrix', './src/store'],
            from: ['./server', './client'],
            message: 'Adapters never import the process layer.',
          },
          {
            target: './client',
            from: ['./server', './src/handlers', './src/bitrix', './src/store'],
            message: 'The client imports only the shared API contract.',
          },
          {
            target: './sandbox',
            from: ['./src', './server', './install', './client'],
            message: 'The sandbox is a Bitrix24 emulator: it imports nothing of the product (the demo that needs both lives in server/demo).',
          },
          {
            target: ['./src', './install', './client', './server/*', './server/!(demo)/**'],
            from: './sandbox',
            message: 'Only server/demo (loaded in sandbox mode) may import the sandbox.',
          },
        ],
      }],
    },
  },
  // The Vue client: single-file components in TypeScript, in the browser.
  ...pluginVue.configs['flat/recommended'].map((c) => ({ ...c, files: ['client/**/*.vue'] })),
  {
    files: ['client/**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.vue'], sourceType: 'module' } },
    rules: {
      // The kit's components are used by their registered names (B24Button), as its docs do.
      'vue/component-name-in-template-casing': ['error', 'PascalCase'],
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      'vue/multi-word-component-names': 'off',
    },
  },
  {
    files: ['client/**/*.ts', 'client/**/*.vue'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['tests/**/*.ts', 'bench/**/*.ts', 'sandbox/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
