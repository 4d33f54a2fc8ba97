import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { errors } from '@hsmedia/errors';
import {
  MediaService,
  TokenBucketRateLimiter,
  type MediaServiceOptions,
  type RemoteMedia,
  type RemoteMediaSource,
} from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { binaryBytes, listen, tmpdir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { mountMediaRoutes, type MediaRateLimits } from '../src/index.js';
import { ALICE, BOB, ManualClock, SERVER_NAME, expectError, postUpload } from './limits-harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A media server with byte budgets; federation requests name their origin in a test header. */
async function start(
  rateLimits: MediaRateLimits,
  federationBytes?: TokenBucketRateLimiter,
  service: Partial<MediaServiceOptions> = {},
): Promise<string> {
  const dir = await tmpdir('hsmedia-byte-limits-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({ serverName: SERVER_NAME, blobs, metadata, maxUploadBytes: 1 << 20, ...service });
  const app = new Koa();
  app.silent = true;
  const verifier = new StaticTokenVerifier({ alice_token: '@alice:media.test', bob_token: '@bob:media.test' });
  // Stands in for X-Matrix verification: sets the origin as createXMatrixAuth does once a request is verified.
  const authenticate: Koa.Middleware = async (ctx, next) => {
    const origin = /^X-Matrix origin="([^"]+)"/.exec(ctx.get('Authorization'))?.[1];
    if (origin === undefined) throw errors.unknown('Missing X-Matrix', 401);
    (ctx.state as { origin?: string }).origin = origin;
    await next();
  };
  mountMediaRoutes(app, {
    media,
    authenticate: createClientAuth({ verifier }),
    rateLimits,
    federation: { authenticate, ...(federationBytes === undefined ? {} : { downloadBytes: federationBytes }) },
  });
  const server = await listen(app);
  cleanups.push(async () => {
    await server.close();
    await media.close();
    await metadata.close();
    await dir.cleanup();
  });
  return server.url;
}

async function uploadBytes(url: string, size: number): Promise<string> {
  const res = await postUpload(url, binaryBytes(size));
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

/** A 429 M_LIMIT_EXCEEDED that carries none of the media's headers; returns retry_after_ms. */
async function expectByteLimited(res: Response): Promise<number> {
  const body = await expectError(res, 429, 'M_LIMIT_EXCEEDED');
  for (const header of ['cache-control', 'etag', 'content-disposition', 'accept-ranges', 'content-range']) {
    expect(res.headers.get(header), header).toBeNull();
  }
  expect(res.headers.get('retry-after')).toBe(String(Math.max(1, Math.ceil((body['retry_after_ms'] as number) / 1000))));
  return body['retry_after_ms'] as number;
}

/** Remote bodies go live for their first client past media-core's 64 KiB window: this one is 100 000 bytes. */
const REMOTE_SIZE = 100_000;

/**
 * A remote that answers every media ID with {@link REMOTE_SIZE} bytes in
 * two pulled chunks (so the first client reads it live), declaring the
 * length or not (chunked).
 */
function remoteOf(declared: boolean): RemoteMediaSource {
  return {
    async fetchMedia(): Promise<RemoteMedia> {
      const chunks = [binaryBytes(70_000, 1), binaryBytes(REMOTE_SIZE - 70_000, 2)];
      return {
        contentType: 'application/octet-stream',
        contentDisposition: null,
        contentLength: declared ? REMOTE_SIZE : null,
        body: new ReadableStream({
          pull(controller) {
            const next = chunks.shift();
            if (next === undefined) controller.close();
            else controller.enqueue(next);
          },
        }),
      };
    },
  };
}

const clientUrl = (url: string, mediaId: string): string => `${url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`;

describe('download byte budgets', () => {
  it('charges each client download its size per user: the next one waits for the refill, another user is unaffected', async () => {
    const clock = new ManualClock();
    const downloadBytes = new TokenBucketRateLimiter({ perSecond: 100, burst: 1000, clock });
    const url = await start({ downloadBytes });
    const mediaId = await uploadBytes(url, 800);
    const first = await fetch(clientUrl(url, mediaId), { headers: ALICE });
    expect(first.status).toBe(200);
    expect((await first.arrayBuffer()).byteLength).toBe(800);
    // 200 bytes left; 800 more need 600 at 100 bytes/s.
    expect(await expectByteLimited(await fetch(clientUrl(url, mediaId), { headers: ALICE }))).toBe(6000);
    const bob = await fetch(`${clientUrl(url, mediaId)}/name.bin`, { headers: BOB });
    expect(bob.status).toBe(200);
    await bob.arrayBuffer();
    clock.advance(6000);
    const later = await fetch(clientUrl(url, mediaId), { headers: ALICE });
    expect(later.status).toBe(200);
    await later.arrayBuffer();
  });

  it('lets a download larger than the burst through on a full bucket (it empties it)', async () => {
    const clock = new ManualClock();
    const downloadBytes = new TokenBucketRateLimiter({ perSecond: 100, burst: 500, clock });
    const url = await start({ downloadBytes });
    const mediaId = await uploadBytes(url, 2000);
    const first = await fetch(clientUrl(url, mediaId), { headers: ALICE });
    expect(first.status).toBe(200);
    expect((await first.arrayBuffer()).byteLength).toBe(2000);
    expect(await expectByteLimited(await fetch(clientUrl(url, mediaId), { headers: ALICE }))).toBe(5000);
  });

  it('charges a range its length; HEAD and 304 cost nothing', async () => {
    const clock = new ManualClock();
    const downloadBytes = new TokenBucketRateLimiter({ perSecond: 100, burst: 1000, clock });
    const url = await start({ downloadBytes });
    const mediaId = await uploadBytes(url, 1000);
    let etag = '';
    for (let i = 0; i < 10; i++) {
      const res = await fetch(clientUrl(url, mediaId), { headers: { ...ALICE, Range: `bytes=${i * 100}-${i * 100 + 99}` } });
      expect(res.status).toBe(206);
      expect((await res.arrayBuffer()).byteLength).toBe(100);
      etag = res.headers.get('etag')!;
    }
    const head = await fetch(clientUrl(url, mediaId), { method: 'HEAD', headers: ALICE });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1000');
    expect((await fetch(clientUrl(url, mediaId), { headers: { ...ALICE, 'If-None-Match': etag } })).status).toBe(304);
    expect(await expectByteLimited(await fetch(clientUrl(url, mediaId), { headers: { ...ALICE, Range: 'bytes=0-0' } }))).toBe(10);
    clock.advance(10);
    expect((await fetch(clientUrl(url, mediaId), { headers: { ...ALICE, Range: 'bytes=0-0' } })).status).toBe(206);
  });

  it('charges unauthenticated legacy downloads per client address, apart from the per-user budget', async () => {
    const clock = new ManualClock();
    const legacyDownloadBytes = new TokenBucketRateLimiter({ perSecond: 1, burst: 600, clock });
    const downloadBytes = new TokenBucketRateLimiter({ perSecond: 1, burst: 600, clock });
    const url = await start({ downloadBytes, legacyDownloadBytes });
    const mediaId = await uploadBytes(url, 500);
    const legacy = `${url}/_matrix/media/v3/download/${SERVER_NAME}/${mediaId}`;
    const first = await fetch(legacy);
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    expect(await expectByteLimited(await fetch(legacy))).toBe(400_000);
    expect(legacyDownloadBytes.size).toBe(1);
    const client = await fetch(clientUrl(url, mediaId), { headers: ALICE });
    expect(client.status).toBe(200);
    await client.arrayBuffer();
  });

  it('charges federation downloads per origin server', async () => {
    const clock = new ManualClock();
    const federationBytes = new TokenBucketRateLimiter({ perSecond: 10, burst: 1000, clock });
    const url = await start({}, federationBytes);
    const mediaId = await uploadBytes(url, 700);
    const federation = `${url}/_matrix/federation/v1/media/download/${mediaId}`;
    const from = (origin: string): RequestInit => ({ headers: { Authorization: `X-Matrix origin="${origin}"` } });
    const first = await fetch(federation, from('one.example'));
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^multipart\/mixed/);
    await first.arrayBuffer();
    // 300 left, 700 wanted: 400 bytes at 10/s.
    expect(await expectByteLimited(await fetch(federation, from('one.example')))).toBe(40_000);
    const other = await fetch(federation, from('two.example'));
    expect(other.status).toBe(200);
    await other.arrayBuffer();
    // An unauthenticated request is refused before any budget is touched.
    await expectError(await fetch(federation), 401, 'M_UNKNOWN');
    expect(federationBytes.size).toBe(2);
  });

  it('charges a live remote download the length its origin declared', async () => {
    const clock = new ManualClock();
    const downloadBytes = new TokenBucketRateLimiter({ perSecond: 10_000, burst: 150_000, clock });
    const url = await start({ downloadBytes }, undefined, { remote: remoteOf(true) });
    const remoteUrl = `${url}/_matrix/client/v1/media/download/other.example/declared`;
    const live = await fetch(remoteUrl, { headers: ALICE });
    expect(live.status).toBe(200);
    // The first client reads the remote body as it arrives: no ETag yet.
    expect(live.headers.get('etag')).toBeNull();
    expect((await live.arrayBuffer()).byteLength).toBe(REMOTE_SIZE);
    // 50 000 left, 100 000 wanted: 50 000 bytes at 10 000/s.
    expect(await expectByteLimited(await fetch(remoteUrl, { headers: ALICE }))).toBe(5000);
  });

  it('does not charge a live remote body of unknown length; the stored copy is charged afterwards', async () => {
    const clock = new ManualClock();
    const downloadBytes = new TokenBucketRateLimiter({ perSecond: 10_000, burst: 150_000, clock });
    const url = await start({ downloadBytes }, undefined, { remote: remoteOf(false) });
    const remoteUrl = `${url}/_matrix/client/v1/media/download/other.example/chunked`;
    const live = await fetch(remoteUrl, { headers: ALICE });
    expect(live.status).toBe(200);
    expect(live.headers.get('etag')).toBeNull();
    expect((await live.arrayBuffer()).byteLength).toBe(REMOTE_SIZE);
    const stored = await fetch(remoteUrl, { headers: ALICE });
    expect(stored.status).toBe(200);
    expect(stored.headers.get('etag')).not.toBeNull();
    await stored.arrayBuffer();
    expect(await expectByteLimited(await fetch(remoteUrl, { headers: ALICE }))).toBe(5000);
  });
});
