// One flat config for the whole monorepo, run once from the root (`npm run lint`).
// Syntax-level rules only (no type-aware linting): `tsc` already type-checks
// sources and tests, and this keeps lint fast.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['**/node_modules/', '**/dist/', '**/coverage/', '.bench-out/', '.turbo/', 'data/']),
  {
    files: ['**/*.{ts,mts,js,mjs}'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: globals.node,
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_`-prefixed names mark parameters a signature requires but the body ignores.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `readonly code: 'X' = 'X'` is how the repo spells literal-typed fields: an
      // explicit annotation, as isolatedDeclarations asks of every export.
      '@typescript-eslint/prefer-as-const': 'off',
    },
  },
  {
    // Packages log through the Logger port, never the console (see media-core ports.ts).
    files: ['{packages,apps,examples}/**/*.ts'],
    rules: {
      'no-console': 'error',
    },
  },
  {
    // Tests pass no-op callbacks (loggers, listeners) on purpose.
    files: ['**/*.test.ts', '**/test/**/*.{ts,mjs}'],
    rules: {
      '@typescript-eslint/no-empty-function': 'off',
    },
  },
);
