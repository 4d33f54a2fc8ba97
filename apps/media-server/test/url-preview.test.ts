import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { createAddressPolicy } from '@hsmedia/net-guard';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runCommand } from '../src/cli-main.js';
import { parseConfig } from '../src/config.js';
import { startServer, type StartedServer } from '../src/server.js';
import { DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST, UrlPreviewConfigError } from '../src/url-preview.js';
import { download, homeserverKeyFile, LogSink, tempDir, testConfig } from './helpers.js';

/** A 1x1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

const auth = { tokens: { alice_token: '@alice:localhost' } };
const ALICE = { Authorization: 'Bearer alice_token' };
const CLIENT = '/_matrix/client/v1/media/preview_url';
const LEGACY = '/_matrix/media/v3/preview_url';
/** The only non-public range the working tests open, as the brief's test config does. */
const LOOPBACK_ONLY = { enabled: true, ip_range_allowlist: ['127.0.0.1/32'] };

/** A fixture site on a loopback address that counts every connection it accepts. */
interface Site {
  readonly origin: string;
  connections: number;
  close(): Promise<void>;
}

async function startSite(host: string, listener: RequestListener): Promise<Site> {
  const server: Server = createHttpServer(listener);
  const sockets = new Set<Socket>();
  const site = {
    origin: '',
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: Socket) => {
    site.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  site.origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return site;
}

/** An OpenGraph page at `/page` whose image is `/image.png` on the same site. */
const openGraphSite: RequestListener = (req, res) => {
  if (req.url === '/page') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(
      '<!doctype html><html><head><title>fallback</title>' +
        '<meta property="og:title" content="Matrix Blog Post">' +
        '<meta property="og:description" content="A really cool blog post">' +
        '<meta property="og:image" content="/image.png">' +
        '</head><body><p>body</p></body></html>',
    );
    return;
  }
  if (req.url === '/image.png') {
    res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': String(PNG.byteLength) });
    res.end(PNG);
    return;
  }
  res.writeHead(404).end();
};

let dir: { path: string; cleanup(): Promise<void> };
const running: StartedServer[] = [];
const sites: Site[] = [];
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
  await Promise.all(sites.splice(0).map((site) => site.close()));
  await Promise.all(closers.splice(0).map((close) => close()));
  await dir.cleanup();
});

async function start(document: Record<string, unknown>): Promise<StartedServer> {
  const server = await startServer(testConfig(dir.path, document), { logDestination: new LogSink() });
  running.push(server);
  return server;
}

async function site(host: string, listener: RequestListener = openGraphSite): Promise<Site> {
  const started = await startSite(host, listener);
  sites.push(started);
  return started;
}

function previewUrl(server: StartedServer, path: string, target: string, headers: Record<string, string> = ALICE): Promise<Response> {
  return fetch(`${server.url}${path}?url=${encodeURIComponent(target)}`, { headers });
}

describe('preview_url on the reference server', () => {
  it('previews an OpenGraph page: og:title, and og:image stored as local media downloadable through the client endpoint', async () => {
    const fixture = await site('127.0.0.1');
    const server = await start({ auth, url_preview: LOOPBACK_ONLY });
    const response = await previewUrl(server, CLIENT, `${fixture.origin}/page`);
    expect(response.status).toBe(200);
    const preview = (await response.json()) as Record<string, unknown>;
    expect(preview).toMatchObject({
      'og:title': 'Matrix Blog Post',
      'og:description': 'A really cool blog post',
      'og:image:type': 'image/png',
      'og:image:width': 1,
      'og:image:height': 1,
      'matrix:image:size': PNG.byteLength,
    });
    const mxc = preview['og:image'] as string;
    expect(mxc).toMatch(/^mxc:\/\/localhost\/[A-Za-z0-9_-]+$/);

    const image = await download(server.url, 'alice_token', mxc);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await image.arrayBuffer())).toEqual(PNG);

    // Stored as alice's local media, without a file name.
    const mediaId = mxc.split('/').pop()!;
    const record = await server.media.getMedia('localhost', mediaId);
    expect(record).toMatchObject({ contentType: 'image/png', size: PNG.byteLength });
  });

  it('serves the deprecated /_matrix/media/v3/preview_url too (authenticated)', async () => {
    const fixture = await site('127.0.0.1');
    const server = await start({ auth, url_preview: LOOPBACK_ONLY });
    const response = await previewUrl(server, LEGACY, `${fixture.origin}/page`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ 'og:title': 'Matrix Blog Post' });
    const anonymous = await fetch(`${server.url}${LEGACY}?url=${encodeURIComponent(`${fixture.origin}/page`)}`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ errcode: 'M_MISSING_TOKEN' });
  });

  it('refuses a missing url with 400 M_MISSING_PARAM and a bad ts with 400 M_INVALID_PARAM', async () => {
    const server = await start({ auth, url_preview: LOOPBACK_ONLY });
    const missing = await fetch(`${server.url}${CLIENT}`, { headers: ALICE });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ errcode: 'M_MISSING_PARAM' });
    const badTs = await fetch(`${server.url}${CLIENT}?url=http%3A%2F%2F127.0.0.1%2F&ts=yesterday`, { headers: ALICE });
    expect(badTs.status).toBe(400);
    expect(await badTs.json()).toMatchObject({ errcode: 'M_INVALID_PARAM' });
    const notHttp = await previewUrl(server, CLIENT, 'file:///etc/passwd');
    expect(notHttp.status).toBe(400);
    expect(await notHttp.json()).toMatchObject({ errcode: 'M_INVALID_PARAM' });
  });

  it('refuses guests with 403 M_GUEST_ACCESS_FORBIDDEN (homeserver mode reports is_guest)', async () => {
    const fixture = await site('127.0.0.1');
    const homeserver = await site('127.0.0.1', (req, res) => {
      res.setHeader('Content-Type', 'application/json');
      if (req.url !== '/_matrix/client/v3/account/whoami') {
        res.writeHead(404).end('{"errcode":"M_UNRECOGNIZED","error":"no"}');
        return;
      }
      res.end(JSON.stringify({ user_id: '@guest:localhost', device_id: 'GUEST', is_guest: true }));
    });
    await homeserverKeyFile(dir.path);
    const server = await start({ auth: { homeserver_url: homeserver.origin, key_published_elsewhere: true }, url_preview: LOOPBACK_ONLY });
    for (const path of [CLIENT, LEGACY]) {
      const response = await previewUrl(server, path, `${fixture.origin}/page`, { Authorization: 'Bearer guest_token' });
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ errcode: 'M_GUEST_ACCESS_FORBIDDEN' });
    }
    expect(fixture.connections).toBe(0);
  });

  it('answers 404 M_UNRECOGNIZED while previews are disabled (the default), as Synapse does', async () => {
    const fixture = await site('127.0.0.1');
    const server = await start({ auth });
    expect(server.config.urlPreview.enabled).toBe(false);
    for (const path of [CLIENT, LEGACY]) {
      const response = await previewUrl(server, path, `${fixture.origin}/page`);
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
    }
    expect(fixture.connections).toBe(0);
  });

  it('with the default deny list (no allow list) refuses 127.0.0.1, 127.0.0.2 and [::1] without connecting', async () => {
    const targets = [await site('127.0.0.1'), await site('127.0.0.2'), await site('::1')];
    const server = await start({ auth, url_preview: { enabled: true } });
    expect(server.config.urlPreview.ipRangeDenylist).toEqual(DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST);
    for (const target of targets) {
      for (const path of [CLIENT, LEGACY]) {
        const response = await previewUrl(server, path, `${target.origin}/page`);
        expect(response.status, target.origin).toBe(403);
        expect(await response.json()).toEqual({ errcode: 'M_UNKNOWN', error: expect.stringMatching(/^IP address blocked/) });
      }
      expect(target.connections, target.origin).toBe(0);
    }
  });

  it('with the default deny list refuses the IPv4-mapped IPv6 form [::ffff:127.0.0.1] without connecting', async () => {
    const target = await site('127.0.0.1');
    const server = await start({ auth, url_preview: { enabled: true } });
    const port = new URL(target.origin).port;
    for (const path of [CLIENT, LEGACY]) {
      const response = await previewUrl(server, path, `http://[::ffff:127.0.0.1]:${port}/page`);
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ errcode: 'M_UNKNOWN', error: expect.stringMatching(/^IP address blocked/) });
    }
    expect(target.connections).toBe(0);
  });

  it('refuses a redirect from an allowed site (127.0.0.1/32) to a loopback address that is not allowed (127.0.0.2), never connecting to it', async () => {
    const refused = await site('127.0.0.2');
    let redirects = 0;
    const allowed = await site('127.0.0.1', (req, res) => {
      if (req.url === '/jump') {
        redirects += 1;
        res.writeHead(302, { Location: `${refused.origin}/page` }).end();
        return;
      }
      res.writeHead(404).end();
    });
    const server = await start({ auth, url_preview: { ...LOOPBACK_ONLY, cache_ttl_ms: 0 } });
    for (const path of [CLIENT, LEGACY]) {
      const response = await previewUrl(server, path, `${allowed.origin}/jump`);
      expect(response.status, path).toBe(403);
      expect(await response.json()).toEqual({ errcode: 'M_UNKNOWN', error: expect.stringMatching(/^IP address blocked/) });
    }
    // The allowed site was asked (so the refusal is the redirect's; the second answer may come from the
    // previewer's failure cache), the refused one never reached.
    expect(redirects).toBeGreaterThanOrEqual(1);
    expect(refused.connections).toBe(0);
  });

  it('refuses a preview image on a refused address but still answers the page', async () => {
    const image = await site('127.0.0.2');
    const page = await site('127.0.0.1', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<html><head><meta property="og:title" content="Page"><meta property="og:image" content="${image.origin}/image.png"></head></html>`);
    });
    const server = await start({ auth, url_preview: LOOPBACK_ONLY });
    const response = await previewUrl(server, CLIENT, `${page.origin}/`);
    expect(response.status).toBe(200);
    const preview = (await response.json()) as Record<string, unknown>;
    expect(preview['og:title']).toBe('Page');
    expect(preview['og:image']).toBeUndefined();
    expect(image.connections).toBe(0);
  });

  it('maps URL deny rules and upstream failures to Matrix errors', async () => {
    const fixture = await site('127.0.0.1', (_req, res) => {
      res.writeHead(500).end('broken');
    });
    const server = await start({
      auth,
      url_preview: { ...LOOPBACK_ONLY, url_denylist: [{ path: '/secret*' }], cache_ttl_ms: 0 },
    });
    const denied = await previewUrl(server, CLIENT, `${fixture.origin}/secret/x`);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ errcode: 'M_UNKNOWN', error: expect.stringMatching(/^URL blocked/) });
    const broken = await previewUrl(server, CLIENT, `${fixture.origin}/page`);
    expect(broken.status).toBe(502);
    expect(await broken.json()).toMatchObject({ errcode: 'M_UNKNOWN' });
  });
});

describe('url_preview config', () => {
  it('defaults to disabled with the full non-public deny list', () => {
    const result = parseConfig({}, dir.path);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.urlPreview).toMatchObject({
      enabled: false,
      ipRangeDenylist: DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST,
      ipRangeAllowlist: [],
      urlDenylist: [],
      maxPageBytes: 10 * 1024 * 1024,
      maxImageBytes: 10 * 1024 * 1024,
      timeoutMs: 10_000,
      cacheTtlMs: 3_600_000,
      oEmbed: { providersFile: undefined, discovery: true },
    });
  });

  it('lists only ranges net-guard refuses by itself (first and last address of each entry)', () => {
    const policy = createAddressPolicy({});
    for (const entry of DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST) {
      const [first, last] = bounds(entry);
      expect(policy(first), `${entry} first ${first}`).toBe(false);
      expect(policy(last), `${entry} last ${last}`).toBe(false);
    }
  });

  it('refuses previews enabled with an empty ip_range_denylist, keyed', () => {
    const result = parseConfig({ url_preview: { enabled: true, ip_range_denylist: [] } }, dir.path);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/^url_preview\.ip_range_denylist: Must not be empty while URL previews are enabled/);
    // Off, the section is not checked further: an empty list is harmless there.
    expect(parseConfig({ url_preview: { enabled: false, ip_range_denylist: [] } }, dir.path).ok).toBe(true);
  });

  it('reports every problem the previewer refuses under its config key', () => {
    const result = parseConfig(
      {
        url_preview: {
          enabled: true,
          ip_range_allowlist: ['0.0.0.0/0', '::/0'],
          ip_range_denylist: ['300.1.1.1/8'],
          url_denylist: [{ host: '^(' }, {}],
          max_page_size: 0,
          user_agent: 'bad\r\nX-Injected: 1',
          unknown_key: true,
        },
      },
      dir.path,
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const keys = result.errors.map((line) => line.split(':')[0]);
    expect(keys).toEqual(
      expect.arrayContaining(['url_preview.unknown_key', 'url_preview.url_denylist.1']),
    );
    // zod refused the shape first; fix it and the previewer's own checks come through, keyed.
    const second = parseConfig(
      {
        url_preview: {
          enabled: true,
          ip_range_allowlist: ['0.0.0.0/0', '::/0'],
          ip_range_denylist: ['300.1.1.1/8'],
          url_denylist: [{ host: '^(' }],
          max_page_size: 0,
          user_agent: 'bad\r\nX-Injected: 1',
        },
      },
      dir.path,
    );
    expect(second.ok).toBe(false);
    if (second.ok) return;
    const secondKeys = second.errors.map((line) => line.split(':')[0]);
    expect(secondKeys).toEqual(
      expect.arrayContaining([
        'url_preview.ip_range_denylist',
        'url_preview.url_denylist.0.host',
        'url_preview.max_page_size',
        'url_preview.user_agent',
      ]),
    );
    const open = parseConfig({ url_preview: { enabled: true, ip_range_allowlist: ['0.0.0.0/0'] } }, dir.path);
    expect(open.ok).toBe(false);
    if (open.ok) return;
    expect(open.errors).toEqual([expect.stringMatching(/^url_preview\.ip_range_allowlist: no IP range deny list is in effect for IPv4/i)]);
  });

  it('lets an allow list entry open a default range of the same size (allow wins, as Synapse’s whitelist)', () => {
    const result = parseConfig({ url_preview: { enabled: true, ip_range_allowlist: ['127.0.0.0/8'] } }, dir.path);
    expect(result.ok).toBe(true);
  });

  it('fails startup with a keyed error: CLI check-config and start, and createServer for a config built by hand', async () => {
    const file = join(dir.path, 'config.yaml');
    await writeFile(file, `listen: { port: 0 }\nurl_preview:\n  enabled: true\n  ip_range_denylist: []\n`);
    for (const command of ['check-config', 'start']) {
      const stderr: string[] = [];
      const run = command === 'start' ? runCli : runCommand;
      const code = await run([command, '--config', file], {
        stdout: { write: () => true },
        stderr: { write: (text: string) => stderr.push(text) },
        cwd: dir.path,
      });
      expect(code).toBe(1);
      expect(stderr.join('')).toContain('url_preview.ip_range_denylist: Must not be empty while URL previews are enabled');
    }

    const base = testConfig(dir.path, { auth });
    const unsafe = { ...base, urlPreview: { ...base.urlPreview, enabled: true, ipRangeDenylist: [] } };
    const failure = await startServer(unsafe, { logDestination: new LogSink() }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UrlPreviewConfigError);
    expect((failure as UrlPreviewConfigError).problems).toEqual([
      expect.stringMatching(/^url_preview\.ip_range_denylist: Must not be empty/),
    ]);
  });

  it('refuses to start when the oEmbed providers file is missing or malformed, keyed', async () => {
    const missing = join(dir.path, 'nope.json');
    const failure = await startServer(
      testConfig(dir.path, { auth, url_preview: { enabled: true, oembed: { providers_file: missing } } }),
      { logDestination: new LogSink() },
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UrlPreviewConfigError);
    expect((failure as Error).message).toContain('url_preview.oembed.providers_file');

    const bad = join(dir.path, 'providers.json');
    await writeFile(bad, JSON.stringify([{ provider_name: 'X', endpoints: [{ url: 'ftp://x', schemes: ['nope'] }] }]));
    const invalid = await startServer(
      testConfig(dir.path, { auth, url_preview: { enabled: true, oembed: { providers_file: bad } } }),
      { logDestination: new LogSink() },
    ).catch((error: unknown) => error);
    expect(invalid).toBeInstanceOf(UrlPreviewConfigError);
    expect((invalid as UrlPreviewConfigError).problems.every((line) => line.startsWith('url_preview.oembed.providers_file: '))).toBe(true);
  });
});

/** First and last address of a CIDR (IPv4 or IPv6), as strings. */
function bounds(cidr: string): [string, string] {
  const [address, prefixText] = cidr.split('/') as [string, string];
  const prefix = Number(prefixText);
  if (address.includes('.')) {
    const value = address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    const hostBits = BigInt(32 - prefix);
    const first = (value >> hostBits) << hostBits;
    const last = first | ((1n << hostBits) - 1n);
    const text = (n: bigint): string => [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 255n)).join('.');
    return [text(first), text(last)];
  }
  const [head, tail = ''] = address.split('::') as [string, string?];
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === '' ? [] : tail.split(':');
  const parts = [...headParts, ...Array<string>(8 - headParts.length - tailParts.length).fill('0'), ...tailParts];
  const value = parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
  const hostBits = BigInt(128 - prefix);
  const first = (value >> hostBits) << hostBits;
  const last = first | ((1n << hostBits) - 1n);
  const text = (n: bigint): string =>
    Array.from({ length: 8 }, (_, i) => ((n >> BigInt((7 - i) * 16)) & 0xffffn).toString(16)).join(':');
  return [text(first), text(last)];
}
