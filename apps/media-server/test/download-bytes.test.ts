import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Clock } from '@hsmedia/runtime';
import sharp from 'sharp';
import { signXMatrixRequest } from '@hsmedia/signing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { freePort, tempDir, testConfig } from './helpers.js';

// a.test limits download bytes (limits.download_bytes) in every scope: 1000-byte buckets refilled at
// 10 bytes/s on a clock the test moves by hand. b.test and c.test are real servers on 127.0.0.1 whose
// signing keys a.test fetches to verify their X-Matrix requests.

class ManualClock implements Clock {
  current = 1_700_000_000_000;
  now(): number {
    return this.current;
  }
}

const BUCKET = { bytes_per_second: 10, burst_bytes: 1000 };
const TOKENS = { alice_token: '@alice:a.test', bob_token: '@bob:a.test', carol_token: '@carol:a.test', dave_token: '@dave:a.test' };
const bearer = (user: 'alice' | 'bob' | 'carol' | 'dave'): Record<string, string> => ({ Authorization: `Bearer ${user}_token` });

let dir: { path: string; cleanup(): Promise<void> };
let a: StartedServer;
let b: StartedServer;
let c: StartedServer;
const clock = new ManualClock();

beforeAll(async () => {
  dir = await tempDir('hsmedia-download-bytes-');
  const [portA, portB, portC] = [await freePort(), await freePort(), await freePort()];
  const destinations = {
    'a.test': `http://127.0.0.1:${portA}`,
    'b.test': `http://127.0.0.1:${portB}`,
    'c.test': `http://127.0.0.1:${portC}`,
  };
  const config = (name: string, port: number, extra: Record<string, unknown> = {}) =>
    testConfig(join(dir.path, name), {
      server_name: name,
      listen: { host: '127.0.0.1', port, trusted_proxies: ['127.0.0.1/32'] },
      log_level: 'silent',
      auth: { tokens: TOKENS },
      federation: { destinations, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
      ...extra,
    });
  a = await startServer(
    config('a.test', portA, {
      // The legacy endpoints are tested here, so media stored now must stay reachable on them.
      legacy_media: { freeze: false },
      limits: { download_bytes: { client: BUCKET, legacy: BUCKET, federation: BUCKET } },
    }),
    { rateLimitClock: clock },
  );
  b = await startServer(config('b.test', portB));
  c = await startServer(config('c.test', portC));
}, 60_000);

afterAll(async () => {
  for (const server of [a, b, c]) await server?.close();
  await dir?.cleanup();
});

async function upload(size: number, body: Uint8Array = randomBytes(size), contentType = 'application/octet-stream'): Promise<string> {
  const res = await fetch(`${a.url}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { ...bearer('alice'), 'Content-Type': contentType },
    body,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

/** A 200/206 with `bytes` bytes of body. */
async function expectServed(res: Response, status: number, bytes: number): Promise<void> {
  expect(res.status).toBe(status);
  expect((await res.arrayBuffer()).byteLength).toBeGreaterThanOrEqual(bytes);
}

async function expectLimited(res: Response): Promise<number> {
  expect(res.status).toBe(429);
  expect(res.headers.get('cache-control')).toBeNull();
  const body = (await res.json()) as { errcode: string; retry_after_ms: number };
  expect(body.errcode).toBe('M_LIMIT_EXCEEDED');
  expect(res.headers.get('retry-after')).toBe(String(Math.ceil(body.retry_after_ms / 1000)));
  return body.retry_after_ms;
}

const client = (mediaId: string, init: RequestInit): Promise<Response> =>
  fetch(`${a.url}/_matrix/client/v1/media/download/a.test/${mediaId}`, init);

describe('limits.download_bytes in a running server', () => {
  it('client: a first large download passes, the next waits for the refill; another user is unaffected', async () => {
    const mediaId = await upload(1000);
    await expectServed(await client(mediaId, { headers: bearer('alice') }), 200, 1000);
    // The whole bucket again at 10 bytes/s.
    expect(await expectLimited(await client(mediaId, { headers: bearer('alice') }))).toBe(100_000);
    await expectServed(await client(mediaId, { headers: bearer('bob') }), 200, 1000);
    clock.current += 100_000;
    await expectServed(await client(mediaId, { headers: bearer('alice') }), 200, 1000);
  });

  it('client: a Range request is charged its length', async () => {
    const mediaId = await upload(1000);
    await expectServed(await client(mediaId, { headers: { ...bearer('carol'), Range: 'bytes=0-99' } }), 206, 100);
    // 900 bytes left: the whole file lacks exactly the 100 the range took.
    expect(await expectLimited(await client(mediaId, { headers: bearer('carol') }))).toBe(10_000);
    await expectServed(await client(mediaId, { headers: { ...bearer('carol'), Range: 'bytes=100-999' } }), 206, 900);
  });

  it('client: a thumbnail is charged the bytes it sends, from the same budget', async () => {
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer();
    const imageId = await upload(png.byteLength, png, 'image/png');
    const thumb = await fetch(`${a.url}/_matrix/client/v1/media/thumbnail/a.test/${imageId}?width=32&height=32&method=scale`, {
      headers: bearer('dave'),
    });
    expect(thumb.status).toBe(200);
    const thumbBytes = (await thumb.arrayBuffer()).byteLength;
    expect(thumbBytes).toBeGreaterThan(0);
    expect(thumbBytes).toBeLessThan(1000);
    // The whole bucket is wanted for the file, and the thumbnail's bytes are missing: they refill at 10 bytes/s.
    const mediaId = await upload(1000);
    expect(await expectLimited(await client(mediaId, { headers: bearer('dave') }))).toBe(thumbBytes * 100);
  });

  it('legacy: charged per client IP (behind a trusted proxy), another IP is unaffected', async () => {
    const mediaId = await upload(1000);
    const legacy = (ip: string): Promise<Response> =>
      fetch(`${a.url}/_matrix/media/v3/download/a.test/${mediaId}`, { headers: { 'X-Forwarded-For': ip } });
    await expectServed(await legacy('127.0.0.2'), 200, 1000);
    expect(await expectLimited(await legacy('127.0.0.2'))).toBe(100_000);
    await expectServed(await legacy('127.0.0.3'), 200, 1000);
  });

  it('federation: charged per verified origin server, another origin is unaffected', async () => {
    const mediaId = await upload(1000);
    const uri = `/_matrix/federation/v1/media/download/${mediaId}`;
    const from = (server: StartedServer, origin: string): Promise<Response> =>
      fetch(`${a.url}${uri}`, {
        headers: { Authorization: signXMatrixRequest({ method: 'GET', uri, origin, destination: 'a.test' }, server.signingKey) },
      });
    const first = await from(b, 'b.test');
    expect(first.headers.get('content-type')).toMatch(/^multipart\/mixed/);
    await expectServed(first, 200, 1000);
    expect(await expectLimited(await from(b, 'b.test'))).toBe(100_000);
    await expectServed(await from(c, 'c.test'), 200, 1000);
    // A request that fails verification spends no budget and gets 401.
    expect((await fetch(`${a.url}${uri}`)).status).toBe(401);
  });
});
