import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { MediaService, type MediaRecord } from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { listen, tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { createAdminConsoleRouter, mountMediaRoutes } from '../src/index.js';

const SERVER = 'media.test';
const ADMIN = { Authorization: 'Bearer admin_token' } as const;
const ALICE = { Authorization: 'Bearer alice_token' } as const;
const DAY = 86_400_000;
const NOW = 1_750_000_000_000;

function record(mediaId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: SERVER, mediaId, blobId: `blob_${mediaId}`, contentType: 'image/png', uploadName: `${mediaId}.png`, size: 100,
    sha256: 'aa'.repeat(32), userId: '@alice:media.test', createdAt: NOW - DAY, uploadedAt: NOW - DAY, expiresAt: null,
    authenticated: true, quarantined: false, lastAccessAt: null, ...overrides,
  };
}

interface Harness {
  readonly url: string;
  readonly metadata: SqliteMetadataStore;
  close(): Promise<void>;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(): Promise<Harness> {
  const dir: TempDir = await tmpdir('hsmedia-console-routes-');
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  const media = new MediaService({ serverName: SERVER, blobs, metadata, maxUploadBytes: 1 << 20 });
  const authenticate = createClientAuth({ verifier: new StaticTokenVerifier({ admin_token: '@admin:media.test', alice_token: '@alice:media.test' }) });
  const app = new Koa();
  app.silent = true;
  mountMediaRoutes(app, {
    media,
    authenticate,
    routers: [
      createAdminConsoleRouter({
        serverName: SERVER,
        queries: metadata,
        authenticate,
        isAdmin: (r) => r.userId === '@admin:media.test',
        remoteCacheBudgetBytes: 5_000,
        now: () => NOW,
      }),
    ],
  });
  const server = await listen(app);
  for (const item of [
    record('a1', { createdAt: NOW - 3 * DAY }),
    record('a2', { createdAt: NOW - 2 * DAY, contentType: 'text/html', size: 10, quarantined: true }),
    record('a3', { createdAt: NOW - DAY, protected: true, size: 1_000, sha256: 'bb'.repeat(32) }),
    record('r1', { serverName: 'remote.test', userId: null, createdAt: NOW - DAY, size: 700 }),
  ]) {
    expect(await metadata.insertMedia(item)).toBe(true);
  }
  return {
    url: server.url,
    metadata,
    close: async () => {
      await server.close();
      await media.close();
      await metadata.close();
      await dir.cleanup();
    },
  };
}

async function getJson(path: string, headers: Record<string, string> = ADMIN): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${h!.url}${path}`, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const ids = (body: Record<string, unknown>): string[] => (body['media'] as { media_id: string }[]).map((m) => m.media_id);

describe('admin console API', () => {
  it('lists local and remote media newest first, with filters and cursor paging', async () => {
    h = await start();
    const all = await getJson('/_hsmedia/admin/v1/media');
    expect(all.status).toBe(200);
    expect(ids(all.body)).toEqual(['r1', 'a3', 'a2', 'a1']);
    expect((all.body['media'] as Record<string, unknown>[])[0]).toMatchObject({ server_name: 'remote.test', local: false, user_id: null, media_length: 700 });
    expect(all.body['next_batch']).toBeUndefined();

    const first = await getJson('/_hsmedia/admin/v1/media?limit=2');
    expect(ids(first.body)).toEqual(['r1', 'a3']);
    const next = await getJson(`/_hsmedia/admin/v1/media?limit=2&from=${String(first.body['next_batch'])}`);
    expect(ids(next.body)).toEqual(['a2', 'a1']);

    expect(ids((await getJson('/_hsmedia/admin/v1/media?origin=remote.test')).body)).toEqual(['r1']);
    expect(ids((await getJson('/_hsmedia/admin/v1/media?type=text%2F')).body)).toEqual(['a2']);
    expect(ids((await getJson('/_hsmedia/admin/v1/media?quarantined=true')).body)).toEqual(['a2']);
    expect(ids((await getJson('/_hsmedia/admin/v1/media?protected=true')).body)).toEqual(['a3']);
    expect(ids((await getJson('/_hsmedia/admin/v1/media?min_size=500&max_size=900')).body)).toEqual(['r1']);
    expect(ids((await getJson(`/_hsmedia/admin/v1/media?since=${NOW - 2 * DAY}&until=${NOW - DAY}`)).body)).toEqual(['a2']);
    expect(ids((await getJson('/_hsmedia/admin/v1/media?user=%40alice%3Amedia.test&protected=false')).body)).toEqual(['a2', 'a1']);
  });

  it('refuses malformed filters with M_INVALID_PARAM', async () => {
    h = await start();
    for (const query of ['limit=0', 'limit=501', 'from=garbage', `from=${Buffer.from('[1,"x y","a"]').toString('base64url')}`, 'origin=not%20a%20server', 'user=alice', 'type=a%20b', 'min_size=-1', 'since=soon', 'quarantined=maybe', 'origin=a.test&origin=b.test']) {
      const answer = await getJson(`/_hsmedia/admin/v1/media?${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.body['errcode'], query).toBe('M_INVALID_PARAM');
    }
  });

  it('refuses non-admins and anonymous requests before reading anything', async () => {
    h = await start();
    for (const path of ['/_hsmedia/admin/v1/media', '/_hsmedia/admin/v1/media/media.test/a1', '/_hsmedia/admin/v1/storage']) {
      expect((await getJson(path, ALICE)).body['errcode']).toBe('M_FORBIDDEN');
      expect((await getJson(path, {})).status).toBe(401);
    }
  });

  it('gives one item with its thumbnails and the media sharing its bytes', async () => {
    h = await start();
    const detail = await getJson('/_hsmedia/admin/v1/media/media.test/a1');
    expect(detail.status).toBe(200);
    expect(detail.body['media']).toMatchObject({ media_id: 'a1', local: true, sha256: 'aa'.repeat(32) });
    expect(detail.body['thumbnails']).toEqual([]);
    expect(detail.body['references']).toEqual([
      { server_name: SERVER, media_id: 'a2' },
      { server_name: 'remote.test', media_id: 'r1' },
    ].sort((a, b) => (a.server_name + a.media_id < b.server_name + b.media_id ? -1 : 1)));
    expect((await getJson('/_hsmedia/admin/v1/media/media.test/nope')).body['errcode']).toBe('M_NOT_FOUND');
    expect((await getJson('/_hsmedia/admin/v1/media/media.test/bad%20id')).body['errcode']).toBe('M_NOT_FOUND');
    expect((await getJson('/_hsmedia/admin/v1/media/bad%20server/a1')).body['errcode']).toBe('M_INVALID_PARAM');
  });

  it('reports storage: totals, the remote cache against its budget, top origins, bytes per day', async () => {
    h = await start();
    const storage = await getJson('/_hsmedia/admin/v1/storage?days=7');
    expect(storage.status).toBe(200);
    expect(storage.body['local']).toEqual({ media_count: 3, media_length: 1_110 });
    expect(storage.body['remote']).toEqual({ media_count: 1, media_length: 700, budget: 5_000 });
    expect(storage.body['quarantined']).toEqual({ media_count: 1, media_length: 10 });
    expect(storage.body['top_origins']).toEqual([
      { server_name: SERVER, local: true, media_count: 3, media_length: 1_110 },
      { server_name: 'remote.test', local: false, media_count: 1, media_length: 700 },
    ]);
    const perDay = storage.body['per_day'] as { from_ts: number; until_ts: number; local: { start_ts: number; media_length: number }[]; remote: unknown[] };
    expect(perDay.until_ts - perDay.from_ts).toBe(7 * DAY);
    expect(perDay.local.map((b) => b.media_length).reduce((a, b) => a + b, 0)).toBe(1_110);
    expect(perDay.remote).toHaveLength(1);
    for (const days of ['0', '367', 'x']) expect((await getJson(`/_hsmedia/admin/v1/storage?days=${days}`)).body['errcode']).toBe('M_INVALID_PARAM');
  });
});
