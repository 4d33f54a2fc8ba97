import { TokenBucketRateLimiter, type MediaRecord } from '@hsmedia/media-core';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import { matrixErrors } from '@hsmedia/koa-matrix';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { federationAuthWithRateLimit } from '../src/limits.js';
import { startServer, type StartedServer } from '../src/server.js';
import { tempDir, testConfig } from './helpers.js';

const TOKENS = { alice_token: '@alice:localhost', bob_token: '@bob:localhost' };
const ALICE = { Authorization: 'Bearer alice_token' };
const BOB = { Authorization: 'Bearer bob_token' };

let server: StartedServer | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await server?.close();
  await cleanup?.();
  server = undefined;
  cleanup = undefined;
});

async function start(document: Record<string, unknown>): Promise<StartedServer> {
  const dir = await tempDir();
  cleanup = dir.cleanup;
  server = await startServer(testConfig(dir.path, { auth: { tokens: TOKENS }, log_level: 'silent', ...document }));
  return server;
}

const upload = (url: string, body: string, headers: Record<string, string> = ALICE): Promise<Response> =>
  fetch(`${url}/_matrix/media/v3/upload`, { method: 'POST', headers: { ...headers, 'Content-Type': 'text/plain' }, body });
const create = (url: string, headers: Record<string, string> = ALICE): Promise<Response> =>
  fetch(`${url}/_matrix/media/v1/create`, { method: 'POST', headers });

describe('limits and quotas config', () => {
  it('has defaults: create limited like Synapse, 5 pending uploads, 24 h expiry, 5 min clean-up, 60 s wait cap, no quotas', () => {
    const config = testConfig('/tmp');
    expect(config.limits).toEqual({
      create: { perSecond: 10, burst: 50 },
      upload: null,
      download: null,
      federation: null,
      downloadBytes: { client: null, legacy: null, federation: null },
      maxPendingUploads: 5,
      unusedExpirationMs: 24 * 60 * 60 * 1000,
      pendingCleanupIntervalMs: 5 * 60 * 1000,
      maxTimeoutMs: 60_000,
      uploadIdleTimeoutMs: 60_000,
    });
    expect(config.quotas).toBeUndefined();
  });

  it('resolves download byte budgets with sizes', () => {
    const config = testConfig('/tmp', {
      limits: { download_bytes: { client: { bytes_per_second: '1M', burst_bytes: '100M' }, federation: { bytes_per_second: 89_088, burst_bytes: '500M' } } },
    });
    expect(config.limits.downloadBytes).toEqual({
      client: { perSecond: 1024 ** 2, burst: 100 * 1024 ** 2 },
      legacy: null,
      federation: { perSecond: 89_088, burst: 500 * 1024 ** 2 },
    });
  });

  it('resolves units and per-user quota entries', () => {
    const config = testConfig('/tmp', {
      limits: { upload: { per_second: 0.5, burst: 4 }, create: null, unused_expiration: '30m', pending_cleanup_interval: '90s', max_timeout_ms: 5000 },
      quotas: {
        default: { max_bytes: '1G', max_files: 1000, period_bytes: '100M', period: '1d' },
        users: { '@big:localhost': { max_bytes: null } },
        info_uri: 'https://example.org/quota',
      },
    });
    expect(config.limits).toMatchObject({
      upload: { perSecond: 0.5, burst: 4 },
      create: null,
      unusedExpirationMs: 1_800_000,
      pendingCleanupIntervalMs: 90_000,
      maxTimeoutMs: 5000,
    });
    expect(config.quotas).toEqual({
      default: { maxBytes: 1024 ** 3, maxFiles: 1000, periodBytes: 100 * 1024 ** 2, periodMs: 86_400_000 },
      users: { '@big:localhost': { maxBytes: null } },
      infoUri: 'https://example.org/quota',
    });
  });

  it.each([
    [{ limits: { upload: { per_second: 1 } } }, 'limits.upload.burst'],
    [{ limits: { upload: { per_second: 0, burst: 1 } } }, 'limits.upload.per_second'],
    [{ limits: { surprise: 1 } }, 'limits'],
    [{ limits: { download_bytes: { client: { bytes_per_second: '1M' } } } }, 'limits.download_bytes.client.burst_bytes'],
    [{ limits: { download_bytes: { legacy: { bytes_per_second: 0, burst_bytes: '1M' } } } }, 'limits.download_bytes.legacy.bytes_per_second'],
    [{ limits: { download_bytes: { federation: { bytes_per_second: '1M', burst_bytes: 'lots' } } } }, 'limits.download_bytes.federation.burst_bytes'],
    [{ limits: { download_bytes: { federation: { bytes_per_second: '1M', burst_bytes: '0K' } } } }, 'limits.download_bytes.federation.burst_bytes'],
    [{ limits: { download_bytes: { users: null } } }, 'limits.download_bytes'],
    [{ limits: { unused_expiration: 'soon' } }, 'limits.unused_expiration'],
    [{ limits: { pending_cleanup_interval: 0 } }, 'limits.pending_cleanup_interval'],
    [{ limits: { pending_cleanup_interval: 'hourly' } }, 'limits.pending_cleanup_interval'],
    [{ quotas: { default: { period_files: 3 } } }, 'quotas.default.period'],
    [{ quotas: { users: { alice: { max_files: 1 } } } }, 'quotas.users'],
    [{ quotas: { default: { max_bytes: 'lots' } } }, 'quotas.default.max_bytes'],
    [{ quotas: { default: { unknown: 1 } } }, 'quotas.default'],
  ])('refuses %j (%s)', (document, key) => {
    const result = parseConfig({ ...document }, '/tmp');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.join('\n')).toContain(key);
  });
});

describe('limits and quotas in a running server', () => {
  it('rate-limits uploads per user with 429, retry_after_ms and Retry-After', async () => {
    const { url } = await start({ limits: { upload: { per_second: 0.001, burst: 1 } } });
    expect((await upload(url, 'one')).status).toBe(200);
    const refused = await upload(url, 'two');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await refused.json()) as { errcode: string; retry_after_ms: number };
    expect(body.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(body.retry_after_ms).toBeGreaterThan(0);
    expect((await upload(url, 'bob', BOB)).status).toBe(200);
  });

  it('caps pending async uploads and applies quotas', async () => {
    const { url } = await start({ limits: { max_pending_uploads: 1 }, quotas: { default: { max_files: 1 } } });
    const created = await create(url);
    expect(created.status).toBe(200);
    const { content_uri } = (await created.json()) as { content_uri: string };
    expect((await create(url)).status).toBe(429);
    const mediaId = content_uri.split('/').pop()!;
    const put = await fetch(`${url}/_matrix/media/v3/upload/localhost/${mediaId}`, { method: 'PUT', headers: ALICE, body: 'x' });
    expect(put.status).toBe(200);
    const overQuota = await upload(url, 'second file');
    expect(overQuota.status).toBe(403);
    expect(((await overQuota.json()) as { errcode: string }).errcode).toBe('M_FORBIDDEN');
  });

  it('answers 504 M_NOT_YET_UPLOADED after timeout_ms for a created ID', async () => {
    const { url } = await start({});
    const { content_uri } = (await (await create(url)).json()) as { content_uri: string };
    const res = await fetch(`${url}/_matrix/client/v1/media/download/localhost/${content_uri.split('/').pop()!}?timeout_ms=200`, {
      headers: ALICE,
    });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_YET_UPLOADED');
  });

  it('deletes expired created IDs when the clean-up job runs, keeping pending and completed ones', async () => {
    const { url, config, maintenance } = await start({ limits: { unused_expiration: '1ms' } });
    const created = await create(url);
    expect(created.status).toBe(200);
    const { content_uri, unused_expires_at } = (await created.json()) as { content_uri: string; unused_expires_at: number };
    const expiredId = content_uri.split('/').pop()!;
    // Let the 1 ms expiry pass (the job compares with the real clock).
    while (Date.now() <= unused_expires_at) await sleep(5);

    // A second connection to the server's SQLite file: rows the HTTP API cannot make with a 1 ms expiry.
    const metadata = await createSqliteMetadataStore({ path: config.database.kind === 'sqlite' ? config.database.path : '' });
    try {
      const base: MediaRecord = {
        serverName: 'localhost', mediaId: 'StillPending', blobId: null, contentType: null, uploadName: null, size: null,
        sha256: null, userId: '@bob:localhost', createdAt: Date.now(), uploadedAt: null, expiresAt: Date.now() + 3_600_000,
        authenticated: true, quarantined: false, lastAccessAt: null,
      };
      const stillPending = base;
      const completedLate: MediaRecord = {
        ...base, mediaId: 'CompletedAfterExpiry', blobId: 'SomeBlob', contentType: 'text/plain', size: 1,
        sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', uploadedAt: Date.now(), expiresAt: 1,
      };
      expect(await metadata.insertMedia(stillPending)).toBe(true);
      expect(await metadata.insertMedia(completedLate)).toBe(true);
      expect(await metadata.getMedia('localhost', expiredId)).not.toBeNull();

      expect(await maintenance.runPendingCleanup()).toBe(1);
      expect(await metadata.getMedia('localhost', expiredId)).toBeNull();
      expect(await metadata.getMedia('localhost', stillPending.mediaId)).toEqual(stillPending);
      expect(await metadata.getMedia('localhost', completedLate.mediaId)).toEqual(completedLate);
      expect(await maintenance.runPendingCleanup()).toBe(0);
    } finally {
      await metadata.close();
    }

    // The deleted ID stays unknown: uploading to it is 404.
    const put = await fetch(`${url}/_matrix/media/v3/upload/localhost/${expiredId}`, { method: 'PUT', headers: ALICE, body: 'x' });
    expect(put.status).toBe(404);
    expect(((await put.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
  });
});

describe('federationAuthWithRateLimit', () => {
  it('limits per verified origin, after authentication', async () => {
    const limiter = new TokenBucketRateLimiter({ perSecond: 0.001, burst: 1 });
    // Stands in for X-Matrix auth: the origin it sets is what the bucket is keyed by.
    const authenticate: Koa.Middleware = async (ctx, next) => {
      const origin = ctx.get('X-Test-Origin');
      if (origin === '') ctx.throw(401);
      ctx.state['origin'] = origin;
      await next();
    };
    const app = new Koa();
    app.silent = true;
    app.use(matrixErrors());
    app.use(federationAuthWithRateLimit(authenticate, limiter));
    app.use((ctx) => {
      ctx.body = { ok: true };
    });
    const http = createServer(app.callback());
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      const get = (origin?: string): Promise<Response> =>
        fetch(base, { headers: origin === undefined ? {} : { 'X-Test-Origin': origin } });
      expect((await get('a.example')).status).toBe(200);
      expect((await get('a.example')).status).toBe(429);
      expect((await get('b.example')).status).toBe(200);
      expect((await get()).status).toBe(401);
      expect(limiter.size).toBe(2);
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
  });
});
