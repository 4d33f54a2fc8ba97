import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { writeSynapseMediaStore, writeSynapseSqlite, type SynapseFixtureContent } from '@hsmedia/test-fixtures/synapse';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLI_PATH } from './cli-process.js';
import { tempDir } from './helpers.js';

// The CLI reads its command line with small parsers and loads only what the chosen command runs
// (`await import()`). Checked on the built executable by a module loader hook that lists every module
// the process loads: no timing involved.

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const DIST = pathToFileURL(join(repoRoot, 'apps/media-server/dist/')).href;

/** What `--help` and a usage error may load: the entry, the CLI and the argument parsers. */
const PARSING_ONLY = [
  'cli.js',
  'cli-main.js',
  'byte-size.js',
  'commands/archive-arguments.js',
  'commands/dedup-arguments.js',
  'commands/hashes-arguments.js',
  'commands/import-synapse-arguments.js',
  'commands/sqlite-to-postgres-arguments.js',
].sort();

/**
 * Runtime packages that only the running server needs (sharp alone takes about a third of a
 * second to load). A command that reads the config may load of them only what the sharp-free,
 * previewer-free `./config` subpaths load (the thumbnail defaults; the previewer's option checks):
 * see {@link CONFIG_SUBPATHS}.
 */
const SERVER_ONLY_PACKAGES: ReadonlySet<string> = new Set(['sharp', '@img', '@hsmedia/thumbnailer', '@hsmedia/url-preview', 'htmlparser2', '@hsmedia/media-routes', 'koa']);

/** The subpaths the config imports from {@link SERVER_ONLY_PACKAGES}. */
const CONFIG_SUBPATHS = ['@hsmedia/thumbnailer/config', '@hsmedia/url-preview/config'];

/** The package a module URL belongs to (a workspace package by its folder, or one in node_modules). */
function packageOf(url: string): string | undefined {
  const workspace = /\/packages\/([^/]+)\//.exec(url);
  if (workspace !== null && !url.includes('/node_modules/')) return `@hsmedia/${workspace[1]}`;
  const installed = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (installed === null) return undefined;
  // `@img/sharp-linux-x64` and the like: sharp's native parts, counted as the scope.
  return installed[1]!.startsWith('@img/') ? '@img' : installed[1]!;
}

/** Modules of {@link SERVER_ONLY_PACKAGES} that a run loaded, but those in `allowed`. */
function serverOnlyModules(run: Run, allowed: ReadonlySet<string> = new Set()): string[] {
  return run.others.filter((url) => SERVER_ONLY_PACKAGES.has(packageOf(url) ?? '') && !allowed.has(url));
}

/** The command runners: each command loads its own and none of the others. */
const RUNNERS = ['archive-command.js', 'dedup-command.js', 'hashes-command.js', 'import-synapse-command.js', 'sqlite-to-postgres-command.js'];

let dir: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  // The test drives the real executable, so build it (and the packages it imports).
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
}, 240_000);

beforeEach(async () => {
  dir = await tempDir('hsmedia-cli-loading-');
  // Node's module customization hooks (module.register): `load` sees every ES module and every
  // CommonJS module imported from one. The hooks run on their own thread, so they append to a file.
  await writeFile(
    join(dir.path, 'hooks.mjs'),
    "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  appendFileSync(process.env.LOADED_LIST, `${url}\\n`);\n  return next(url, context);\n}\n",
  );
  await writeFile(join(dir.path, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
});
afterEach(async () => {
  await dir.cleanup();
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Modules of the media server's dist, relative to it. */
  readonly own: string[];
  /** Every other module but Node's built-ins (packages of the workspace and of node_modules). */
  readonly others: string[];
}

/** Runs `hsmedia-server` with `args` in the test's directory. */
function run(args: readonly string[]): Promise<Run> {
  return runNode([CLI_PATH, ...args], dir.path);
}

/** What the config's subpaths of {@link SERVER_ONLY_PACKAGES} load by themselves (module URLs). */
async function configSubpathModules(): Promise<ReadonlySet<string>> {
  const script = CONFIG_SUBPATHS.map((subpath) => `await import(${JSON.stringify(subpath)});`).join(' ');
  const result = await runNode(['--input-type=module', '-e', script], join(repoRoot, 'apps/media-server'));
  expect(result.code, result.stderr).toBe(0);
  return new Set(serverOnlyModules(result));
}

async function runNode(args: readonly string[], cwd: string): Promise<Run> {
  const list = join(dir.path, 'loaded.txt');
  await writeFile(list, '');
  const child = spawn(process.execPath, ['--import', pathToFileURL(join(dir.path, 'register.mjs')).href, ...args], {
    cwd,
    env: { ...process.env, LOADED_LIST: list },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const urls = [...new Set((await readFile(list, 'utf8')).split('\n').filter((url) => url !== '' && !url.startsWith('node:')))];
  return {
    code,
    stdout,
    stderr,
    own: urls.filter((url) => url.startsWith(DIST)).map((url) => url.slice(DIST.length)).sort(),
    others: urls.filter((url) => !url.startsWith(DIST)),
  };
}

describe('hsmedia-server loads only what the command needs', () => {
  it('--help, --version and usage errors load the argument parsers and nothing else', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: hsmedia-server');
    expect(help.own).toEqual(PARSING_ONLY);
    expect(help.others).toEqual([]);

    const version = await run(['--version']);
    expect(version.code).toBe(0);
    expect(version.own).toEqual(PARSING_ONLY);
    expect(version.others).toEqual([]);

    for (const args of [['import-synapse', '--media-store', 'x'], ['export', '--out', 'x'], ['hashes', 'import'], ['dedup', '--dry-run', '--delete-old'], ['serve']]) {
      const usage = await run(args);
      expect(usage.code, args.join(' ')).toBe(2);
      expect(usage.stderr).toContain('Usage: hsmedia-server');
      expect(usage.own).toEqual(PARSING_ONLY);
      expect(usage.others).toEqual([]);
    }
  }, 60_000);

  it('check-config loads the config but no command runner, store or server', async () => {
    const result = await run(['check-config']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('configuration OK');
    expect(result.own).toContain('config.js');
    for (const module of ['stores.js', 'server.js', 'supervisor.js', ...RUNNERS.map((runner) => `commands/${runner}`)]) expect(result.own).not.toContain(module);
    // The config's parts only: no thumbnailer (sharp), URL previewer, routes, rate limiters or SQL drivers.
    for (const module of ['thumbnails.js', 'url-preview.js', 'limits.js', 'shared-limits.js', 'database.js']) expect(result.own).not.toContain(module);
    expect(serverOnlyModules(result, await configSubpathModules())).toEqual([]);
    expect(result.others.some((url) => url.endsWith('/thumbnailer/dist/config.js'))).toBe(true);
  }, 60_000);

  it('the config subpaths load no sharp, HTML parser, previewer or package root', async () => {
    const modules = [...(await configSubpathModules())];
    expect(modules.map(packageOf).sort()).toEqual(expect.arrayContaining(['@hsmedia/thumbnailer', '@hsmedia/url-preview']));
    for (const url of modules) {
      expect(['@hsmedia/thumbnailer', '@hsmedia/url-preview'], url).toContain(packageOf(url));
      expect(url).not.toMatch(/\/dist\/(?:index|sharp-thumbnailer|url-previewer|html-metadata|open-graph|oembed)\.js$/);
    }
  }, 60_000);

  it('check-config with URL previews on checks them without loading the previewer', async () => {
    await writeFile(join(dir.path, 'previews.yaml'), 'url_preview:\n  enabled: true\n  ip_range_allowlist: ["0.0.0.0/0"]\n');
    const result = await run(['check-config', '--config', 'previews.yaml']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('url_preview.ip_range_allowlist: No IP range deny list is in effect for IPv4');
    expect(result.own).not.toContain('url-preview.js');
    expect(serverOnlyModules(result, await configSubpathModules())).toEqual([]);
  }, 60_000);

  it('import-synapse loads its own runner and not the other commands or the server', async () => {
    const content: SynapseFixtureContent = {
      local: [{ mediaId: 'AAAAlazy', type: 'text/plain', bytes: Buffer.from('lazy\n'), createdTs: 1_700_000_000_000, uploadName: 'lazy.txt', userId: '@a:hs1.test' }],
      remote: [],
    };
    const media = join(dir.path, 'media_store');
    await writeSynapseMediaStore(media, content);
    await writeSynapseSqlite(join(dir.path, 'homeserver.db'), 'current', content);
    const result = await run(['import-synapse', '--database', 'homeserver.db', '--media-store', media, '--report', 'report.jsonl', '--state', 'state.json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('media: imported 1');
    expect(result.own).toContain('commands/import-synapse-command.js');
    expect(result.others.some((url) => url.includes('/synapse-import/'))).toBe(true);
    const others = RUNNERS.filter((runner) => runner !== 'import-synapse-command.js').map((runner) => `commands/${runner}`);
    for (const module of ['server.js', 'supervisor.js', 'commands/export.js', 'commands/import-mmr.js', ...others]) expect(result.own).not.toContain(module);
    for (const module of ['thumbnails.js', 'url-preview.js', 'limits.js']) expect(result.own).not.toContain(module);
    expect(serverOnlyModules(result, await configSubpathModules())).toEqual([]);
  }, 60_000);
});
