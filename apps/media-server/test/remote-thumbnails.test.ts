import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { openStores, type OpenStores } from '../src/stores.js';
import { freePort, tempDir, testConfig } from './helpers.js';

// a.test holds the media; b.test (remote_thumbnail_first, the default) and c.test (off)
// reach a.test through a counting proxy on 127.0.0.1 that can also answer a.test's
// federation thumbnail endpoint itself: unknown endpoint, failure, a non-image.

const TOKEN = 'remote_thumb_token';
const THUMBNAIL_V1 = '/_matrix/federation/v1/media/thumbnail/';
const DOWNLOAD_V1 = '/_matrix/federation/v1/media/download/';

type ProxyMode = 'pass' | 'unrecognized' | 'fail' | 'html' | 'not_found';

let dir: { path: string; cleanup(): Promise<void> };
let a: StartedServer;
let b: StartedServer;
let c: StartedServer;
let storesB: OpenStores;
let proxy: Server;
/** Paths (with query) of the requests that reached a.test through the proxy. */
const seen: string[] = [];
let mode: ProxyMode = 'pass';

function peerConfig(name: string, port: number, destinations: Record<string, string>, extra: Record<string, unknown> = {}) {
  return testConfig(join(dir.path, name), {
    server_name: name,
    listen: { host: '127.0.0.1', port },
    log_level: 'silent',
    auth: { tokens: { [TOKEN]: `@alice:${name}` } },
    federation: { destinations, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
    ...extra,
  });
}

/** Forwards to a.test and logs the request target, unless `mode` says to answer thumbnails itself. */
function startProxy(portA: number): Promise<number> {
  proxy = createHttpServer((req, res) => {
    const url = req.url ?? '';
    seen.push(url);
    if (url.startsWith(THUMBNAIL_V1) && mode !== 'pass') {
      if (mode === 'html') {
        const boundary = 'b0a3f1e2c4d5';
        res.writeHead(200, { 'Content-Type': `multipart/mixed; boundary=${boundary}` });
        res.end(
          `\r\n--${boundary}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${boundary}\r\n` +
            `Content-Type: text/html\r\n\r\n<html><script>alert(1)</script></html>\r\n--${boundary}--\r\n`,
        );
        return;
      }
      const [status, errcode] = mode === 'unrecognized' ? [404, 'M_UNRECOGNIZED'] : mode === 'not_found' ? [404, 'M_NOT_FOUND'] : [500, 'M_UNKNOWN'];
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errcode, error: 'scripted' }));
      return;
    }
    const upstream = httpRequest({ host: '127.0.0.1', port: portA, method: req.method, path: url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as AddressInfo).port)));
}

beforeAll(async () => {
  dir = await tempDir('hsmedia-remote-thumbnails-');
  const [portA, portB, portC] = [await freePort(), await freePort(), await freePort()];
  const proxyPort = await startProxy(portA);
  const direct = { 'a.test': `http://127.0.0.1:${portA}`, 'b.test': `http://127.0.0.1:${portB}`, 'c.test': `http://127.0.0.1:${portC}` };
  const viaProxy = { ...direct, 'a.test': `http://127.0.0.1:${proxyPort}` };
  // a.test also answers the legacy thumbnail endpoint (the fallback tested below): opt out of the default freeze.
  a = await startServer(peerConfig('a.test', portA, direct, { legacy_media: { freeze: false } }));
  b = await startServer(peerConfig('b.test', portB, viaProxy));
  c = await startServer(peerConfig('c.test', portC, viaProxy, { thumbnails: { remote_thumbnail_first: false } }));
  storesB = await openStores(b.config);
}, 60_000);

afterEach(() => {
  mode = 'pass';
  seen.length = 0;
});

afterAll(async () => {
  await storesB?.close();
  await a?.close();
  await b?.close();
  await c?.close();
  await new Promise((resolve) => proxy?.close(resolve));
  await dir?.cleanup();
});

/** A noisy gradient, so the encoders have content. */
async function photo(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = ((x ^ y) * 7) & 255;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

async function upload(server: StartedServer, body: Uint8Array): Promise<string> {
  const res = await fetch(`${server.url}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'image/jpeg' },
    body,
  });
  expect(res.status).toBe(200);
  const { content_uri } = (await res.json()) as { content_uri: string };
  return content_uri.slice(`mxc://${server.config.serverName}/`.length);
}

function thumbnail(server: StartedServer, origin: string, mediaId: string, query: string): Promise<Response> {
  return fetch(`${server.url}/_matrix/client/v1/media/thumbnail/${origin}/${mediaId}?${query}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
}

async function bytesOf(res: Response): Promise<Buffer> {
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** The media requests (not key fetches) that reached a.test. */
function mediaRequests(): string[] {
  return seen.filter((url) => url.startsWith('/_matrix/federation/v1/media/') || url.startsWith('/_matrix/media/'));
}

describe('thumbnails of uncached remote media (remote_thumbnail_first)', () => {
  it('asks the remote thumbnail endpoint once, never downloads, and serves the cached row afterwards', async () => {
    const id = await upload(a, await photo(1200, 900));
    const query = 'width=96&height=96&method=crop';
    const own = await bytesOf(await thumbnail(a, 'a.test', id, query));

    const first = await thumbnail(b, 'a.test', id, query);
    expect(first.headers.get('content-type')).toBe('image/jpeg');
    expect(first.headers.get('content-disposition')).toBe('inline; filename=thumbnail.jpg');
    expect((await bytesOf(first)).equals(own)).toBe(true);
    expect(mediaRequests()).toEqual([`${THUMBNAIL_V1}${id}?width=96&height=96&method=crop&animated=false&timeout_ms=20000`]);

    // Stored as a thumbnail row of the remote media; no media row (it would look like the original is cached).
    expect(await storesB.metadata.getMedia('a.test', id)).toBeNull();
    const rows = await storesB.metadata.listThumbnails('a.test', id);
    expect(rows.map((r) => [r.width, r.height, r.method, r.animated, r.contentType])).toEqual([[96, 96, 'crop', false, 'image/jpeg']]);

    seen.length = 0;
    expect((await bytesOf(await thumbnail(b, 'a.test', id, query))).equals(own)).toBe(true);
    // Not dynamic: a nearby size is answered by the same configured size, so nothing new is asked or stored.
    expect((await bytesOf(await thumbnail(b, 'a.test', id, 'width=90&height=90&method=crop'))).equals(own)).toBe(true);
    expect(mediaRequests()).toEqual([]);
    expect(await storesB.metadata.listThumbnails('a.test', id)).toHaveLength(1);
  });

  it('asks for the best configured size when not dynamic, and gives the same bytes as the remote does for it', async () => {
    const id = await upload(a, await photo(1000, 750));
    const own = await bytesOf(await thumbnail(a, 'a.test', id, 'width=640&height=480&method=scale'));
    const remote = await bytesOf(await thumbnail(b, 'a.test', id, 'width=600&height=400&method=scale'));
    expect(remote.equals(own)).toBe(true);
    expect(mediaRequests()).toEqual([`${THUMBNAIL_V1}${id}?width=640&height=480&method=scale&animated=false&timeout_ms=20000`]);
    const meta = await sharp(remote).metadata();
    expect([meta.width, meta.height]).toEqual([640, 480]);
  });

  it('falls back to the legacy thumbnail endpoint when the remote does not know v1', async () => {
    const id = await upload(a, await photo(800, 600));
    const own = await bytesOf(await thumbnail(a, 'a.test', id, 'width=32&height=32&method=crop'));
    mode = 'unrecognized';
    const remote = await bytesOf(await thumbnail(b, 'a.test', id, 'width=32&height=32&method=crop'));
    expect(remote.equals(own)).toBe(true);
    expect(mediaRequests()).toEqual([
      `${THUMBNAIL_V1}${id}?width=32&height=32&method=crop&animated=false&timeout_ms=20000`,
      `/_matrix/media/v3/thumbnail/a.test/${id}?width=32&height=32&method=crop&animated=false&allow_remote=false&timeout_ms=20000&allow_redirect=true`,
    ]);
    expect(await storesB.metadata.getMedia('a.test', id)).toBeNull();
  });

  it.each([
    ['fails', 'fail'],
    ['answers a non-image', 'html'],
  ] as const)('fetches the original and thumbnails it locally when the remote thumbnail endpoint %s', async (_name, failure) => {
    const id = await upload(a, await photo(800, 600));
    mode = failure;
    const res = await thumbnail(b, 'a.test', id, 'width=320&height=240&method=scale');
    const body = await bytesOf(res);
    const meta = await sharp(body).metadata();
    expect(meta.format).toBe('jpeg');
    expect([meta.width, meta.height]).toEqual([320, 240]);
    // Made here from the original by the same generator: the bytes a.test gives for the same parameters.
    expect(body.equals(await bytesOf(await thumbnail(a, 'a.test', id, 'width=320&height=240&method=scale')))).toBe(true);
    const requests = mediaRequests();
    expect(requests[0]).toBe(`${THUMBNAIL_V1}${id}?width=320&height=240&method=scale&animated=false&timeout_ms=20000`);
    expect(requests.slice(1)).toEqual([`${DOWNLOAD_V1}${id}?timeout_ms=20000`]);
    // The original is cached now: later requests are thumbnailed here, with no federation request.
    expect(await storesB.metadata.getMedia('a.test', id)).not.toBeNull();
    seen.length = 0;
    mode = 'pass';
    expect((await bytesOf(await thumbnail(b, 'a.test', id, 'width=320&height=240&method=scale'))).equals(body)).toBe(true);
    expect(mediaRequests()).toEqual([]);
  });

  it('answers 404 when the remote says the media does not exist, without downloading', async () => {
    mode = 'not_found';
    const res = await thumbnail(b, 'a.test', 'NoSuchMediaHere', 'width=32&height=32&method=crop');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
    expect(mediaRequests()).toEqual([`${THUMBNAIL_V1}NoSuchMediaHere?width=32&height=32&method=crop&animated=false&timeout_ms=20000`]);
  });

  it('thumbnails a cached original locally, never asking the remote', async () => {
    const id = await upload(a, await photo(640, 480));
    const download = await fetch(`${b.url}/_matrix/client/v1/media/download/a.test/${id}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(download.status).toBe(200);
    await download.arrayBuffer();
    seen.length = 0;
    const res = await thumbnail(b, 'a.test', id, 'width=96&height=96&method=crop');
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(mediaRequests()).toEqual([]);
  });

  it('does not serve remote media thumbnails over federation (local media only)', async () => {
    const id = await upload(a, await photo(400, 300));
    await bytesOf(await thumbnail(b, 'a.test', id, 'width=32&height=32&method=crop'));
    // c.test asks b.test for a.test's media: b.test holds a thumbnail row, but the endpoint is local-only.
    const { signXMatrixRequest } = await import('@hsmedia/signing');
    const uri = `/_matrix/federation/v1/media/thumbnail/${id}?width=32&height=32&method=crop`;
    const authorization = signXMatrixRequest({ method: 'GET', uri, origin: 'c.test', destination: 'b.test' }, c.signingKey);
    const res = await fetch(`${b.url}${uri}`, { headers: { Authorization: authorization } });
    expect(res.status).toBe(404);
  });

  it('with remote_thumbnail_first off, fetches the original', async () => {
    const id = await upload(a, await photo(400, 300));
    const res = await thumbnail(c, 'a.test', id, 'width=32&height=32&method=crop');
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(mediaRequests()).toEqual([`${DOWNLOAD_V1}${id}?timeout_ms=20000`]);
  });
});
