import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDependencies,
  internalImportsOf,
  isSemverRange,
  satisfiesSimpleRange,
} from './check-deps.mjs';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'check-deps.mjs');
const run = promisify(execFile);

/** A three-layer table: errors ← core ← routes, plus a private fixtures package. */
const GRAPH = {
  packages: {
    '@hsmedia/errors': { layer: 0, allow: [] },
    '@hsmedia/core': { layer: 1, allow: ['@hsmedia/errors'] },
    '@hsmedia/routes': { layer: 2, allow: ['@hsmedia/core', '@hsmedia/errors'] },
    '@hsmedia/fixtures': { layer: 4, allowBelowLayer: 4 },
  },
  unrestricted: ['apps/*'],
};

interface FixturePackage {
  dir: string;
  manifest: Record<string, unknown>;
  files?: Record<string, string>;
}

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function pkg(name: string, extra: Record<string, unknown> = {}, files: Record<string, string> = {}): FixturePackage {
  return { dir: `packages/${name}`, manifest: { name: `@hsmedia/${name}`, version: '0.1.0', ...extra }, files };
}

/** Writes a throwaway monorepo (root package.json, graph, workspaces) and returns its root. */
function makeRepo(packages: FixturePackage[], graph: object = GRAPH): string {
  const root = mkdtempSync(path.join(tmpdir(), 'check-deps-'));
  roots.push(root);
  const write = (relative: string, content: string): void => {
    const file = path.join(root, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  };
  write('package.json', JSON.stringify({ name: 'fixture-root', private: true, workspaces: ['packages/*', 'apps/*'] }));
  write('tooling/dependency-graph.json', JSON.stringify(graph));
  for (const { dir, manifest, files } of packages) {
    write(`${dir}/package.json`, JSON.stringify(manifest));
    for (const [relative, content] of Object.entries(files ?? { 'src/index.ts': 'export {};\n' })) {
      write(`${dir}/${relative}`, content);
    }
  }
  return root;
}

/** The fixture every failing case starts from: it passes as is. */
function goodPackages(): FixturePackage[] {
  return [
    pkg('errors', {}, { 'src/index.ts': 'export class MatrixError extends Error {}\n' }),
    pkg(
      'core',
      { dependencies: { '@hsmedia/errors': '^0.1.0' }, devDependencies: { '@hsmedia/fixtures': '^0.0.0' } },
      {
        'src/index.ts': "import { MatrixError } from '@hsmedia/errors';\nexport const e = MatrixError;\n",
        'src/index.test.ts': "import '@hsmedia/fixtures';\nimport '@hsmedia/errors';\n",
      },
    ),
    pkg(
      'routes',
      { dependencies: { '@hsmedia/core': '^0.1.0' }, peerDependencies: { '@hsmedia/errors': '>=0.1.0 <1' } },
      {
        'src/index.ts': [
          '/**',
          ' * @example',
          " * import { Anything } from '@hsmedia/not-declared';",
          ' */',
          "export { e } from '@hsmedia/core';",
          "export type { MatrixError } from '@hsmedia/errors';",
          "const url = 'see @hsmedia/also-not-an-import';",
          'export const lazy = () => import("@hsmedia/core");',
          '',
        ].join('\n'),
      },
    ),
    pkg(
      'fixtures',
      { version: '0.0.0', private: true, dependencies: { '@hsmedia/errors': '^0.1.0' } },
      { 'src/index.ts': "export * from '@hsmedia/errors';\n" },
    ),
    {
      dir: 'apps/server',
      manifest: {
        name: '@hsmedia/server',
        version: '0.1.0',
        private: true,
        dependencies: { '@hsmedia/routes': '^0.1.0', '@hsmedia/errors': '^0.1.0' },
      },
      files: { 'src/main.ts': "import '@hsmedia/routes';\nimport '@hsmedia/errors';\n" },
    },
  ];
}

function replacePackage(packages: FixturePackage[], replacement: FixturePackage): FixturePackage[] {
  return packages.map((candidate) => (candidate.dir === replacement.dir ? replacement : candidate));
}

describe('checkDependencies', () => {
  it('accepts a layered graph with declared imports, semver ranges and a private fixtures package', () => {
    const { problems } = checkDependencies({ root: makeRepo(goodPackages()) });
    expect(problems).toEqual([]);
  });

  it('names a forbidden runtime edge', () => {
    const packages = replacePackage(
      goodPackages(),
      pkg('errors', { dependencies: { '@hsmedia/routes': '^0.1.0' } }),
    );
    const { problems } = checkDependencies({ root: makeRepo(packages) });
    expect(problems).toContainEqual(expect.stringContaining('forbidden edge @hsmedia/errors → @hsmedia/routes (dependencies)'));
  });

  it('rejects a peer edge to a package the table does not allow, and an edge to a private package', () => {
    const packages = replacePackage(
      goodPackages(),
      pkg('core', { dependencies: { '@hsmedia/errors': '^0.1.0' }, peerDependencies: { '@hsmedia/fixtures': '^0.0.0' } }),
    );
    const { problems } = checkDependencies({ root: makeRepo(packages) });
    expect(problems).toContainEqual(expect.stringContaining('forbidden edge @hsmedia/core → @hsmedia/fixtures (peerDependencies)'));
    expect(problems).toContainEqual(expect.stringContaining('cannot depend on the private @hsmedia/fixtures'));
  });

  it('reports a cycle closed by a devDependency', () => {
    // errors → (dev) routes → core → errors: each runtime edge is allowed, the loop is not.
    const packages = replacePackage(goodPackages(), pkg('errors', { devDependencies: { '@hsmedia/routes': '^0.1.0' } }));
    const { problems } = checkDependencies({ root: makeRepo(packages) });
    const cycles = problems.filter((problem: string) => problem.startsWith('dependency cycle'));
    // Cycles are reported from their alphabetically first package, so the message is stable.
    expect(cycles).toContain(
      'dependency cycle: @hsmedia/core → @hsmedia/errors (dependencies), @hsmedia/errors → @hsmedia/routes (devDependencies), @hsmedia/routes → @hsmedia/core (dependencies)',
    );
    // Nothing else is wrong with the tree.
    expect(problems.filter((problem: string) => !problem.startsWith('dependency cycle'))).toEqual([]);
  });

  it('reports an import that package.json does not declare', () => {
    const packages = replacePackage(
      goodPackages(),
      pkg('core', { dependencies: {} }, { 'src/use.ts': "import { MatrixError } from '@hsmedia/errors';\nexport { MatrixError };\n" }),
    );
    const { problems } = checkDependencies({ root: makeRepo(packages) });
    expect(problems).toEqual([
      'packages/core/src/use.ts imports @hsmedia/errors, which packages/core/package.json does not declare (add it to dependencies or peerDependencies)',
    ]);
  });

  it('reports shipped code importing a package declared only in devDependencies', () => {
    const packages = replacePackage(
      goodPackages(),
      pkg(
        'routes',
        { dependencies: { '@hsmedia/errors': '^0.1.0' }, devDependencies: { '@hsmedia/core': '^0.1.0' } },
        { 'src/index.ts': "export * from '@hsmedia/core';\n", 'test/routes.test.ts': "import '@hsmedia/core';\n" },
      ),
    );
    const { problems } = checkDependencies({ root: makeRepo(packages) });
    expect(problems).toEqual([
      'packages/routes/src/index.ts imports @hsmedia/core, which packages/routes/package.json declares only in devDependencies; shipped code needs it in dependencies or peerDependencies',
    ]);
  });

  it('rejects workspace:* and * instead of semver ranges, and ranges the workspace version misses', () => {
    const packages = replacePackage(
      replacePackage(goodPackages(), pkg('core', { dependencies: { '@hsmedia/errors': 'workspace:*' } })),
      pkg('routes', { dependencies: { '@hsmedia/core': '*', '@hsmedia/errors': '^0.2.0' } }),
    );
    const { problems } = checkDependencies({ root: makeRepo(packages) });
    expect(problems).toContainEqual(expect.stringContaining('@hsmedia/core → @hsmedia/errors (dependencies) is declared as "workspace:*"'));
    expect(problems).toContainEqual(expect.stringContaining('@hsmedia/routes → @hsmedia/core (dependencies) is declared as "*"'));
    expect(problems).toContainEqual(expect.stringContaining('declared as "^0.2.0" but the workspace is at 0.1.0'));
  });

  it('rejects a package missing from the table and an edge to an unknown internal package', () => {
    const packages = [...goodPackages(), pkg('newcomer', { dependencies: { '@hsmedia/ghost': '^1.0.0' } })];
    const { problems } = checkDependencies({ root: makeRepo(packages) });
    expect(problems).toContainEqual(expect.stringContaining('packages/newcomer (@hsmedia/newcomer) is not in tooling/dependency-graph.json'));
    expect(problems).toContainEqual(expect.stringContaining('@hsmedia/ghost is not a workspace of this repository'));
  });

  it('rejects a table whose edges point upwards', () => {
    const graph = {
      ...GRAPH,
      packages: { ...GRAPH.packages, '@hsmedia/errors': { layer: 0, allow: ['@hsmedia/core'] } },
    };
    const { problems } = checkDependencies({ root: makeRepo(goodPackages()), graph });
    expect(problems).toContainEqual(expect.stringContaining('edges must point to a lower layer'));
  });
});

describe('check-deps.mjs CLI', () => {
  it('exits 0 with a one-line summary on a good tree', async () => {
    const { stdout } = await run(process.execPath, [SCRIPT, '--root', makeRepo(goodPackages())]);
    expect(stdout).toMatch(/^check-deps: ok \(5 workspaces/);
  });

  it('exits 1 and names the offending edge', async () => {
    const packages = replacePackage(goodPackages(), pkg('errors', { dependencies: { '@hsmedia/routes': '^0.1.0' } }));
    const failure = await run(process.execPath, [SCRIPT, '--root', makeRepo(packages)]).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('forbidden edge @hsmedia/errors → @hsmedia/routes');
  });
});

describe('helpers', () => {
  it('classifies ranges', () => {
    for (const good of ['^0.1.0', '~1.2.3', '1.2.3', '>=0.1.0 <1', '1.x || ^2.0.0', '1.0.0 - 2.0.0']) {
      expect(isSemverRange(good), good).toBe(true);
    }
    for (const bad of ['*', '', 'workspace:*', 'workspace:^0.1.0', 'latest', 'file:../x', 'link:../x']) {
      expect(isSemverRange(bad), bad).toBe(false);
    }
  });

  it('evaluates caret, tilde and exact ranges', () => {
    expect(satisfiesSimpleRange('0.1.5', '^0.1.0')).toBe(true);
    expect(satisfiesSimpleRange('0.2.0', '^0.1.0')).toBe(false);
    expect(satisfiesSimpleRange('1.9.0', '^1.2.0')).toBe(true);
    expect(satisfiesSimpleRange('1.3.0', '~1.2.0')).toBe(false);
    expect(satisfiesSimpleRange('0.0.0', '^0.0.0')).toBe(true);
    expect(satisfiesSimpleRange('0.1.0', '>=0.1.0 <1')).toBeNull();
  });

  it('finds static, type-only, re-export and dynamic imports but not comments or strings', () => {
    const source = [
      "// import '@hsmedia/commented';",
      "import type { A } from '@hsmedia/a/sub/path';",
      "export * from '@hsmedia/b';",
      "const c = await import('@hsmedia/c');",
      "const s = \"from '@hsmedia/string'\";",
      "import 'koa';",
    ].join('\n');
    expect(internalImportsOf(source).sort()).toEqual(['@hsmedia/a', '@hsmedia/b', '@hsmedia/c']);
  });
});
