import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CliProcess, runToExit } from './cli-process.js';
import { download, fakeHomeserver, homeserverKeyFile, tempDir, upload } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

beforeAll(async () => {
  // The test drives the real executable, so build it (and the packages it imports).
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
}, 240_000);

let dir: { path: string; cleanup(): Promise<void> };
const processes: CliProcess[] = [];

beforeEach(async () => {
  dir = await tempDir('hsmedia-cli-');
});
afterEach(async () => {
  for (const cli of processes.splice(0)) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    await cli.exited;
  }
  await dir.cleanup();
});

async function writeConfig(yaml: string): Promise<string> {
  const path = join(dir.path, 'config.yaml');
  await writeFile(path, yaml);
  return path;
}

function spawnServer(configPath: string): CliProcess {
  const cli = new CliProcess(['--config', configPath], dir.path);
  processes.push(cli);
  return cli;
}

// One process: these tests count per-process behaviour (start-up clean-up, drain); supervisor.test.ts covers workers > 1.
const BASE = 'workers: 1\nlisten:\n  host: 127.0.0.1\n  port: 0\n';
const STATIC_AUTH = 'auth:\n  tokens:\n    alice_token: "@alice:localhost"\n';

/** Starts an upload of `total` bytes, sends `sent` of them and keeps the request open. */
function partialUpload(url: string, token: string, total: number, sent: number) {
  const req = request(`${url}/_matrix/media/v3/upload?filename=slow.bin`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream', 'Content-Length': total },
  });
  const response = new Promise<{ status: number; body: string } | { error: Error }>((resolve) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
  });
  req.write(Buffer.alloc(sent, 0x61));
  return { req, response, rest: () => req.end(Buffer.alloc(total - sent, 0x62)) };
}

async function stagingFiles(): Promise<string[]> {
  try {
    return await readdir(join(dir.path, 'data', 'media', 'staging'));
  } catch {
    return [];
  }
}

/** Polls until an upload's staging file exists, i.e. the server is streaming it to disk. */
async function untilStagingFile(cli: CliProcess): Promise<string[]> {
  for (;;) {
    const files = await stagingFiles();
    if (files.length > 0) return files;
    if (cli.child.exitCode !== null) throw new Error(`server exited\n${cli.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Rows in the media table, read through the store's own knex handle. */
async function mediaRowCount(): Promise<number> {
  const store = await createSqliteMetadataStore({ path: join(dir.path, 'data', 'media.db'), migrate: false });
  try {
    const [row] = (await store.knex('media').count({ n: '*' })) as { n: number | string }[];
    return Number(row?.n);
  } finally {
    await store.close();
  }
}

describe('command line', () => {
  it('prints help and version, and refuses unknown commands and options with exit code 2', async () => {
    const help = await runToExit(['--help'], dir.path);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: hsmedia-server');
    expect((await runToExit(['--version'], dir.path)).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const unknown = await runToExit(['serve'], dir.path);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command: serve');
    expect((await runToExit(['--confg', 'x'], dir.path)).code).toBe(2);
  });

  it('refuses to start with an invalid config, listing every problem on stderr (exit 1)', async () => {
    const path = await writeConfig('listen:\n  port: "80"\nmax_upload_size: 5X\nserver_nme: a\nauth:\n  tokens: {t: "@a:b"}\n  homeserver_url: http://127.0.0.1\n');
    const result = await runToExit(['--config', path], dir.path);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('invalid configuration (4 problems)');
    expect(result.stderr).toContain('listen.port: Expected number, got string');
    expect(result.stderr).toContain('max_upload_size: Expected a size');
    expect(result.stderr).toContain('server_nme: Unknown key');
    expect(result.stderr).toContain('auth: Set exactly one of `tokens`, `homeserver_url`');
    expect(await readdir(dir.path)).toEqual(['config.yaml']);
  });

  it('reports a missing config file', async () => {
    const result = await runToExit(['--config', 'nope.yaml'], dir.path);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('nope.yaml: file not found');
  });

  it('config-schema prints the JSON Schema', async () => {
    const result = await runToExit(['config-schema'], dir.path);
    expect(result.code).toBe(0);
    const schema = JSON.parse(result.stdout) as { $schema: string; properties: Record<string, unknown> };
    expect(schema.$schema).toContain('json-schema.org');
    expect(schema.properties).toHaveProperty('max_upload_size');
  });

  it('check-config validates the sample config', async () => {
    const sample = fileURLToPath(new URL('../config.sample.yaml', import.meta.url));
    const result = await runToExit(['check-config', '--config', sample], dir.path);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('configuration OK');
  });

  it('runs as `npx hsmedia-server` from the repository root, as the README documents', async () => {
    // npm links a bin into node_modules/.bin at install time only when its file exists, and `npm ci`
    // runs before the first build: so the bin is a committed launcher, never a file under dist/.
    const manifest = JSON.parse(await readFile(join(repoRoot, 'apps/media-server/package.json'), 'utf8')) as { bin: Record<string, string> };
    const bin = manifest.bin['hsmedia-server']!;
    expect(bin).not.toMatch(/dist\//);
    const tracked = await promisify(execFile)('git', ['ls-files', '--error-unmatch', join('apps/media-server', bin)], { cwd: repoRoot });
    expect(tracked.stdout.trim()).toBe('apps/media-server/bin/hsmedia-server.js');
    const readme = await readFile(join(repoRoot, 'apps/media-server/README.md'), 'utf8');
    expect(readme).toMatch(/^npx hsmedia-server\b/m);
    // The documented command, from the root; --no-install makes a missing link fail here instead of
    // quietly asking the registry (which is what the bug looked like).
    const sample = fileURLToPath(new URL('../config.sample.yaml', import.meta.url));
    const result = await promisify(execFile)('npx', ['--no-install', 'hsmedia-server', 'check-config', '--config', sample], { cwd: repoRoot });
    expect(result.stdout).toContain('configuration OK');
  });

  it('generate-key creates the key file once; migrate creates the database', async () => {
    const path = await writeConfig(BASE);
    const first = await runToExit(['generate-key', '--config', path], dir.path);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^created .*signing\.key\nkey_id: ed25519:a_\w{4}\npublic_key: [A-Za-z0-9+/]{43}\n$/);
    const keyFile = await readFile(join(dir.path, 'data', 'signing.key'), 'utf8');
    const second = await runToExit(['generate-key', '--config', path], dir.path);
    expect(second.stdout).toMatch(/^kept existing/);
    expect(await readFile(join(dir.path, 'data', 'signing.key'), 'utf8')).toBe(keyFile);

    const migrate = await runToExit(['migrate', '--config', path], dir.path);
    expect(migrate.code).toBe(0);
    expect((await stat(join(dir.path, 'data', 'media.db'))).isFile()).toBe(true);
    expect(await mediaRowCount()).toBe(0);
  });
});

describe('running server', () => {
  it('serves upload + download with a static token and /versions, and stops on SIGTERM with exit 0', async () => {
    const cli = spawnServer(await writeConfig(BASE + STATIC_AUTH));
    const url = await cli.listening();
    const uploaded = await upload(url, 'alice_token', 'spawned');
    expect(uploaded.status).toBe(200);
    const { content_uri: contentUri } = (await uploaded.json()) as { content_uri: string };
    expect(await (await download(url, 'alice_token', contentUri)).text()).toBe('spawned');
    const versions = (await (await fetch(`${url}/_matrix/client/versions`)).json()) as { versions: string[] };
    expect(versions.versions).toContain('v1.11');
    expect(cli.stderr).toBe('');

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    const requests = cli.logLines().filter((line) => line['msg'] === 'request');
    expect(requests.map((line) => [line['method'], line['status']])).toEqual([
      ['POST', 200],
      ['GET', 200],
      ['GET', 200],
    ]);
    expect(cli.logLines().at(-1)).toMatchObject({ msg: 'stopped' });
  });

  it('checks tokens with the homeserver in whoami mode', async () => {
    const key = await homeserverKeyFile(dir.path);
    const homeserver = await fakeHomeserver({ hs_token: '@bob:localhost' }, { serverName: 'localhost', key });
    try {
      const cli = spawnServer(await writeConfig(`${BASE}auth:\n  homeserver_url: ${homeserver.url}\n`));
      const url = await cli.listening();
      const uploaded = await upload(url, 'hs_token', 'via whoami');
      expect(uploaded.status).toBe(200);
      const { content_uri: contentUri } = (await uploaded.json()) as { content_uri: string };
      expect(await (await download(url, 'hs_token', contentUri)).text()).toBe('via whoami');
      expect((await download(url, 'wrong', contentUri)).status).toBe(401);
      expect((await fetch(`${url}/_matrix/client/versions`)).status).toBe(404);
      cli.child.kill('SIGINT');
      expect((await cli.exited).code).toBe(0);
    } finally {
      await homeserver.close();
    }
  });

  it('prints a generated admin token once on first start; it works, and restarts reuse it silently', async () => {
    const configPath = await writeConfig(BASE);
    const first = spawnServer(configPath);
    const url = await first.listening();
    const token = await first.waitFor(() => /Bearer (hsm_[A-Za-z0-9_-]+)/.exec(first.stderr)?.[1], 'admin token banner');
    expect(first.stderr).toContain('@admin:localhost');
    expect(first.stderr).toContain(`curl -H 'Authorization: Bearer ${token}'`);
    expect(first.stderr).toContain(`${url}/_matrix/media/v3/upload`);
    expect(first.stdout).not.toContain(token);
    expect((await upload(url, token, 'first')).status).toBe(200);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);

    const second = spawnServer(configPath);
    const url2 = await second.listening();
    expect((await upload(url2, token, 'second')).status).toBe(200);
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(second.stderr).toBe('');
  });

  it('SIGTERM during a slow upload lets it finish, then exits 0', async () => {
    const cli = spawnServer(await writeConfig(BASE + STATIC_AUTH + 'shutdown_timeout_ms: 60000\n'));
    const url = await cli.listening();
    const slow = partialUpload(url, 'alice_token', 4096, 1024);
    await untilStagingFile(cli);
    cli.child.kill('SIGTERM');
    await cli.waitFor(() => cli.logLines().some((line) => line['msg'] === 'shutting down'), 'shutting down');
    // New connections are refused while the old one drains.
    await expect(fetch(`${url}/_matrix/client/versions`)).rejects.toThrow();
    slow.rest();
    const response = await slow.response;
    expect(response).toMatchObject({ status: 200 });
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    expect(await stagingFiles()).toEqual([]);
    expect(await mediaRowCount()).toBe(1);
  });

  it('SIGTERM with an upload that outlives the deadline cuts it, cleans up and exits 0', async () => {
    const cli = spawnServer(await writeConfig(BASE + STATIC_AUTH + 'shutdown_timeout_ms: 100\n'));
    const url = await cli.listening();
    const slow = partialUpload(url, 'alice_token', 4096, 1024);
    await untilStagingFile(cli);
    cli.child.kill('SIGTERM');
    expect(await slow.response).toHaveProperty('error');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    expect(await stagingFiles()).toEqual([]);
    expect(await mediaRowCount()).toBe(0);
    expect(cli.logLines()).toContainEqual(expect.objectContaining({ drained: false }));
  });

  it('a server killed mid-upload leaves a staging file that the next start removes, and no media row', async () => {
    const configPath = await writeConfig(BASE + STATIC_AUTH);
    const killed = spawnServer(configPath);
    const url = await killed.listening();
    const slow = partialUpload(url, 'alice_token', 4096, 1024);
    const leftover = await untilStagingFile(killed);
    killed.child.kill('SIGKILL');
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await slow.response).toHaveProperty('error');
    expect(await stagingFiles()).toEqual(leftover);

    const next = spawnServer(configPath);
    await next.listening();
    expect(await stagingFiles()).toEqual([]);
    expect(next.logLines()).toContainEqual(expect.objectContaining({ msg: 'removed staging files of unfinished uploads', count: 1 }));
    expect(await mediaRowCount()).toBe(0);
    next.child.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
  });
});
