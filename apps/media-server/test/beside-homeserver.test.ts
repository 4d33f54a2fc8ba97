/**
 * Running beside a homeserver (issue 23): the signing key must be the homeserver's (never created,
 * checked against what the homeserver publishes), the homeserver's admins can be admins here, and
 * `synapse.config_path` reads the shared settings from Synapse's homeserver.yaml. The homeserver
 * is scripted on 127.0.0.1.
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateSigningKey, type SigningKey } from '@hsmedia/signing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCommand } from '../src/cli-main.js';
import { parseConfig } from '../src/config.js';
import { startServer, type StartedServer } from '../src/server.js';
import { homeserverKeyFile, LogSink, publishedKeys, tempDir, testConfig } from './helpers.js';

let dir: { path: string; cleanup(): Promise<void> };
const running: StartedServer[] = [];
const servers: Server[] = [];

beforeEach(async () => {
  dir = await tempDir('hsmedia-beside-');
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
    ),
  );
  await dir.cleanup();
});

/** Tokens: alice is a server admin of the homeserver, bob is not. */
const USERS: Record<string, string> = { alice_token: '@alice:hs.test', bob_token: '@bob:hs.test' };
const HOMESERVER_ADMINS = new Set(['@alice:hs.test']);

interface Homeserver {
  readonly url: string;
  readonly seen: string[];
  publish: Record<string, unknown> | null;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

/** A homeserver as Synapse answers: whoami, its key endpoint, and its admin API for admins only. */
async function homeserver(publish: Record<string, unknown> | null): Promise<Homeserver> {
  const hs: Homeserver = { url: '', seen: [], publish };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    hs.seen.push(path);
    const userId = USERS[(req.headers.authorization ?? '').replace(/^Bearer /, '')];
    if (path === '/_matrix/key/v2/server') {
      if (hs.publish === null) return json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'no' });
      return json(res, 200, hs.publish);
    }
    if (userId === undefined) return json(res, 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' });
    if (path === '/_matrix/client/v3/account/whoami') return json(res, 200, { user_id: userId, device_id: 'D', is_guest: false });
    if (path.startsWith('/_synapse/admin/v2/users/')) {
      if (!HOMESERVER_ADMINS.has(userId)) return json(res, 403, { errcode: 'M_FORBIDDEN', error: 'You are not a server admin' });
      return json(res, 200, { name: decodeURIComponent(path.slice('/_synapse/admin/v2/users/'.length)), admin: true });
    }
    json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'no' });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(hs, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

async function start(document: Record<string, unknown>, log: LogSink = new LogSink()): Promise<StartedServer> {
  const server = await startServer(testConfig(dir.path, { server_name: 'hs.test', ...document }), { logDestination: log });
  running.push(server);
  return server;
}

function sinks(): { io: Parameters<typeof runCli>[1]; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) }, cwd: dir.path },
    out: () => out,
    err: () => err,
  };
}

describe('the signing key in homeserver mode', () => {
  it('refuses to start without the key file, naming the path and the format, and creates nothing', async () => {
    const hs = await homeserver(null);
    const keyPath = join(dir.path, 'data', 'signing.key');
    await expect(start({ auth: { homeserver_url: hs.url } })).rejects.toThrow(
      new RegExp(`${keyPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*never creates one.*ed25519 <key version> <unpadded base64 seed>`),
    );
    expect(existsSync(keyPath)).toBe(false);
    expect(existsSync(join(dir.path, 'data'))).toBe(false);
  });

  it('makes the CLI exit non-zero with that message (start and generate-key)', async () => {
    const hs = await homeserver(null);
    const configPath = join(dir.path, 'config.yaml');
    await writeFile(configPath, `server_name: hs.test\nlisten: {host: 127.0.0.1, port: 0}\nauth:\n  homeserver_url: ${hs.url}\n`);
    const started = sinks();
    expect(await runCli(['start', '--config', configPath], started.io)).toBe(1);
    expect(started.err()).toContain(`cannot start: signing key file ${join(dir.path, 'data', 'signing.key')} cannot be read (ENOENT)`);
    const generated = sinks();
    expect(await runCommand(['generate-key', '--config', configPath], generated.io)).toBe(1);
    expect(generated.err()).toContain('never creates one');
    expect(existsSync(join(dir.path, 'data', 'signing.key'))).toBe(false);
  });

  it('starts when the homeserver publishes our key, and says so', async () => {
    const key = await homeserverKeyFile(dir.path);
    const hs = await homeserver(publishedKeys({ serverName: 'hs.test', key }));
    const log = new LogSink();
    const server = await start({ auth: { homeserver_url: hs.url } }, log);
    expect(server.signingKey.keyId).toBe(key.keyId);
    expect(hs.seen).toContain('/_matrix/key/v2/server');
    expect(log.lines.some((line) => line['msg'] === 'the homeserver publishes our signing key')).toBe(true);
  });

  it.each<[string, (key: SigningKey) => Record<string, unknown> | null, RegExp]>([
    ['another key ID', () => publishedKeys({ serverName: 'hs.test', key: generateSigningKey() }), /the homeserver publishes ed25519:\S+ at .*, not ed25519:/],
    [
      'our key ID with another public key',
      (key) => ({ ...publishedKeys({ serverName: 'hs.test', key }), verify_keys: { [key.keyId]: { key: generateSigningKey().publicKey } } }),
      /with another public key/,
    ],
    ['keys of another server name', (key) => publishedKeys({ serverName: 'other.test', key }), /publishes keys for "other\.test", not for our server_name "hs\.test"/],
    ['no key endpoint', () => null, /answered 404/],
  ])('refuses a key the homeserver does not publish (%s), saying how to fix it', async (_name, publish, detail) => {
    const key = await homeserverKeyFile(dir.path);
    const hs = await homeserver(publish(key));
    const error = (await start({ auth: { homeserver_url: hs.url } }).catch((err: unknown) => err)) as Error;
    expect(error.name).toBe('PublishedKeyMismatchError');
    expect(error.message).toMatch(detail);
    expect(error.message).toContain(`signing key ${key.keyId} of ${join(dir.path, 'data', 'signing.key')}`);
    expect(error.message).toContain("set signing_key_path to the homeserver's own key file");
    expect(error.message).toContain('auth.key_published_elsewhere: true');
  });

  it('refuses to start when the homeserver cannot be asked', async () => {
    await homeserverKeyFile(dir.path);
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((done) => probe.close(done));
    await expect(start({ auth: { homeserver_url: `http://127.0.0.1:${port}` } })).rejects.toThrow(/could not ask the homeserver.*start it first/);
  });

  it('accepts a key published another way with auth.key_published_elsewhere', async () => {
    await homeserverKeyFile(dir.path);
    const hs = await homeserver(publishedKeys({ serverName: 'hs.test', key: generateSigningKey() }));
    const server = await start({ auth: { homeserver_url: hs.url, key_published_elsewhere: true } });
    expect(server.url).toMatch(/^http:/);
    expect(hs.seen).not.toContain('/_matrix/key/v2/server');
  });

  it('still creates a key in standalone mode', async () => {
    const server = await start({ auth: { tokens: { t: '@a:hs.test' } } });
    expect(existsSync(join(dir.path, 'data', 'signing.key'))).toBe(true);
    expect(server.signingKey.keyId).toMatch(/^ed25519:/);
  });

  it('refuses the homeserver-mode options without homeserver_url', () => {
    const result = parseConfig({ auth: { tokens: { t: '@a:b' }, homeserver_admins: true } }, dir.path);
    expect(result.ok ? [] : result.errors).toEqual(['auth: `homeserver_admins` and `key_published_elsewhere` apply only with `homeserver_url`']);
  });
});

describe('admins from the homeserver (auth.homeserver_admins)', () => {
  const ADMIN_API = '/_synapse/admin/v1/statistics/users/media';

  async function adminCall(server: StartedServer, token: string): Promise<Response> {
    return fetch(`${server.url}${ADMIN_API}`, { headers: { Authorization: `Bearer ${token}` } });
  }

  it("lets the homeserver's server admins use the admin API, not the others, asking once per cache period", async () => {
    const key = await homeserverKeyFile(dir.path);
    const hs = await homeserver(publishedKeys({ serverName: 'hs.test', key }));
    const server = await start({ auth: { homeserver_url: hs.url, homeserver_admins: true } });
    expect((await adminCall(server, 'alice_token')).status).toBe(200);
    expect((await adminCall(server, 'alice_token')).status).toBe(200);
    const bob = await adminCall(server, 'bob_token');
    expect(bob.status).toBe(403);
    expect(await bob.json()).toMatchObject({ errcode: 'M_FORBIDDEN' });
    const asked = hs.seen.filter((path) => path.startsWith('/_synapse/admin/v2/users/'));
    expect(asked).toEqual(['/_synapse/admin/v2/users/%40alice%3Ahs.test', '/_synapse/admin/v2/users/%40bob%3Ahs.test']);
  });

  it('keeps the admins list: listed users are admins without asking', async () => {
    const key = await homeserverKeyFile(dir.path);
    const hs = await homeserver(publishedKeys({ serverName: 'hs.test', key }));
    const server = await start({ auth: { homeserver_url: hs.url, homeserver_admins: true }, admins: ['@bob:hs.test'] });
    expect((await adminCall(server, 'bob_token')).status).toBe(200);
    expect(hs.seen.some((path) => path.startsWith('/_synapse/admin/'))).toBe(false);
  });

  it('does not ask without the option: a homeserver admin not listed gets 403', async () => {
    const key = await homeserverKeyFile(dir.path);
    const hs = await homeserver(publishedKeys({ serverName: 'hs.test', key }));
    const server = await start({ auth: { homeserver_url: hs.url } });
    expect((await adminCall(server, 'alice_token')).status).toBe(403);
    expect(hs.seen.some((path) => path.startsWith('/_synapse/admin/'))).toBe(false);
  });
});

describe('synapse.config_path', () => {
  async function synapseConfig(yaml: string): Promise<string> {
    const synapseDir = join(dir.path, 'synapse');
    await mkdir(synapseDir, { recursive: true });
    const path = join(synapseDir, 'homeserver.yaml');
    await writeFile(path, yaml);
    return path;
  }

  const SYNAPSE_YAML = [
    'server_name: "matrix.example.org"',
    'signing_key_path: "keys/matrix.example.org.signing.key"',
    'media_store_path: /var/lib/matrix-synapse/media',
    'max_upload_size: 100M',
    'url_preview_enabled: true',
    'url_preview_ip_range_blacklist: ["127.0.0.0/8", "10.0.0.0/8"]',
    'url_preview_ip_range_whitelist: ["127.0.0.1/32"]',
    'url_preview_url_blacklist:',
    '  - netloc: "google.com"',
    '  - scheme: "http"',
    'max_spider_size: 5M',
    'url_preview_accept_language: ["en-GB", "fr;q=0.8"]',
    'enable_media_repo: false',
    'database: {name: psycopg2}',
    '',
  ].join('\n');

  it('reads the shared settings from homeserver.yaml', async () => {
    const path = await synapseConfig(SYNAPSE_YAML);
    const result = parseConfig({ synapse: { config_path: path }, auth: { homeserver_url: 'http://127.0.0.1:8008' } }, dir.path);
    if (!result.ok) throw new Error(result.errors.join('\n'));
    const { config } = result;
    expect(config.serverName).toBe('matrix.example.org');
    expect(config.signingKeyPath).toBe(join(dir.path, 'synapse', 'keys', 'matrix.example.org.signing.key'));
    expect(config.mediaStore).toEqual({ kind: 'filesystem', path: '/var/lib/matrix-synapse/media' });
    expect(config.maxUploadBytes).toBe(100 * 1024 ** 2);
    expect(config.urlPreview).toMatchObject({
      enabled: true,
      ipRangeDenylist: ['127.0.0.0/8', '10.0.0.0/8'],
      ipRangeAllowlist: ['127.0.0.1/32'],
      urlDenylist: [{ host: 'google.com' }, { scheme: 'http' }],
      maxPageBytes: 5 * 1024 ** 2,
      acceptLanguage: 'en-GB, fr;q=0.8',
    });
  });

  it('lets explicit hsmedia settings win', async () => {
    const path = await synapseConfig(SYNAPSE_YAML);
    const result = parseConfig(
      {
        synapse: { config_path: 'synapse/homeserver.yaml' },
        max_upload_size: '10M',
        media_store: { filesystem: { path: './media' } },
        url_preview: { enabled: false },
      },
      dir.path,
    );
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(path).toBe(join(dir.path, 'synapse', 'homeserver.yaml'));
    expect(result.config.maxUploadBytes).toBe(10 * 1024 ** 2);
    expect(result.config.mediaStore).toEqual({ kind: 'filesystem', path: join(dir.path, 'media') });
    expect(result.config.urlPreview.enabled).toBe(false);
    // What the file leaves out still comes from Synapse.
    expect(result.config.serverName).toBe('matrix.example.org');
    expect(result.config.urlPreview.ipRangeDenylist).toEqual(['127.0.0.0/8', '10.0.0.0/8']);
  });

  it.each([
    ['max_upload_size: lots\n', 'max_upload_size: Expected a size such as "50M"'],
    ['server_name: 42\n', 'server_name: Expected a non-empty string'],
    ['url_preview_ip_range_blacklist: 10.0.0.0/8\n', 'url_preview_ip_range_blacklist: Expected a list of addresses or CIDRs'],
    ['url_preview_url_blacklist:\n  - fragment: "x"\n', 'url_preview_url_blacklist.0.fragment: Not supported here'],
    ['url_preview_enabled: "yes"\n', 'url_preview_enabled: Expected true or false'],
  ])('names the Synapse key at fault: %j', async (yaml, message) => {
    const path = await synapseConfig(yaml);
    const result = parseConfig({ synapse: { config_path: path } }, dir.path);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.errors.join('\n')).toContain(`synapse.config_path: ${path}: ${message}`);
  });

  it('names the Synapse key when a value it gave is refused later', async () => {
    const path = await synapseConfig('server_name: hs.test\nurl_preview_ip_range_blacklist: ["not-an-address"]\n');
    const result = parseConfig({ synapse: { config_path: path } }, dir.path);
    expect(result.ok ? [] : result.errors).toEqual([
      expect.stringMatching(new RegExp(`^url_preview\\.ip_range_denylist\\.0: .*\\(from url_preview_ip_range_blacklist in ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)$`)),
    ]);
  });

  it('reports a missing file and invalid YAML', async () => {
    const missing = parseConfig({ synapse: { config_path: 'nope.yaml' } }, dir.path);
    expect(missing.ok ? [] : missing.errors).toEqual([`synapse.config_path: ${join(dir.path, 'nope.yaml')}: file not found`]);
    const path = await synapseConfig('server_name: [unclosed\n');
    const invalid = parseConfig({ synapse: { config_path: path } }, dir.path);
    expect(invalid.ok ? '' : invalid.errors.join('\n')).toContain(`synapse.config_path: ${path}: invalid YAML`);
  });

  it('is also the CLI flag --synapse-config, with or without --config', async () => {
    const path = await synapseConfig(SYNAPSE_YAML);
    const alone = sinks();
    expect(await runCommand(['check-config', '--synapse-config', 'synapse/homeserver.yaml'], alone.io)).toBe(0);
    expect(alone.out()).toContain('server_name: matrix.example.org');
    expect(alone.out()).toContain(`max_upload_size: ${100 * 1024 ** 2} bytes`);
    const configPath = join(dir.path, 'config.yaml');
    await writeFile(configPath, 'max_upload_size: 1M\n');
    const withConfig = sinks();
    expect(await runCommand(['check-config', '--config', configPath, '--synapse-config', path], withConfig.io)).toBe(0);
    expect(withConfig.out()).toContain('server_name: matrix.example.org');
    expect(withConfig.out()).toContain(`max_upload_size: ${1024 ** 2} bytes`);
    const bad = sinks();
    expect(await runCommand(['check-config', '--synapse-config', 'missing.yaml'], bad.io)).toBe(1);
    expect(bad.err()).toContain(`synapse.config_path: ${join(dir.path, 'missing.yaml')}: file not found`);
  });
});
