import { defineConfig } from 'vitest/config';

// Tests read sibling packages from their TypeScript sources through the
// `@hsmedia/source` export condition, so `vitest` needs no prior build.
const conditions = ['@hsmedia/source', 'node', 'import', 'default'];
// Test workers get ssr.resolve.conditions as `node --conditions`, which also
// steer require(): with 'import' there, a dual package required from CJS (pg
// requiring pg-pool) loads its ESM build and breaks. Vite adds 'import' itself
// for ESM imports, so leave it out of the SSR/Node list.
const nodeConditions = conditions.filter((condition) => condition !== 'import');

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions: nodeConditions, externalConditions: nodeConditions } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'apps/*/test/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'tooling/**/*.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    restoreMocks: true,
  },
});
