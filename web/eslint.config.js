// ESLint for the browser client (web/static) and its build script: the recommended rules,
// browser globals for the client, Node's for build.mjs. dist/ is build output, never linted.
import js from '@eslint/js';
import globals from 'globals';

const rules = {
  'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none' }],
  eqeqeq: ['error', 'always'],
  'no-var': 'error',
  'prefer-const': 'error',
};

export default [
  { ignores: ['node_modules/**', 'dist/**', 'dist.*/**'] },
  js.configs.recommended,
  {
    files: ['static/**/*.js'],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      // VECHE_E2EE_WORKER is defined by build.mjs when it bundles the client.
      globals: { ...globals.browser, VECHE_E2EE_WORKER: 'readonly' },
    },
    rules,
  },
  {
    files: ['build.mjs'],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    rules,
  },
];
