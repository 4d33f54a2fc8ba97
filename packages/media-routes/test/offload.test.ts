import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { errors } from '@hsmedia/errors';
import { MediaService, TokenBucketRateLimiter } from '@hsmedia/media-core';
import { decodeMultipart } from '@hsmedia/multipart';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { binaryBytes, listen, tmpdir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { mountMediaRoutes, type MediaAccel, type MediaRedirect } from '../src/index.js';
import { ALICE, ManualClock, SERVER_NAME, expectError, postUpload } from './limits-harness.js';

// Delivery offload (X-Accel-Redirect and redirects) on real stores: the byte budget is charged
// before any offload header, ranges are charged what the proxy will send, and what is not a plain
// GET of stored media is answered here.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Never fetched: only compared. */
const DIRECT_BASE = 'http://127.0.0.1:9/direct/';

async function start(options: { accel?: boolean; redirect?: boolean; burst?: number }): Promise<{ url: string; blobs: FsBlobStore; clock: ManualClock }> {
  const dir = await tmpdir('hsmedia-offload-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({ serverName: SERVER_NAME, blobs, metadata, maxUploadBytes: 1 << 20 });
  const clock = new ManualClock();
  const app = new Koa();
  app.silent = true;
  const accel: MediaAccel = { accelPath: (blobId) => `/_accel/${blobs.relativePathOf(blobId)}` };
  const redirect: MediaRedirect = { directUrl: async ({ blobId }) => `${DIRECT_BASE}${blobId}` };
  // Stands in for X-Matrix verification, as in the byte-limits test.
  const authenticate: Koa.Middleware = async (ctx, next) => {
    const origin = /^X-Matrix origin="([^"]+)"/.exec(ctx.get('Authorization'))?.[1];
    if (origin === undefined) throw errors.unknown('Missing X-Matrix', 401);
    (ctx.state as { origin?: string }).origin = origin;
    await next();
  };
  mountMediaRoutes(app, {
    media,
    authenticate: createClientAuth({ verifier: new StaticTokenVerifier({ alice_token: '@alice:media.test' }) }),
    rateLimits: { downloadBytes: new TokenBucketRateLimiter({ perSecond: 1, burst: options.burst ?? 1_000_000, clock }) },
    federation: { authenticate },
    ...(options.accel === true ? { accel } : {}),
    ...(options.redirect === true ? { redirect } : {}),
  });
  const server = await listen(app);
  cleanups.push(async () => {
    await server.close();
    await media.close();
    await metadata.close();
    await dir.cleanup();
  });
  return { url: server.url, blobs, clock };
}

async function upload(url: string, size: number): Promise<string> {
  const res = await postUpload(url, binaryBytes(size));
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

const download = (url: string, mediaId: string): string => `${url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`;

describe('X-Accel-Redirect', () => {
  it('names the file of the blob under the store root, with the media headers and an empty body', async () => {
    const { url, blobs } = await start({ accel: true });
    const mediaId = await upload(url, 5_000);
    const res = await fetch(download(url, mediaId), { headers: ALICE });
    expect(res.status).toBe(200);
    const path = res.headers.get('x-accel-redirect')!;
    expect(path).toMatch(/^\/_accel\/blobs\/[A-Za-z0-9_-]{2}\/[A-Za-z0-9_-]{2}\/[A-Za-z0-9_-]+$/);
    expect(blobs.relativePathOf('../../etc/passwd')).toBeNull();
    expect(res.headers.get('etag')).toMatch(/^"/);
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it('charges the budget before any header: a refusal is a clean 429 without X-Accel-Redirect', async () => {
    const { url } = await start({ accel: true, burst: 6_000 });
    const mediaId = await upload(url, 5_000);
    const first = await fetch(download(url, mediaId), { headers: ALICE });
    expect(first.headers.get('x-accel-redirect')).not.toBeNull();
    await first.arrayBuffer();
    const refused = await fetch(download(url, mediaId), { headers: ALICE });
    expect(refused.headers.get('x-accel-redirect')).toBeNull();
    expect(refused.headers.get('etag')).toBeNull();
    await expectError(refused, 429, 'M_LIMIT_EXCEEDED');
  });

  it('charges a range its length, but the whole size with If-Range (the proxy may send everything)', async () => {
    const { url } = await start({ accel: true, burst: 1_500 });
    const mediaId = await upload(url, 10_000);
    for (let i = 0; i < 3; i++) {
      const ranged = await fetch(download(url, mediaId), { headers: { ...ALICE, range: 'bytes=0-399' } });
      expect(ranged.headers.get('x-accel-redirect')).not.toBeNull();
      await ranged.arrayBuffer();
    }
    const etag = (await fetch(download(url, mediaId), { method: 'HEAD', headers: ALICE })).headers.get('etag')!;
    const ifRange = await fetch(download(url, mediaId), { headers: { ...ALICE, range: 'bytes=0-99', 'if-range': etag } });
    await expectError(ifRange, 429, 'M_LIMIT_EXCEEDED');
  });

  it('answers HEAD, 304 and 416 itself', async () => {
    const { url } = await start({ accel: true });
    const mediaId = await upload(url, 1_000);
    const head = await fetch(download(url, mediaId), { method: 'HEAD', headers: ALICE });
    expect([head.status, head.headers.get('x-accel-redirect'), head.headers.get('content-length')]).toEqual([200, null, '1000']);
    const etag = head.headers.get('etag')!;
    const notModified = await fetch(download(url, mediaId), { headers: { ...ALICE, 'if-none-match': etag } });
    expect([notModified.status, notModified.headers.get('x-accel-redirect')]).toEqual([304, null]);
    const unsatisfiable = await fetch(download(url, mediaId), { headers: { ...ALICE, range: 'bytes=5000-' } });
    expect([unsatisfiable.status, unsatisfiable.headers.get('x-accel-redirect')]).toEqual([416, null]);
    await unsatisfiable.arrayBuffer();
  });
});

describe('legacy endpoints', () => {
  it('X-Accel-Redirect needs no opt-in (the client never sees it); a redirect needs allow_redirect=true', async () => {
    const accel = await start({ accel: true });
    const accelId = await upload(accel.url, 2_000);
    const viaAccel = await fetch(`${accel.url}/_matrix/media/v3/download/${SERVER_NAME}/${accelId}`);
    expect([viaAccel.status, viaAccel.headers.get('x-accel-redirect')?.startsWith('/_accel/blobs/')]).toEqual([200, true]);
    await viaAccel.arrayBuffer();

    const redirect = await start({ redirect: true });
    const redirectId = await upload(redirect.url, 2_000);
    const legacy = `${redirect.url}/_matrix/media/v3/download/${SERVER_NAME}/${redirectId}`;
    const served = await fetch(legacy, { redirect: 'manual' });
    expect([served.status, served.headers.get('location')]).toEqual([200, null]);
    expect((await served.arrayBuffer()).byteLength).toBe(2_000);
    const redirected = await fetch(`${legacy}?allow_redirect=true`, { redirect: 'manual' });
    expect(redirected.status).toBe(307);
    expect(redirected.headers.get('location')).toMatch(new RegExp(`^${DIRECT_BASE}[A-Za-z0-9_-]+$`));
  });
});

describe('redirects', () => {
  it('a refused byte budget gives no Location', async () => {
    const { url } = await start({ redirect: true, burst: 6_000 });
    const mediaId = await upload(url, 5_000);
    const first = await fetch(download(url, mediaId), { headers: ALICE, redirect: 'manual' });
    expect(first.status).toBe(307);
    expect(first.headers.get('location')).toMatch(new RegExp(`^${DIRECT_BASE}`));
    const refused = await fetch(download(url, mediaId), { headers: ALICE, redirect: 'manual' });
    expect(refused.headers.get('location')).toBeNull();
    await expectError(refused, 429, 'M_LIMIT_EXCEEDED');
  });

  it('federation downloads answer a Location part; a conditional request is answered here', async () => {
    const { url } = await start({ redirect: true });
    const mediaId = await upload(url, 5_000);
    const federation = `${url}/_matrix/federation/v1/media/download/${mediaId}`;
    const headers = { authorization: 'X-Matrix origin="remote.test"' };
    const res = await fetch(federation, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const decoded = await decodeMultipart(res.headers.get('content-type')!, res.body!, { maxContentBytes: 1 << 20 });
    expect(decoded.kind).toBe('location');
    expect(decoded.kind === 'location' && decoded.location.startsWith(DIRECT_BASE)).toBe(true);

    const head = await fetch(download(url, mediaId), { method: 'HEAD', headers: ALICE });
    const etag = head.headers.get('etag')!;
    const conditional = await fetch(federation, { headers: { ...headers, 'if-none-match': etag } });
    expect(conditional.status).toBe(304);
  });
});
