import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RemoteMediaError, type MediaMetadataStore, type MediaRecord, type ThumbnailGenerator } from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { parseDuration } from '../src/duration.js';
import { createHealthCheck, healthStatus } from '../src/health.js';
import { MediaMetrics } from '../src/metrics.js';
import { runRetention } from '../src/retention.js';
import { startServer, type StartedServer } from '../src/server.js';
import { tempDir, testConfig, upload } from './helpers.js';

const TOKENS = { admin_token: '@admin:localhost', alice_token: '@alice:localhost' };
const DAY = 86_400_000;

let server: StartedServer | undefined;
let dir: { path: string; cleanup(): Promise<void> } | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await dir?.cleanup();
  dir = undefined;
});

async function start(document: Record<string, unknown> = {}): Promise<StartedServer> {
  dir = await tempDir('hsmedia-ops-');
  server = await startServer(
    testConfig(dir.path, { log_level: 'silent', auth: { tokens: TOKENS }, admins: ['@admin:localhost'], ...document }),
  );
  return server;
}

async function uploadText(body: string, token = 'alice_token'): Promise<string> {
  const res = await upload(server!.url, token, body);
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

/** The value of one sample line of a Prometheus scrape, 0 when absent. */
function sample(scrape: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of scrape.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.indexOf('}'));
    const have = labelText.split(',');
    if (wanted.every((pair) => have.includes(pair))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

async function scrape(): Promise<string> {
  const res = await fetch(`${server!.operations.metricsUrl()}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

describe('admin API in the server', () => {
  it('lets configured admins in and refuses other users with 403 M_FORBIDDEN', async () => {
    await start();
    const id = await uploadText('quarantine me');
    const path = `/_synapse/admin/v1/media/quarantine/localhost/${id}`;
    const refused = await fetch(`${server!.url}${path}`, { method: 'POST', headers: { Authorization: 'Bearer alice_token' } });
    expect([refused.status, ((await refused.json()) as { errcode: string }).errcode]).toEqual([403, 'M_FORBIDDEN']);
    const allowed = await fetch(`${server!.url}${path}`, { method: 'POST', headers: { Authorization: 'Bearer admin_token' } });
    expect(allowed.status).toBe(200);
    const download = await fetch(`${server!.url}/_matrix/client/v1/media/download/localhost/${id}`, {
      headers: { Authorization: 'Bearer alice_token' },
    });
    expect(download.status).toBe(404);
  });

  it('makes the generated admin of standalone mode an admin', () => {
    const result = parseConfig({ server_name: 'example.org' }, '/tmp');
    expect(result.ok && result.config.admins).toEqual(['@admin:example.org']);
  });

  it('records admin actions in the audit log (SQLite store) and counts them by action in the metrics', async () => {
    await start({ metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } } });
    const id = await uploadText('audit me');
    const admin = { Authorization: 'Bearer admin_token' };
    for (const action of ['quarantine', 'unquarantine', 'quarantine']) {
      const res = await fetch(`${server!.url}/_synapse/admin/v1/media/${action}/localhost/${id}?reason=report`, { method: 'POST', headers: admin });
      expect(res.status).toBe(200);
    }
    const text = await scrape();
    expect(sample(text, 'hsmedia_admin_actions_total', { action: 'quarantine' })).toBe(2);
    expect(sample(text, 'hsmedia_admin_actions_total', { action: 'unquarantine' })).toBe(1);
    const res = await fetch(`${server!.url}/_hsmedia/admin/v1/audit?action=quarantine`, { headers: admin });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { actions: { actor: string; target: string; reason: string }[] };
    expect(body.actions).toHaveLength(2);
    expect(body.actions[0]).toMatchObject({ actor: '@admin:localhost', target: `mxc://localhost/${id}`, reason: 'report' });
    const refused = await fetch(`${server!.url}/_hsmedia/admin/v1/audit`, { headers: { Authorization: 'Bearer alice_token' } });
    expect(refused.status).toBe(403);
    await refused.arrayBuffer();
  });
});

describe('quarantine and thumbnails in the server', () => {
  it('stops serving thumbnails of quarantined media, and the thumbnail work is timed in the metrics', async () => {
    // The legacy thumbnail endpoint serves this upload only with the (default) freeze off.
    await start({
      metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
      thumbnails: { dynamic: true },
      legacy_media: { freeze: false },
    });
    const png = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#3080c0' } }).png().toBuffer();
    const up = await fetch(`${server!.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { Authorization: 'Bearer alice_token', 'Content-Type': 'image/png' },
      body: png,
    });
    const id = ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const thumbnails = async (): Promise<number[]> => {
      const responses = await Promise.all([
        fetch(`${server!.url}/_matrix/client/v1/media/thumbnail/localhost/${id}?width=32&height=32&method=scale`, {
          headers: { Authorization: 'Bearer alice_token' },
        }),
        fetch(`${server!.url}/_matrix/media/v3/thumbnail/localhost/${id}?width=32&height=32&method=crop`),
      ]);
      for (const res of responses) await res.arrayBuffer();
      return responses.map((res) => res.status);
    };
    expect(await thumbnails()).toEqual([200, 200]);
    const text = await scrape();
    expect(sample(text, 'hsmedia_thumbnail_generation_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    const res = await fetch(`${server!.url}/_synapse/admin/v1/media/quarantine/localhost/${id}`, {
      method: 'POST',
      headers: { Authorization: 'Bearer admin_token' },
    });
    expect(res.status).toBe(200);
    expect(await thumbnails()).toEqual([404, 404]);
  });
});

describe('metrics', () => {
  it('serves Prometheus metrics on their own listener and counts requests by route template, bytes and cache lookups', async () => {
    await start({ metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } } });
    const id = await uploadText('count me');
    const route = '/_matrix/client/v1/media/download/:serverName/:mediaId';
    const labels = { method: 'GET', route, status: '200' };
    const before = await scrape();
    const download = async (): Promise<void> => {
      const res = await fetch(`${server!.url}/_matrix/client/v1/media/download/localhost/${id}`, { headers: { Authorization: 'Bearer alice_token' } });
      expect(await res.text()).toBe('count me');
    };
    await download();
    await download();
    const missing = await fetch(`${server!.url}/_matrix/client/v1/media/download/localhost/nope`, { headers: { Authorization: 'Bearer alice_token' } });
    await missing.arrayBuffer();
    const unknownPath = await fetch(`${server!.url}/some/unknown/path/${id}`);
    await unknownPath.arrayBuffer();
    const after = await scrape();
    expect(sample(after, 'hsmedia_http_requests_total', labels) - sample(before, 'hsmedia_http_requests_total', labels)).toBe(2);
    expect(sample(after, 'hsmedia_http_requests_total', { ...labels, status: '404' })).toBe(1);
    expect(sample(after, 'hsmedia_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(sample(after, 'hsmedia_http_request_duration_seconds_count', labels)).toBe(2);
    expect(sample(after, 'hsmedia_http_sent_bytes_total', { route })).toBeGreaterThan(2 * 'count me'.length);
    expect(sample(after, 'hsmedia_http_received_bytes_total', { route: '/_matrix/media/v3/upload' })).toBeGreaterThan('count me'.length);
    expect(sample(after, 'hsmedia_media_cache_lookups_total', { cache: 'record', result: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(after).toContain('hsmedia_remote_fetches_in_flight 0');
    expect(after).toContain('hsmedia_http_requests_in_flight');
    // Raw paths (and so media IDs) never become labels.
    expect(after).not.toContain(id);
    expect(after).not.toContain('/some/unknown');
    const other = await fetch(`${server!.operations.metricsUrl()}/nothing`);
    expect(other.status).toBe(404);
  });

  it('counts remote fetches by outcome', async () => {
    await start({ metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } } });
    // No route to remote.invalid: discovery fails, the fetch is counted as a failure.
    const res = await fetch(`${server!.url}/_matrix/client/v1/media/download/remote.invalid/abc`, { headers: { Authorization: 'Bearer alice_token' } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    await res.arrayBuffer();
    const text = await scrape();
    const outcomes = text.split('\n').filter((line) => line.startsWith('hsmedia_remote_fetches_total{'));
    expect(outcomes.reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)).toBe(1);
    expect(sample(text, 'hsmedia_remote_fetches_total', { outcome: 'ok' })).toBe(0);
  });

  it('reports the queue depths: requests waiting for pending uploads, thumbnail jobs, remote fetches in flight', async () => {
    await start({ metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } }, thumbnails: { dynamic: true } });
    const auth = { Authorization: 'Bearer alice_token' };
    const idle = await scrape();
    expect(idle).toContain('hsmedia_upload_waiters 0');
    expect(idle).toContain('hsmedia_thumbnail_jobs{state="running"} 0');
    expect(idle).toContain('hsmedia_thumbnail_jobs{state="waiting"} 0');
    expect(idle).toContain('hsmedia_remote_fetches_in_flight 0');

    const created = await fetch(`${server!.url}/_matrix/media/v1/create`, { method: 'POST', headers: auth });
    const id = ((await created.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const waitingDownload = fetch(`${server!.url}/_matrix/client/v1/media/download/localhost/${id}?timeout_ms=10000`, { headers: auth });
    const waitingThumbnail = fetch(`${server!.url}/_matrix/client/v1/media/thumbnail/localhost/${id}?width=32&height=32&method=scale&timeout_ms=10000`, {
      headers: auth,
    });
    // Both requests register their wait asynchronously: poll the scrape until they show (bounded).
    let waiters = 0;
    for (let attempt = 0; attempt < 200 && waiters < 2; attempt++) {
      waiters = Number(/^hsmedia_upload_waiters (\d+)$/m.exec(await scrape())?.[1]);
      if (waiters < 2) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(waiters).toBe(2);

    const png = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#3080c0' } }).png().toBuffer();
    const put = await fetch(`${server!.url}/_matrix/media/v3/upload/localhost/${id}`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'image/png' },
      body: png,
    });
    expect(put.status).toBe(200);
    const [downloaded, thumbnail] = await Promise.all([waitingDownload, waitingThumbnail]);
    expect([downloaded.status, thumbnail.status]).toEqual([200, 200]);
    await Promise.all([downloaded.arrayBuffer(), thumbnail.arrayBuffer()]);
    await server!.thumbnails!.idle();
    const after = await scrape();
    expect(after).toContain('hsmedia_upload_waiters 0');
    expect(after).toContain('hsmedia_thumbnail_jobs{state="running"} 0');
    expect(sample(after, 'hsmedia_thumbnail_generation_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  });

  it('counts remote thumbnail fetches like downloads, and keeps fetchThumbnail only where the source has it', async () => {
    const metrics = new MediaMetrics({ defaultMetrics: false });
    const media = { contentType: 'image/png', contentDisposition: null, contentLength: 0, body: new ReadableStream<Uint8Array>() };
    const plain = metrics.instrumentRemoteSource({ fetchMedia: () => Promise.resolve(media) });
    expect(plain.fetchThumbnail).toBeUndefined();
    const failing = new RemoteMediaError('not_found', 'gone');
    const both = metrics.instrumentRemoteSource({
      fetchMedia: () => Promise.resolve(media),
      fetchThumbnail: () => Promise.reject(failing),
    });
    const request = { serverName: 'b.test', mediaId: 'abc', maxBytes: 10, timeoutMs: 1000 };
    await expect(both.fetchThumbnail!({ ...request, width: 32, height: 32, method: 'crop', animated: false })).rejects.toBe(failing);
    await both.fetchMedia(request);
    const text = await metrics.scrape();
    expect(sample(text, 'hsmedia_remote_fetches_total', { outcome: 'not_found' })).toBe(1);
    expect(sample(text, 'hsmedia_remote_fetches_total', { outcome: 'ok' })).toBe(1);
    expect(text).toContain('hsmedia_remote_fetches_in_flight 0');
  });

  it('reads the thumbnail job slots of a generator that reports its load', async () => {
    const metrics = new MediaMetrics({ defaultMetrics: false });
    const load = { running: 2, waiting: 3 };
    metrics.instrumentThumbnailGenerator({ load, supports: () => true, generate: () => Promise.resolve([]) } as ThumbnailGenerator);
    let text = await metrics.scrape();
    expect(text).toContain('hsmedia_thumbnail_jobs{state="running"} 2');
    expect(text).toContain('hsmedia_thumbnail_jobs{state="waiting"} 3');
    load.waiting = 0;
    metrics.watchUploadWaiters(() => 4);
    text = await metrics.scrape();
    expect(text).toContain('hsmedia_thumbnail_jobs{state="waiting"} 0');
    expect(text).toContain('hsmedia_upload_waiters 4');
  });

  it('starts no listener when metrics are off (the default)', async () => {
    await start();
    expect(server!.operations.metricsUrl()).toBeUndefined();
  });
});

describe('health', () => {
  it('answers 200 with every check ok, on the main and the metrics listener', async () => {
    await start({ metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } } });
    for (const base of [server!.url, server!.operations.metricsUrl()!]) {
      const res = await fetch(`${base}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', checks: { database: { ok: true }, storage: { ok: true } } });
    }
  });

  it('answers 503 naming storage when the media directory is unusable, and 200 again once it is back', async () => {
    await start();
    const mediaPath = (server!.config.mediaStore as { path: string }).path;
    await rm(mediaPath, { recursive: true, force: true });
    // A file where the directory should be: unusable even for root.
    await writeFile(mediaPath, 'not a directory');
    const res = await fetch(`${server!.url}/health`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; checks: { database: { ok: boolean }; storage: { ok: boolean; error: string } } };
    expect(body.status).toBe('unavailable');
    expect(body.checks.database).toEqual({ ok: true });
    expect(body.checks.storage.ok).toBe(false);
    expect(body.checks.storage.error).toMatch(/^[A-Z]/);
    expect(JSON.stringify(body)).not.toContain(mediaPath);
    await rm(mediaPath);
    expect((await fetch(`${server!.url}/health`)).status).toBe(200);
  });

  it('reports the database as down when its store fails (503)', async () => {
    dir = await tempDir('hsmedia-health-');
    const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.db') });
    const blobs = new FsBlobStore({ root: join(dir.path, 'media') });
    const check = createHealthCheck({ metadata, blobs });
    expect(healthStatus(await check())).toBe(200);
    await metadata.close();
    const report = await check();
    expect(healthStatus(report)).toBe(503);
    expect(report.checks.database.ok).toBe(false);
    expect(report.checks.storage).toEqual({ ok: true });
  });
});

describe('retention', () => {
  async function remoteCopy(mediaId: string, size: number, fetchedAt: number, lastAccessAt: number | null): Promise<MediaRecord> {
    const bytes = new Uint8Array(size).fill(7);
    const store = storesOf();
    const stored = await store.blobs.put((async function* () { yield bytes; })());
    const record: MediaRecord = {
      serverName: 'remote.example', mediaId, blobId: stored.blobId, contentType: 'application/octet-stream', uploadName: null,
      size: stored.size, sha256: stored.sha256, userId: null, createdAt: fetchedAt, uploadedAt: fetchedAt, expiresAt: null,
      authenticated: false, quarantined: false, lastAccessAt,
    };
    expect(await store.metadata.insertMedia(record)).toBe(true);
    return record;
  }
  function storesOf(): { blobs: FsBlobStore; metadata: MediaMetadataStore } {
    return { blobs: new FsBlobStore({ root: (server!.config.mediaStore as { path: string }).path }), metadata: metadataOf() };
  }
  let metadataHandle: MediaMetadataStore | undefined;
  function metadataOf(): MediaMetadataStore {
    if (metadataHandle === undefined) throw new Error('open the metadata first');
    return metadataHandle;
  }
  afterEach(async () => {
    await metadataHandle?.close();
    metadataHandle = undefined;
  });
  async function exists(record: MediaRecord): Promise<boolean> {
    return (await metadataOf().getMedia(record.serverName, record.mediaId)) !== null &&
      (await storesOf().blobs.stat(record.blobId!)) !== null;
  }

  it('purges idle and old remote media, old local media, then evicts the least recently used remote media over budget', async () => {
    await start();
    // A second connection to the server's SQLite file (WAL): how an operator's tool would see it.
    metadataHandle = await createSqliteMetadataStore({ path: server!.config.database.kind === 'sqlite' ? server!.config.database.path : '' });
    const now = 1_800_000_000_000;
    const idle = await remoteCopy('idle', 10, now - 60 * DAY, now - 40 * DAY);
    const old = await remoteCopy('old', 10, now - 400 * DAY, now - DAY);
    const lru1 = await remoteCopy('lru1', 100, now - 10 * DAY, now - 9 * DAY);
    const lru2 = await remoteCopy('lru2', 100, now - 10 * DAY, now - 5 * DAY);
    const recent = await remoteCopy('recent', 100, now - 10 * DAY, now - DAY);
    const localId = await uploadText('local, uploaded with the real clock');
    const local = (await metadataOf().getMedia('localhost', localId))!;
    const clock = { now: () => now };
    const policy = { intervalMs: 3_600_000, remoteMaxIdleMs: 30 * DAY, remoteMaxAgeMs: 365 * DAY, remoteCacheMaxBytes: 150 };
    const result = await runRetention(server!.operations.admin, policy, clock);
    expect(result).toEqual({ remoteIdle: 1, remoteAge: 1, localIdle: 0, localAge: 0, remoteEvicted: 2, remoteEvictedBytes: 200 });
    expect(await exists(idle)).toBe(false);
    expect(await exists(old)).toBe(false);
    expect(await exists(lru1)).toBe(false);
    expect(await exists(lru2)).toBe(false);
    expect(await exists(recent)).toBe(true);
    // The budget never touches local media.
    expect(await exists(local)).toBe(true);
    // A second run finds nothing left to do.
    expect(await runRetention(server!.operations.admin, policy, clock)).toEqual({
      remoteIdle: 0, remoteAge: 0, localIdle: 0, localAge: 0, remoteEvicted: 0, remoteEvictedBytes: 0,
    });
    // Local rules: a clock far in the future makes the local upload both idle and old.
    const later = { now: () => Date.now() + 400 * DAY };
    const localResult = await runRetention(server!.operations.admin, { intervalMs: 1000, localMaxAgeMs: 365 * DAY }, later);
    expect(localResult.localAge).toBe(1);
    expect(await exists(local)).toBe(false);
    const download = await fetch(`${server!.url}/_matrix/client/v1/media/download/localhost/${localId}`, { headers: { Authorization: 'Bearer alice_token' } });
    expect(download.status).toBe(404);
  });

  it('deletes local media by last use, keeping media used recently', async () => {
    await start();
    metadataHandle = await createSqliteMetadataStore({ path: server!.config.database.kind === 'sqlite' ? server!.config.database.path : '' });
    const keptId = await uploadText('downloaded recently');
    const goneId = await uploadText('never downloaded');
    await metadataOf().touchMedia('localhost', keptId, Date.now() + 20 * DAY);
    const result = await runRetention(server!.operations.admin, { intervalMs: 1000, localMaxIdleMs: 10 * DAY }, { now: () => Date.now() + 15 * DAY });
    expect(result.localIdle).toBe(1);
    expect(await metadataOf().getMedia('localhost', goneId)).toBeNull();
    expect(await metadataOf().getMedia('localhost', keptId)).not.toBeNull();
  });

  it('keeps quarantined and protected media: a quarantine outlives retention', async () => {
    await start();
    metadataHandle = await createSqliteMetadataStore({ path: server!.config.database.kind === 'sqlite' ? server!.config.database.path : '' });
    const quarantinedId = await uploadText('quarantined, old');
    const protectedId = await uploadText('protected, old');
    const ordinaryId = await uploadText('ordinary, old');
    const admin = server!.operations.admin;
    expect(await admin.setQuarantined('localhost', quarantinedId, true)).toBe(true);
    expect(await admin.setProtected('localhost', protectedId, true)).toBe(true);
    const result = await runRetention(admin, { intervalMs: 1000, localMaxAgeMs: DAY, localMaxIdleMs: DAY }, { now: () => Date.now() + 15 * DAY });
    expect(result.localAge + result.localIdle).toBe(1);
    expect(await metadataOf().getMedia('localhost', ordinaryId)).toBeNull();
    expect(await metadataOf().getMedia('localhost', quarantinedId)).not.toBeNull();
    expect(await metadataOf().getMedia('localhost', protectedId)).not.toBeNull();
  });

  it('keeps quarantined and protected remote media through the idle, age and space rules (no refetch as unquarantined)', async () => {
    await start();
    metadataHandle = await createSqliteMetadataStore({ path: server!.config.database.kind === 'sqlite' ? server!.config.database.path : '' });
    const now = 1_800_000_000_000;
    const quarantined = await remoteCopy('quarantined', 100, now - 400 * DAY, now - 40 * DAY);
    const kept = await remoteCopy('protected', 100, now - 400 * DAY, now - 40 * DAY);
    const ordinary = await remoteCopy('ordinary', 100, now - 400 * DAY, now - 40 * DAY);
    const admin = server!.operations.admin;
    expect(await admin.setQuarantined('remote.example', 'quarantined', true)).toBe(true);
    expect(await admin.setProtected('remote.example', 'protected', true)).toBe(true);
    for (const rules of [{ remoteMaxIdleMs: 30 * DAY }, { remoteMaxAgeMs: 365 * DAY }, { remoteCacheMaxBytes: 0 }]) {
      await runRetention(admin, { intervalMs: 1000, ...rules }, { now: () => now });
    }
    expect(await exists(ordinary)).toBe(false);
    expect(await exists(kept)).toBe(true);
    expect(await exists(quarantined)).toBe(true);
    // Still known as quarantined: a request is refused from the record, never fetched again as new media.
    expect((await metadataOf().getMedia('remote.example', 'quarantined'))?.quarantined).toBe(true);
  });

  it('keeps profile media (avatars) out of every rule unless keep_profiles is off', async () => {
    await start();
    metadataHandle = await createSqliteMetadataStore({ path: server!.config.database.kind === 'sqlite' ? server!.config.database.path : '' });
    const now = 1_800_000_000_000;
    const avatarId = await uploadText('an avatar, old');
    const remoteAvatar = await remoteCopy('avatar', 100, now - 400 * DAY, now - 40 * DAY);
    const admin = server!.operations.admin;
    expect(await admin.setProfile('localhost', avatarId, true)).toBe(true);
    expect(await admin.setProfile('remote.example', 'avatar', true)).toBe(true);
    const rules = { intervalMs: 1000, remoteMaxIdleMs: 30 * DAY, remoteMaxAgeMs: 365 * DAY, remoteCacheMaxBytes: 10, localMaxAgeMs: DAY, localMaxIdleMs: DAY };
    const kept = await runRetention(admin, rules, { now: () => now });
    expect(kept).toEqual({ remoteIdle: 0, remoteAge: 0, localIdle: 0, localAge: 0, remoteEvicted: 0, remoteEvictedBytes: 0 });
    expect(await exists(remoteAvatar)).toBe(true);
    expect(await metadataOf().getMedia('localhost', avatarId)).not.toBeNull();
    const gone = await runRetention(admin, { ...rules, keepProfiles: false }, { now: () => now });
    expect(gone.remoteIdle + gone.localAge + gone.localIdle).toBe(2);
    expect(await exists(remoteAvatar)).toBe(false);
    expect(await metadataOf().getMedia('localhost', avatarId)).toBeNull();
  });
});

describe('operations config', () => {
  it('parses durations, sizes and defaults; rejects bad values with keyed messages', () => {
    expect(parseDuration('30d')).toBe(30 * DAY);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration('1.5h')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
    const ok = parseConfig(
      {
        retention: { interval: '15m', remote_media: { max_idle: '30d' }, local_media: { max_age: 31_536_000_000 }, remote_cache_max_size: '10G' },
        metrics: { enabled: true, listen: { port: 9300 } },
      },
      '/tmp',
    );
    expect(ok.ok && ok.config.retention).toEqual({
      intervalMs: 900_000,
      remoteMaxIdleMs: 30 * DAY,
      localMaxAgeMs: 31_536_000_000,
      remoteCacheMaxBytes: 10 * 1024 ** 3,
    });
    expect(ok.ok && ok.config.metrics).toEqual({ enabled: true, listen: { host: '127.0.0.1', port: 9300 } });
    const defaults = parseConfig({}, '/tmp');
    expect(defaults.ok && defaults.config.retention).toEqual({ intervalMs: 3_600_000 });
    const noProfiles = parseConfig({ retention: { keep_profiles: false } }, '/tmp');
    expect(noProfiles.ok && noProfiles.config.retention).toEqual({ intervalMs: 3_600_000, keepProfiles: false });
    const badProfiles = parseConfig({ retention: { keep_profiles: 'no' } }, '/tmp');
    expect(!badProfiles.ok && badProfiles.errors.some((m) => m.startsWith('retention.keep_profiles:'))).toBe(true);
    expect(defaults.ok && defaults.config.metrics.enabled).toBe(false);
    const bad = parseConfig(
      { admins: ['admin'], retention: { interval: '5 parsecs', remote_media: { max_idle: '1.5d' }, extra: 1 }, metrics: { listen: { port: 70000 } } },
      '/tmp',
    );
    expect(bad.ok).toBe(false);
    const messages = bad.ok ? [] : bad.errors;
    expect(messages.some((m) => m.startsWith('admins.0:'))).toBe(true);
    expect(messages.some((m) => m.startsWith('retention.interval:'))).toBe(true);
    expect(messages.some((m) => m.startsWith('retention.remote_media.max_idle:'))).toBe(true);
    expect(messages.some((m) => m.startsWith('retention.extra: Unknown key'))).toBe(true);
    expect(messages.some((m) => m.startsWith('metrics.listen.port:'))).toBe(true);
  });
});
