import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { decodeMultipart } from '@hsmedia/multipart';
import { signXMatrixRequest } from '@hsmedia/signing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { openStores, type OpenStores } from '../src/stores.js';
import { freePort, tempDir, testConfig } from './helpers.js';

// Two in-process servers on 127.0.0.1 wired together by federation.destinations:
// a.test with dynamic thumbnails, b.test with the pre-generated sizes only and the
// legacy endpoints frozen.

const TOKEN = 'thumb_token';
let dir: { path: string; cleanup(): Promise<void> };
let a: StartedServer;
let b: StartedServer;
let storesA: OpenStores;

function peerConfig(name: string, port: number, destinations: Record<string, string>, extra: Record<string, unknown>) {
  return testConfig(join(dir.path, name), {
    server_name: name,
    listen: { host: '127.0.0.1', port },
    log_level: 'silent',
    auth: { tokens: { [TOKEN]: `@alice:${name}` } },
    federation: { destinations, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
    ...extra,
  });
}

beforeAll(async () => {
  dir = await tempDir('hsmedia-thumbnails-');
  const [portA, portB] = [await freePort(), await freePort()];
  const destinations = { 'a.test': `http://127.0.0.1:${portA}`, 'b.test': `http://127.0.0.1:${portB}` };
  // a.test serves the legacy endpoints (the freeze is on by default); b.test keeps the default freeze.
  a = await startServer(peerConfig('a.test', portA, destinations, { thumbnails: { dynamic: true, max_concurrent: 2 }, legacy_media: { freeze: false } }));
  b = await startServer(peerConfig('b.test', portB, destinations, {}));
  storesA = await openStores(a.config);
}, 60_000);

afterAll(async () => {
  await storesA?.close();
  await a?.close();
  await b?.close();
  await dir?.cleanup();
});

/** A noisy gradient, so the encoders have content. */
async function photo(width: number, height: number, format: 'jpeg' | 'png'): Promise<Buffer> {
  const channels = format === 'png' ? 4 : 3;
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = ((x ^ y) * 7) & 255;
      if (channels === 4) pixels[i + 3] = x < width / 2 ? 255 : 128;
    }
  }
  const image = sharp(pixels, { raw: { width, height, channels } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 90 }).toBuffer();
}

async function animatedGif(width: number, height: number): Promise<Buffer> {
  const frames = await Promise.all(
    ['#ff0000', '#00ff00', '#0000ff'].map((background) =>
      sharp({ create: { width, height, channels: 4, background } }).png().toBuffer(),
    ),
  );
  return sharp(frames, { join: { animated: true } }).gif({ delay: [100, 100, 100], loop: 0 }).toBuffer();
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A decompression bomb: a valid PNG header (right CRC) claiming 100000x100000 RGB, then a tiny IDAT. */
function pngBomb(): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(100_000, 0);
  header.writeUInt32BE(100_000, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', header), pngChunk('IDAT', deflateSync(Buffer.alloc(1024))), pngChunk('IEND', Buffer.alloc(0))]);
}

async function animatedWebp(width: number, height: number): Promise<Buffer> {
  const frames = await Promise.all(
    ['#ff0000', '#00ff00', '#0000ff', '#ffff00'].map((background) =>
      sharp({ create: { width, height, channels: 4, background } }).png().toBuffer(),
    ),
  );
  return sharp(frames, { join: { animated: true } }).webp({ delay: [100, 100, 100, 100], loop: 0 }).toBuffer();
}

async function upload(server: StartedServer, body: Uint8Array, contentType: string): Promise<string> {
  const res = await fetch(`${server.url}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': contentType },
    body,
  });
  expect(res.status).toBe(200);
  const { content_uri } = (await res.json()) as { content_uri: string };
  return content_uri.slice(`mxc://${server.config.serverName}/`.length);
}

function thumbnail(server: StartedServer, origin: string, mediaId: string, query: string, init: { token?: string | null; headers?: Record<string, string> } = {}): Promise<Response> {
  const token = init.token === undefined ? TOKEN : init.token;
  return fetch(`${server.url}/_matrix/client/v1/media/thumbnail/${origin}/${mediaId}?${query}`, {
    headers: { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...init.headers },
  });
}

async function errcodeOf(res: Response): Promise<string> {
  return ((await res.json()) as { errcode: string }).errcode;
}

async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

const DEFAULT_SIZES = [
  { width: 32, height: 32, method: 'crop' },
  { width: 96, height: 96, method: 'crop' },
  { width: 320, height: 240, method: 'scale' },
  { width: 640, height: 480, method: 'scale' },
  { width: 800, height: 600, method: 'scale' },
] as const;

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('client thumbnails', () => {
  it('serves every recommended size of a JPEG: real size, decodable, image/jpeg, inline thumbnail.jpg, ETag and 304', async () => {
    const id = await upload(a, await photo(1200, 900, 'jpeg'), 'image/jpeg');
    for (const size of DEFAULT_SIZES) {
      const res = await thumbnail(a, 'a.test', id, `width=${size.width}&height=${size.height}&method=${size.method}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      expect(res.headers.get('content-disposition')).toBe('inline; filename=thumbnail.jpg');
      expect(res.headers.get('content-security-policy')).toContain('sandbox');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toMatch(/^private/);
      const body = await bytesOf(res);
      const meta = await sharp(body).metadata();
      expect(meta.format).toBe('jpeg');
      // 4:3 source: every recommended size is met exactly.
      expect([meta.width, meta.height]).toEqual([size.width, size.height]);
      const etag = res.headers.get('etag');
      expect(etag).toMatch(/^".+"$/);
      const again = await thumbnail(a, 'a.test', id, `width=${size.width}&height=${size.height}&method=${size.method}`, {
        headers: { 'If-None-Match': etag! },
      });
      expect(again.status).toBe(304);
    }
  });

  it('serves a PNG with transparency as image/png within the box', async () => {
    const id = await upload(a, await photo(1000, 800, 'png'), 'image/png');
    for (const size of DEFAULT_SIZES) {
      const res = await thumbnail(a, 'a.test', id, `width=${size.width}&height=${size.height}&method=${size.method}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('content-disposition')).toBe('inline; filename=thumbnail.png');
      const meta = await sharp(await bytesOf(res)).metadata();
      expect(meta.format).toBe('png');
      expect(meta.hasAlpha).toBe(true);
      if (size.method === 'crop') expect([meta.width, meta.height]).toEqual([size.width, size.height]);
      else {
        // 5:4 into 4:3 boxes: height-limited.
        expect(meta.height).toBe(size.height);
        expect(meta.width).toBe(Math.round((size.height * 1000) / 800));
      }
    }
  });

  it('generates a size outside the defaults on demand when dynamic, and stores it', async () => {
    const id = await upload(a, await photo(1200, 900, 'jpeg'), 'image/jpeg');
    const crop = await thumbnail(a, 'a.test', id, 'width=150&height=100&method=crop');
    expect(crop.status).toBe(200);
    const cropBytes = await bytesOf(crop);
    expect(await sharp(cropBytes).metadata()).toMatchObject({ width: 150, height: 100, format: 'jpeg' });
    const scale = await thumbnail(a, 'a.test', id, 'width=500&height=500&method=scale');
    expect(await sharp(await bytesOf(scale)).metadata()).toMatchObject({ width: 500, height: 375 });
    const rows = await storesA.metadata.listThumbnails('a.test', id);
    expect(rows.some((row) => row.width === 150 && row.height === 100 && row.method === 'crop')).toBe(true);
    // Stored: the same bytes again.
    expect((await bytesOf(await thumbnail(a, 'a.test', id, 'width=150&height=100&method=crop'))).equals(cropBytes)).toBe(true);
  });

  it('answers other sizes with the best pre-generated one when not dynamic', async () => {
    const id = await upload(b, await photo(1200, 900, 'jpeg'), 'image/jpeg');
    const res = await thumbnail(b, 'b.test', id, 'width=150&height=100&method=crop');
    expect(res.status).toBe(200);
    const meta = await sharp(await bytesOf(res)).metadata();
    expect([
      [32, 32],
      [96, 96],
    ]).toContainEqual([meta.width, meta.height]);
    const scale = await thumbnail(b, 'b.test', id, 'width=700&height=500');
    expect(await sharp(await bytesOf(scale)).metadata()).toMatchObject({ width: 800, height: 600 });
  });

  it('animates an animated GIF as image/webp only when animated=true', async () => {
    const gif = await animatedGif(400, 300);
    for (const server of [a, b]) {
      const origin = server.config.serverName;
      const id = await upload(server, gif, 'image/gif');
      const moving = await thumbnail(server, origin, id, 'width=96&height=96&method=crop&animated=true');
      expect(moving.status).toBe(200);
      expect(moving.headers.get('content-type')).toBe('image/webp');
      expect(moving.headers.get('content-disposition')).toBe('inline; filename=thumbnail.webp');
      const meta = await sharp(await bytesOf(moving), { animated: true }).metadata();
      expect(meta.format).toBe('webp');
      expect(meta.pages).toBe(3);
      const still = await thumbnail(server, origin, id, 'width=96&height=96&method=crop&animated=false');
      expect(still.status).toBe(200);
      expect(still.headers.get('content-type')).not.toBe('image/webp');
      expect((await sharp(await bytesOf(still), { animated: true }).metadata()).pages ?? 1).toBe(1);
    }
  });

  it('refuses SVG, empty and corrupt images with 400 M_UNKNOWN, never 500', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><script>alert(1)</script></svg>');
    const jpeg = await photo(400, 300, 'jpeg');
    const cases: [Uint8Array, string][] = [
      [svg, 'image/svg+xml'],
      [svg, 'image/png'],
      [new Uint8Array(0), 'image/png'],
      [jpeg.subarray(0, 200), 'image/jpeg'],
      [Buffer.from('not an image at all, just text'), 'image/jpeg'],
      [Buffer.from('plain text'), 'text/plain'],
    ];
    for (const server of [a, b]) {
      for (const [body, type] of cases) {
        const id = await upload(server, body, type);
        const res = await thumbnail(server, server.config.serverName, id, 'width=96&height=96&method=crop');
        expect(res.status, `${type} ${body.byteLength} bytes on ${server.config.serverName}`).toBe(400);
        const json = (await res.json()) as { errcode: string; error: string };
        expect(json).toEqual({ errcode: 'M_UNKNOWN', error: 'Cannot generate thumbnails for the requested content' });
        // Dynamic sizes too.
        const other = await thumbnail(server, server.config.serverName, id, 'width=77&height=55&method=scale');
        expect(other.status).toBe(400);
      }
    }
  });

  it('animates an animated WebP as image/webp when animated=true, a still frame otherwise', async () => {
    const webp = await animatedWebp(300, 200);
    for (const server of [a, b]) {
      const origin = server.config.serverName;
      const id = await upload(server, webp, 'image/webp');
      const moving = await thumbnail(server, origin, id, 'width=96&height=96&method=crop&animated=true');
      expect(moving.status).toBe(200);
      expect(moving.headers.get('content-type')).toBe('image/webp');
      const meta = await sharp(await bytesOf(moving), { animated: true }).metadata();
      expect(meta.format).toBe('webp');
      expect(meta.pages).toBe(4);
      expect([meta.width, meta.pageHeight]).toEqual([96, 96]);
      const still = await thumbnail(server, origin, id, 'width=96&height=96&method=crop');
      expect(still.status).toBe(200);
      expect((await sharp(await bytesOf(still), { animated: true }).metadata()).pages ?? 1).toBe(1);
    }
  });

  it('refuses a decompression bomb (PNG header claiming 100000x100000) with 413 M_TOO_LARGE, on both servers and dynamic sizes', async () => {
    for (const server of [a, b]) {
      const id = await upload(server, pngBomb(), 'image/png');
      for (const query of ['width=96&height=96&method=crop', 'width=77&height=55&method=scale']) {
        const res = await thumbnail(server, server.config.serverName, id, query);
        expect([res.status, await errcodeOf(res)], `${query} on ${server.config.serverName}`).toEqual([413, 'M_TOO_LARGE']);
      }
      // The server is still answering thumbnails normally afterwards.
      const fine = await upload(server, await photo(200, 150, 'jpeg'), 'image/jpeg');
      expect((await thumbnail(server, server.config.serverName, fine, 'width=32&height=32&method=crop')).status).toBe(200);
    }
  });

  it('waits for a created but not yet uploaded image: 504 M_NOT_YET_UPLOADED after timeout_ms, woken by the upload', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const created = await fetch(`${a.url}/_matrix/media/v1/create`, { method: 'POST', headers: auth });
    expect(created.status).toBe(200);
    const id = ((await created.json()) as { content_uri: string }).content_uri.slice('mxc://a.test/'.length);
    const early = await thumbnail(a, 'a.test', id, 'width=32&height=32&method=crop&timeout_ms=300');
    expect([early.status, await errcodeOf(early)]).toEqual([504, 'M_NOT_YET_UPLOADED']);

    const before = a.media.uploadWaiters;
    const waiting = thumbnail(a, 'a.test', id, 'width=32&height=32&method=crop&timeout_ms=10000');
    // Upload only once the request is parked on the pending record, so the wake-up is what answers it.
    await waitFor(async () => (a.media.uploadWaiters > before ? true : undefined), 'the thumbnail request to wait');
    const put = await fetch(`${a.url}/_matrix/media/v3/upload/a.test/${id}`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'image/jpeg' },
      body: await photo(400, 300, 'jpeg'),
    });
    expect(put.status).toBe(200);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(await sharp(await bytesOf(res)).metadata()).toMatchObject({ format: 'jpeg', width: 32, height: 32 });
  });

  it('authenticates before looking at parameters, then validates them', async () => {
    const id = await upload(a, await photo(200, 150, 'jpeg'), 'image/jpeg');
    const anonymous = await thumbnail(a, 'a.test', id, 'width=abc', { token: null });
    expect(anonymous.status).toBe(401);
    expect(await errcodeOf(anonymous)).toBe('M_MISSING_TOKEN');
    const wrongToken = await thumbnail(a, 'a.test', 'unknownMedia', '', { token: 'nope' });
    expect(wrongToken.status).toBe(401);
    expect(await errcodeOf(wrongToken)).toBe('M_UNKNOWN_TOKEN');

    const missing = await thumbnail(a, 'a.test', id, 'height=32');
    expect([missing.status, await errcodeOf(missing)]).toEqual([400, 'M_MISSING_PARAM']);
    for (const query of ['width=abc&height=32', 'width=0&height=32', 'width=32&height=32&method=zoom', 'width=32&height=32&animated=yes', 'width=32&height=32&timeout_ms=x']) {
      const res = await thumbnail(a, 'a.test', id, query);
      expect([res.status, await errcodeOf(res)], query).toEqual([400, 'M_INVALID_PARAM']);
    }
    const unknown = await thumbnail(a, 'a.test', 'doesNotExist42', 'width=32&height=32');
    expect([unknown.status, await errcodeOf(unknown)]).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe('legacy thumbnails and the freeze', () => {
  it('serves /_matrix/media/v3/thumbnail without auth where not frozen', async () => {
    const id = await upload(a, await photo(400, 300, 'jpeg'), 'image/jpeg');
    const res = await fetch(`${a.url}/_matrix/media/v3/thumbnail/a.test/${id}?width=32&height=32&method=crop`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('cache-control')).toMatch(/^public/);
    const client = await thumbnail(a, 'a.test', id, 'width=32&height=32&method=crop');
    expect((await bytesOf(res)).equals(await bytesOf(client))).toBe(true);
  });

  it('answers 404 on the legacy endpoint for media stored while frozen; the client endpoint serves it', async () => {
    const id = await upload(b, await photo(400, 300, 'jpeg'), 'image/jpeg');
    const legacy = await fetch(`${b.url}/_matrix/media/v3/thumbnail/b.test/${id}?width=32&height=32&method=crop`);
    expect([legacy.status, await errcodeOf(legacy)]).toEqual([404, 'M_NOT_FOUND']);
    expect((await thumbnail(b, 'b.test', id, 'width=32&height=32&method=crop')).status).toBe(200);
  });
});

describe('storage', () => {
  it('pre-generates the recommended sizes after an upload, without the upload waiting', async () => {
    const id = await upload(a, await photo(1600, 1200, 'jpeg'), 'image/jpeg');
    const rows = await waitFor(async () => {
      const stored = await storesA.metadata.listThumbnails('a.test', id);
      return stored.length >= 5 ? stored : undefined;
    }, 'five thumbnails');
    expect(rows.map((row) => `${row.width}x${row.height}/${row.method}`).sort()).toEqual(
      ['32x32/crop', '96x96/crop', '320x240/scale', '640x480/scale', '800x600/scale'].sort(),
    );
    for (const row of rows) {
      expect(row.contentType).toBe('image/jpeg');
      expect((await storesA.blobs.stat(row.blobId))?.size).toBe(row.size);
    }
  });

  it('deleting the media deletes its thumbnails and their blobs', async () => {
    const id = await upload(a, await photo(800, 600, 'jpeg'), 'image/jpeg');
    expect((await thumbnail(a, 'a.test', id, 'width=123&height=45&method=crop')).status).toBe(200);
    const rows = await storesA.metadata.listThumbnails('a.test', id);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(await a.media.deleteMedia('a.test', id)).toBe(true);
    expect(await storesA.metadata.listThumbnails('a.test', id)).toEqual([]);
    for (const row of rows) expect(await storesA.blobs.stat(row.blobId)).toBeNull();
    expect((await thumbnail(a, 'a.test', id, 'width=32&height=32&method=crop')).status).toBe(404);
  });
});

describe('determinism and federation', () => {
  it('gives the same bytes twice, on the client and the federation endpoint, and from a remote server', async () => {
    const id = await upload(a, await photo(1000, 750, 'jpeg'), 'image/jpeg');
    for (const size of [...DEFAULT_SIZES, { width: 200, height: 120, method: 'crop' } as const]) {
      const query = `width=${size.width}&height=${size.height}&method=${size.method}`;
      const first = await bytesOf(await thumbnail(a, 'a.test', id, query));
      const second = await bytesOf(await thumbnail(a, 'a.test', id, query));
      expect(second.equals(first)).toBe(true);

      // The federation endpoint, signed as b.test (a.test fetches b.test's key over loopback).
      const uri = `/_matrix/federation/v1/media/thumbnail/${id}?${query}`;
      const authorization = signXMatrixRequest({ method: 'GET', uri, origin: 'b.test', destination: 'a.test' }, b.signingKey);
      const federation = await fetch(`${a.url}${uri}`, { headers: { Authorization: authorization } });
      expect(federation.status).toBe(200);
      const parts = await decodeMultipart(federation.headers.get('content-type')!, federation.body!, { maxContentBytes: 1 << 20 });
      if (parts.kind !== 'content') throw new Error('expected inline content');
      const content = new Uint8Array(await new Response(parts.stream).arrayBuffer());
      expect(parts.contentType).toBe('image/jpeg');
      expect(Buffer.from(content).equals(first)).toBe(true);

      if (size.width !== 200) {
        // b.test asks a.test's federation thumbnail endpoint (remote_thumbnail_first) or thumbnails its cached
        // copy of the original: the same pre-generated bytes either way.
        const remote = await thumbnail(b, 'a.test', id, query);
        expect(remote.status).toBe(200);
        expect((await bytesOf(remote)).equals(first)).toBe(true);
      }
    }
  });

  it('an opaque PNG (Complement large.png) gets the same image/png thumbnail on the client and federation endpoints', async () => {
    // Mirrors Complement's TestFederationThumbnail: Synapse maps PNG sources to PNG thumbnails.
    const largePng = await readFile(new URL('../../../packages/thumbnailer/test/fixtures/large.png', import.meta.url));
    expect((await sharp(largePng).metadata()).hasAlpha).toBe(false);
    const id = await upload(a, largePng, 'image/png');
    const query = 'width=32&height=32&method=scale';
    const client = await thumbnail(a, 'a.test', id, query);
    expect([client.status, client.headers.get('content-type')]).toEqual([200, 'image/png']);
    const clientBytes = await bytesOf(client);
    expect((await sharp(clientBytes).metadata()).format).toBe('png');

    const uri = `/_matrix/federation/v1/media/thumbnail/${id}?${query}`;
    const authorization = signXMatrixRequest({ method: 'GET', uri, origin: 'b.test', destination: 'a.test' }, b.signingKey);
    const federation = await fetch(`${a.url}${uri}`, { headers: { Authorization: authorization } });
    expect(federation.status).toBe(200);
    const parts = await decodeMultipart(federation.headers.get('content-type')!, federation.body!, { maxContentBytes: 1 << 20 });
    if (parts.kind !== 'content') throw new Error('expected inline content');
    expect(parts.contentType).toBe('image/png');
    expect(Buffer.from(await new Response(parts.stream).arrayBuffer()).equals(clientBytes)).toBe(true);
  });

  it('refuses unsigned federation thumbnail requests', async () => {
    const id = await upload(a, await photo(100, 100, 'jpeg'), 'image/jpeg');
    const res = await fetch(`${a.url}/_matrix/federation/v1/media/thumbnail/${id}?width=32&height=32`);
    expect(res.status).toBe(401);
  });
});
