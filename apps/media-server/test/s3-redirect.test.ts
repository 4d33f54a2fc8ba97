import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { decodeMultipart } from '@hsmedia/multipart';
import { parseSigningKeyFile, signXMatrixRequest } from '@hsmedia/signing';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { freePort, tempDir, testConfig } from './helpers.js';

// delivery: redirect on a real Ceph RGW, beyond downloads: client and legacy thumbnails (307), the
// federation answers (a `Location` part), our own federation client following that part end to end
// (b.test fetches a.test's media straight from the bucket), and no URL ever issued for media the
// caller may not read (policy-denied, quarantined, pending scan).

const A = 'a.test';
const B = 'b.test';
const TOKEN = 'redirect_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let rgw: RgwCluster;
let bucket: string;
let dir: Awaited<ReturnType<typeof tempDir>>;
let a: StartedServer;
let b: StartedServer;
let scanning: StartedServer;
let policy: Server;
let silentClamd: { port: number; close(): Promise<void> };
/** Media IDs the access policy endpoint refuses. */
const denied = new Set<string>();

function s3Config(prefix: string): Record<string, unknown> {
  return {
    endpoint: rgw.endpoint,
    bucket,
    prefix,
    force_path_style: true,
    access_key_id: rgw.accessKeyId,
    secret_access_key: rgw.secretAccessKey,
    request_timeout_ms: 10_000,
  };
}

async function listening<T extends { listen: (port: number, host: string, done: () => void) => unknown; address: () => unknown }>(server: T): Promise<number> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  [rgw, dir] = await Promise.all([startRgw(), tempDir('hsmedia-s3-redirect-')]);
  bucket = await rgw.createBucket();
  policy = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const { mxc } = JSON.parse(body) as { mxc: string };
      const allow = !denied.has(mxc.split('/').pop()!);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(allow ? { allow } : { allow, errcode: 'M_FORBIDDEN', error: 'denied by policy' }));
    });
  });
  const policyPort = await listening(policy);
  const sockets = new Set<Socket>();
  const clamd = createNetServer((socket) => {
    // A clamd that never answers: every scan stays pending.
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
  });
  silentClamd = {
    port: await listening(clamd),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => clamd.close(() => done()));
    },
  };
  const [portA, portB] = [await freePort(), await freePort()];
  const destinations = { [A]: `http://127.0.0.1:${portA}`, [B]: `http://127.0.0.1:${portB}` };
  const common = (name: string) => ({
    server_name: name,
    log_level: 'silent',
    database: { sqlite: { path: `${name}.sqlite` } },
    signing_key_path: `${name}.key`,
    auth: { tokens: { [TOKEN]: `@alice:${name}` } },
    admins: [`@alice:${name}`],
    // RGW and the peer listen on loopback: allowed for this test only.
    federation: { destinations, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
    legacy_media: { freeze: false },
  });
  [a, b, scanning] = await Promise.all([
    startServer(
      testConfig(dir.path, {
        ...common(A),
        listen: { host: '127.0.0.1', port: portA },
        media_store: { s3: s3Config('a/') },
        delivery: 'redirect',
        access_policy: { http: { url: `http://127.0.0.1:${policyPort}/policy`, cache_ttl: 0 } },
      }),
    ),
    startServer(
      testConfig(dir.path, { ...common(B), listen: { host: '127.0.0.1', port: portB }, media_store: { filesystem: { path: join(dir.path, 'b-media') } } }),
    ),
    startServer(
      testConfig(dir.path, {
        ...common('scan.test'),
        listen: { host: '127.0.0.1', port: 0 },
        media_store: { s3: s3Config('scan/') },
        delivery: 'redirect',
        scanning: { clamd: { port: silentClamd.port }, timeout: '60s', retry_interval: '1h', version_poll_interval: '1h' },
      }),
      { logDestination: { write: () => undefined } },
    ),
  ]);
}, RGW_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), scanning?.close()]);
  await silentClamd?.close();
  await new Promise<void>((done) => (policy ? policy.close(() => done()) : done()));
  await rgw?.stop();
  await dir?.cleanup();
}, 120_000);

async function upload(server: StartedServer, body: Uint8Array, contentType: string, filename: string): Promise<string> {
  const response = await fetch(`${server.url}/_matrix/media/v3/upload?filename=${filename}`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': contentType },
    body,
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function png(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: Math.floor(Math.random() * 255) } } }).png().toBuffer();
}

/** A federation request to a.test signed as b.test (with b.test's own key, which a.test fetches from b.test). */
async function federationGet(uri: string): Promise<Response> {
  const [key] = parseSigningKeyFile(await readFile(join(dir.path, `${B}.key`), 'utf8'));
  const authorization = signXMatrixRequest({ method: 'GET', uri, origin: B, destination: A }, key!);
  return fetch(`${a.url}${uri}`, { headers: { authorization } });
}

/** Reads a federation answer: the `Location` URL, or null when the bytes are inline. */
async function locationOf(response: Response): Promise<string | null> {
  const decoded = await decodeMultipart(response.headers.get('content-type')!, response.body!, { maxContentBytes: 1 << 24 });
  if (decoded.kind === 'location') return decoded.location;
  await new Response(decoded.stream).arrayBuffer();
  return null;
}

const THUMB_QUERY = 'width=64&height=64&method=scale';

describe('delivery: redirect for thumbnails and federation', () => {
  it('client thumbnails answer 307 to a short-lived URL with the thumbnail type and an inline disposition', async () => {
    const mediaId = await upload(a, await png(640, 480), 'image/png', 'big.png');
    const response = await fetch(`${a.url}/_matrix/client/v1/media/thumbnail/${A}/${mediaId}?${THUMB_QUERY}`, { headers: AUTH, redirect: 'manual' });
    expect(response.status).toBe(307);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const location = new URL(response.headers.get('location')!);
    expect(location.origin).toBe(rgw.endpoint);
    expect(Number(location.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(300);
    const direct = await fetch(location);
    expect(direct.status).toBe(200);
    expect(direct.headers.get('content-type')).toMatch(/^image\/(png|jpeg|webp)$/);
    expect(direct.headers.get('content-disposition')).toMatch(/^inline; filename=thumbnail\./);
    expect((await sharp(Buffer.from(await direct.arrayBuffer())).metadata()).width).toBeLessThan(640);
  });

  it('legacy thumbnails redirect only with allow_redirect=true', async () => {
    const mediaId = await upload(a, await png(300, 300), 'image/png', 'l.png');
    const legacy = `${a.url}/_matrix/media/v3/thumbnail/${A}/${mediaId}?${THUMB_QUERY}`;
    const served = await fetch(legacy, { redirect: 'manual' });
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toMatch(/^image\//);
    await served.arrayBuffer();
    const redirected = await fetch(`${legacy}&allow_redirect=true`, { redirect: 'manual' });
    expect(redirected.status).toBe(307);
    expect(new URL(redirected.headers.get('location')!).origin).toBe(rgw.endpoint);
  });

  it('federation downloads and thumbnails answer a Location part that the bucket serves', async () => {
    const body = randomBytes(200_000);
    const mediaId = await upload(a, body, 'application/pdf', 'f.pdf');
    const download = await federationGet(`/_matrix/federation/v1/media/download/${mediaId}`);
    expect(download.status).toBe(200);
    expect(download.headers.get('cache-control')).toBe('no-store');
    const location = await locationOf(download);
    expect(new URL(location!).origin).toBe(rgw.endpoint);
    const direct = await fetch(location!);
    expect(direct.headers.get('content-type')).toBe('application/pdf');
    expect(direct.headers.get('content-disposition')).toBe('attachment; filename=f.pdf');
    expect(Buffer.from(await direct.arrayBuffer()).equals(body)).toBe(true);

    const imageId = await upload(a, await png(500, 400), 'image/png', 't.png');
    const thumbnail = await federationGet(`/_matrix/federation/v1/media/thumbnail/${imageId}?${THUMB_QUERY}`);
    expect(thumbnail.status).toBe(200);
    const thumbnailLocation = await locationOf(thumbnail);
    const thumbnailBytes = Buffer.from(await (await fetch(thumbnailLocation!)).arrayBuffer());
    expect((await sharp(thumbnailBytes).metadata()).width).toBeLessThan(500);
  });

  it('our own federation client follows the Location part: b.test serves a.test media fetched from the bucket', async () => {
    const body = randomBytes(300_000);
    const mediaId = await upload(a, body, 'application/octet-stream', 'remote.bin');
    // What b.test asks a.test for: one federation request, never the legacy endpoint (no fallback).
    const asked: string[] = [];
    const onRequest = (req: { url?: string }): void => void asked.push(req.url ?? '');
    a.httpServer.on('request', onRequest);
    try {
      const viaB = await fetch(`${b.url}/_matrix/client/v1/media/download/${A}/${mediaId}`, { headers: AUTH });
      expect(viaB.status).toBe(200);
      expect(Buffer.from(await viaB.arrayBuffer()).equals(body)).toBe(true);
    } finally {
      a.httpServer.off('request', onRequest);
    }
    const paths = asked.filter((url) => url.includes(mediaId)).map((url) => url.split('?')[0]);
    expect(paths).toEqual([`/_matrix/federation/v1/media/download/${mediaId}`]);
    const imageId = await upload(a, await png(400, 300), 'image/png', 'r.png');
    const thumbViaB = await fetch(`${b.url}/_matrix/client/v1/media/thumbnail/${A}/${imageId}?${THUMB_QUERY}`, { headers: AUTH });
    expect(thumbViaB.status).toBe(200);
    expect((await sharp(Buffer.from(await thumbViaB.arrayBuffer())).metadata()).width).toBeLessThan(400);
  });
});

describe('no URL is issued for media the caller may not read', () => {
  const clientDownload = (mediaId: string): Promise<Response> =>
    fetch(`${a.url}/_matrix/client/v1/media/download/${A}/${mediaId}`, { headers: AUTH, redirect: 'manual' });
  const clientThumbnail = (server: StartedServer, serverName: string, mediaId: string, query = ''): Promise<Response> =>
    fetch(`${server.url}/_matrix/client/v1/media/thumbnail/${serverName}/${mediaId}?${THUMB_QUERY}${query}`, { headers: AUTH, redirect: 'manual' });

  async function expectRefused(response: Response, status: number, errcode: string): Promise<void> {
    expect(response.headers.get('location')).toBeNull();
    expect([response.status, ((await response.json()) as { errcode: string }).errcode]).toEqual([status, errcode]);
  }

  it('policy-denied media: client download and thumbnail, federation download and thumbnail', async () => {
    const mediaId = await upload(a, await png(200, 200), 'image/png', 'd.png');
    denied.add(mediaId);
    await expectRefused(await clientDownload(mediaId), 403, 'M_FORBIDDEN');
    await expectRefused(await clientThumbnail(a, A, mediaId), 403, 'M_FORBIDDEN');
    for (const uri of [`/_matrix/federation/v1/media/download/${mediaId}`, `/_matrix/federation/v1/media/thumbnail/${mediaId}?${THUMB_QUERY}`]) {
      const response = await federationGet(uri);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      await expectRefused(response, 403, 'M_FORBIDDEN');
    }
  });

  it('quarantined media: no URL on any endpoint', async () => {
    const mediaId = await upload(a, await png(200, 200), 'image/png', 'q.png');
    const quarantine = await fetch(`${a.url}/_synapse/admin/v1/media/quarantine/${A}/${mediaId}`, { method: 'POST', headers: AUTH });
    expect(quarantine.status).toBe(200);
    await expectRefused(await clientDownload(mediaId), 404, 'M_NOT_FOUND');
    await expectRefused(await clientThumbnail(a, A, mediaId), 404, 'M_NOT_FOUND');
    await expectRefused(await federationGet(`/_matrix/federation/v1/media/download/${mediaId}`), 404, 'M_NOT_FOUND');
    const legacy = await fetch(`${a.url}/_matrix/media/v3/download/${A}/${mediaId}?allow_redirect=true`, { redirect: 'manual' });
    await expectRefused(legacy, 404, 'M_NOT_FOUND');
  });

  it('media still waiting for its scan verdict: 504 and no URL', async () => {
    const mediaId = await upload(scanning, await png(200, 200), 'image/png', 'p.png');
    const download = await fetch(`${scanning.url}/_matrix/client/v1/media/download/scan.test/${mediaId}?timeout_ms=200`, { headers: AUTH, redirect: 'manual' });
    await expectRefused(download, 504, 'M_NOT_YET_UPLOADED');
    await expectRefused(await clientThumbnail(scanning, 'scan.test', mediaId, '&timeout_ms=200'), 504, 'M_NOT_YET_UPLOADED');
  });
});
