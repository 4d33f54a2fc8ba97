import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { tempDir, testConfig } from './helpers.js';
import { ensureNginx, runNginx, type RunningNginx } from './nginx-binary.js';

const appDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLE = join(appDir, 'deploy', 'nginx.conf');
const TOKEN = { Authorization: 'Bearer alice_token' };
/** Per-IP budget of legacy downloads (and per-user of authenticated ones: the tests below download twice as alice). */
const LEGACY_BURST = 3;

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolvePort(port));
    });
  });
}

/** The sample, as an operator would use it, with only the addresses changed and TLS dropped (plain HTTP on loopback). */
function adaptSample(sample: string, ports: { media: number; homeserver: number; nginx: number }): string {
  const adapted = sample
    .replace(/server 127\.0\.0\.1:8009;/, `server 127.0.0.1:${ports.media};`)
    .replace(/server 127\.0\.0\.1:8008;/, `server 127.0.0.1:${ports.homeserver};`)
    .replace(/^\s*listen 443 ssl;.*$/m, `    listen 127.0.0.1:${ports.nginx};`)
    .replace(/^\s*listen 8448 ssl;.*$/m, '')
    .replace(/^\s*ssl_certificate(_key)? .*$/gm, '');
  expect(adapted).not.toMatch(/:8009;|:8008;|ssl/);
  return adapted;
}

let nginx: RunningNginx | undefined;
let nginxUrl = '';
let media: StartedServer | undefined;
let homeserver: Server | undefined;
const homeserverPaths: string[] = [];
let dir: { path: string; cleanup(): Promise<void> } | undefined;

beforeAll(async () => {
  const binary = ensureNginx();
  dir = await tempDir('hsmedia-nginx-');
  media = await startServer(
    testConfig(dir.path, {
      log_level: 'silent',
      auth: { tokens: { alice_token: '@alice:localhost' } },
      max_upload_size: '50M',
      // As the recipe says: believe X-Forwarded-For from nginx (and only nginx).
      listen: { host: '127.0.0.1', port: 0, trusted_proxies: ['127.0.0.1/32'] },
      limits: { download: { per_second: 0.001, burst: LEGACY_BURST } },
    }),
  );
  homeserver = createServer((req, res) => {
    homeserverPaths.push(req.url ?? '');
    req.resume();
    res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'homeserver' }));
  });
  await new Promise<void>((done) => homeserver!.listen(0, '127.0.0.1', done));
  const ports = {
    media: Number(new URL(media.url).port),
    homeserver: (homeserver.address() as AddressInfo).port,
    nginx: await freePort(),
  };
  const site = adaptSample(await readFile(SAMPLE, 'utf8'), ports);
  nginx = await runNginx(binary, join(dir.path, 'nginx'), site);
  nginxUrl = `http://127.0.0.1:${ports.nginx}`;
  // Wait until nginx answers.
  for (let attempt = 0; ; attempt++) {
    try {
      await fetch(`${nginxUrl}/_matrix/client/versions`);
      break;
    } catch (err) {
      if (attempt > 100) throw new Error(`nginx did not start: ${nginx.log()} ${(err as Error).message}`);
      await new Promise((done) => setTimeout(done, 50));
    }
  }
  // The readiness probe above went to the homeserver; start counting from here.
  homeserverPaths.length = 0;
}, 600_000);

afterAll(async () => {
  await nginx?.stop();
  await media?.close();
  await new Promise<void>((done) => (homeserver ? homeserver.close(() => done()) : done()));
  await dir?.cleanup();
});

describe('the sample nginx config in front of the server', () => {
  it('passes an upload and an authenticated download through, bytes and headers intact', async () => {
    const body = randomBytes(300 * 1024);
    const up = await fetch(`${nginxUrl}/_matrix/media/v3/upload?filename=photo.bin`, {
      method: 'POST',
      headers: { ...TOKEN, 'Content-Type': 'application/octet-stream' },
      body,
    });
    expect(up.status).toBe(200);
    const mediaId = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const down = await fetch(`${nginxUrl}/_matrix/client/v1/media/download/localhost/${mediaId}`, { headers: TOKEN });
    expect(down.status).toBe(200);
    expect(down.headers.get('content-type')).toBe('application/octet-stream');
    expect(down.headers.get('content-disposition')).toContain('photo.bin');
    expect(Buffer.from(await down.arrayBuffer()).equals(body)).toBe(true);
    const anonymous = await fetch(`${nginxUrl}/_matrix/client/v1/media/download/localhost/${mediaId}`);
    expect([anonymous.status, ((await anonymous.json()) as { errcode: string }).errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });

  it('routes federation media to the media server and everything else to the homeserver', async () => {
    const federation = await fetch(`${nginxUrl}/_matrix/federation/v1/media/download/abc`);
    expect(federation.status).toBe(401);
    expect(((await federation.json()) as { errcode: string }).errcode).toMatch(/^M_/);
    const unknownMedia = await fetch(`${nginxUrl}/_matrix/media/v3/nonexistent`);
    expect([unknownMedia.status, ((await unknownMedia.json()) as { errcode: string }).errcode]).toEqual([404, 'M_UNRECOGNIZED']);
    const admin = await fetch(`${nginxUrl}/_synapse/admin/v1/statistics/users/media`, { headers: TOKEN });
    expect([admin.status, ((await admin.json()) as { errcode: string }).errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect(homeserverPaths).toEqual([]);
    const other = await fetch(`${nginxUrl}/_matrix/client/v3/sync`);
    expect([other.status, ((await other.json()) as { error: string }).error]).toEqual([404, 'homeserver']);
    expect(homeserverPaths).toEqual(['/_matrix/client/v3/sync']);
  });

  it('streams a large upload to the server while it is still being sent (no request buffering), above nginx’s 1 MiB default', async () => {
    const chunk = randomBytes(1024 * 1024);
    const chunks = 12;
    const hash = createHash('sha256');
    let serverSawRequest!: () => void;
    const seen = new Promise<void>((done) => (serverSawRequest = done));
    const onRequest = (req: { url?: string }): void => {
      if (req.url?.startsWith('/_matrix/media/v3/upload') === true) serverSawRequest();
    };
    media!.httpServer.on('request', onRequest);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 1) {
          // Only half-way through the body: the media server must already have the request.
          const timeout = new Promise<'timeout'>((done) => setTimeout(() => done('timeout'), 10_000));
          if ((await Promise.race([seen, timeout])) === 'timeout') {
            controller.error(new Error('nginx buffered the request body: the server saw nothing before the end'));
            return;
          }
        }
        if (sent === chunks) {
          controller.close();
          return;
        }
        hash.update(chunk);
        controller.enqueue(new Uint8Array(chunk));
        sent++;
      },
    });
    try {
      const up = await fetch(`${nginxUrl}/_matrix/media/v3/upload`, {
        method: 'POST',
        headers: { ...TOKEN, 'Content-Type': 'application/octet-stream' },
        body,
        duplex: 'half',
      } as RequestInit);
      expect(up.status).toBe(200);
      const mediaId = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const down = await fetch(`${nginxUrl}/_matrix/client/v1/media/download/localhost/${mediaId}`, { headers: TOKEN });
      expect(down.headers.get('content-length')).toBe(String(chunks * chunk.length));
      const downloaded = createHash('sha256').update(Buffer.from(await down.arrayBuffer())).digest('hex');
      expect(downloaded).toBe(hash.digest('hex'));
    } finally {
      media!.httpServer.off('request', onRequest);
    }
  });

  it('refuses a body above client_max_body_size with 413 at nginx', async () => {
    const res = await fetch(`${nginxUrl}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { ...TOKEN, 'Content-Type': 'application/octet-stream' },
      body: new Uint8Array(51 * 1024 * 1024),
    });
    expect(res.status).toBe(413);
    await res.arrayBuffer();
  });
});

/** A legacy download through nginx from the loopback source address `from` (a distinct client as nginx sees it). */
function legacyDownloadFrom(from: string, forwardedFor?: string): Promise<number> {
  const { hostname, port } = new URL(nginxUrl);
  return new Promise((resolveStatus, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        path: '/_matrix/media/v3/download/localhost/doesNotExist',
        localAddress: from,
        agent: false,
        headers: forwardedFor === undefined ? {} : { 'X-Forwarded-For': forwardedFor },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolveStatus(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('the client address behind the sample nginx config (listen.trusted_proxies)', () => {
  it('gives each client its own per-IP bucket on legacy downloads, and a forged X-Forwarded-For does not escape it', async () => {
    for (let i = 0; i < LEGACY_BURST; i++) expect(await legacyDownloadFrom('127.0.0.2')).toBe(404);
    expect(await legacyDownloadFrom('127.0.0.2')).toBe(429);
    // nginx appends the real peer (127.0.0.2) after whatever the client wrote: that hop is the client.
    expect(await legacyDownloadFrom('127.0.0.2', '127.0.0.50')).toBe(429);
    // Another client, through the same nginx: its own bucket.
    expect(await legacyDownloadFrom('127.0.0.3')).toBe(404);
  });
});
