import { createHash } from 'node:crypto';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StaticTokenVerifier, createClientAuth } from '@hsmedia/client-auth';
import { errors } from '@hsmedia/errors';
import { MediaAdmin, MediaService, type MediaRecord } from '@hsmedia/media-core';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore, type SqliteMetadataStore } from '@hsmedia/store-sqlite';
import { listen, tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { createAdminRouter, mountMediaRoutes } from '../src/index.js';

const SERVER = 'media.test';
const ADMIN = { Authorization: 'Bearer admin_token' } as const;
const ALICE = { Authorization: 'Bearer alice_token' } as const;
const BOB = { Authorization: 'Bearer bob_token' } as const;
const GUEST = { Authorization: 'Bearer guest_token' } as const;
const SIGNED = { Authorization: 'X-Matrix origin="other.example"' } as const;
const T0 = 1_750_000_000_000;
const DAY = 86_400_000;

interface AdminHarness {
  readonly url: string;
  readonly dir: TempDir;
  readonly blobs: FsBlobStore;
  readonly metadata: SqliteMetadataStore;
  readonly media: MediaService;
  readonly clock: { now(): number; set(ms: number): void };
  close(): Promise<void>;
}

let h: AdminHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(): Promise<AdminHarness> {
  const dir = await tmpdir('hsmedia-admin-routes-');
  let now = T0;
  const clock = { now: () => now, set: (ms: number) => void (now = ms) };
  const blobs = new FsBlobStore({ root: join(dir.path, 'blobs'), fsync: false });
  const metadata = await createSqliteMetadataStore({ path: join(dir.path, 'media.sqlite') });
  // A long record TTL: every quarantine below must bite through invalidation, not expiry.
  const media = new MediaService({ serverName: SERVER, blobs, metadata, maxUploadBytes: 1 << 20, clock, cache: { recordTtlMs: 3_600_000 } });
  const admin = new MediaAdmin({ media, queries: metadata, batchSize: 2 });
  const verifier = new StaticTokenVerifier({
    admin_token: '@admin:media.test',
    alice_token: '@alice:media.test',
    bob_token: '@bob:media.test',
    guest_token: { userId: '@admin:media.test', isGuest: true },
  });
  const authenticate = createClientAuth({ verifier });
  const app = new Koa();
  app.silent = true;
  mountMediaRoutes(app, {
    media,
    authenticate,
    federation: {
      // X-Matrix is injected; the app tests run the real check.
      authenticate: async (ctx, next) => {
        if (!ctx.get('Authorization').startsWith('X-Matrix ')) throw errors.unknown('Missing X-Matrix', 401);
        await next();
      },
    },
    routers: [createAdminRouter({ admin, authenticate, isAdmin: (r) => r.userId === '@admin:media.test' })],
  });
  const server = await listen(app);
  return {
    url: server.url,
    dir,
    blobs,
    metadata,
    media,
    clock,
    async close() {
      await server.close();
      await media.close();
      await metadata.close();
      await dir.cleanup();
    },
  };
}

async function upload(body: string, headers: Record<string, string> = ALICE): Promise<string> {
  const res = await fetch(`${h!.url}/_matrix/media/v3/upload`, { method: 'POST', headers: { ...headers, 'Content-Type': 'text/plain' }, body });
  expect(res.status).toBe(200);
  return ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

/** Files under the blob store's root (staging files included): what a refused upload must not leave behind. */
async function blobFiles(): Promise<number> {
  const entries = await readdir(join(h!.dir.path, 'blobs'), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).length;
}

function api(method: string, path: string, headers: Record<string, string> = ADMIN): Promise<Response> {
  return fetch(`${h!.url}${path}`, { method, headers, ...(method === 'POST' ? { body: '{}' } : {}) });
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** Status of every endpoint that serves the item's bytes. */
async function servedStatuses(mediaId: string): Promise<number[]> {
  const responses = await Promise.all([
    fetch(`${h!.url}/_matrix/client/v1/media/download/${SERVER}/${mediaId}`, { headers: ALICE }),
    fetch(`${h!.url}/_matrix/client/v1/media/download/${SERVER}/${mediaId}/name.txt`, { headers: ALICE }),
    fetch(`${h!.url}/_matrix/media/v3/download/${SERVER}/${mediaId}`),
    fetch(`${h!.url}/_matrix/media/r0/download/${SERVER}/${mediaId}/name.txt`),
    fetch(`${h!.url}/_matrix/federation/v1/media/download/${mediaId}`, { headers: SIGNED }),
  ]);
  for (const res of responses) await res.arrayBuffer();
  return responses.map((res) => res.status);
}

async function blobExists(record: MediaRecord | null): Promise<boolean> {
  expect(record?.blobId).toBeTruthy();
  return (await h!.blobs.stat(record!.blobId!)) !== null;
}

async function* bytesOf(text: string): AsyncGenerator<Uint8Array> {
  yield new TextEncoder().encode(text);
}

const ALL_OK = [200, 200, 200, 200, 200];
const ALL_GONE = [404, 404, 404, 404, 404];

describe('admin API: access', () => {
  const routes: [string, string][] = [
    ['GET', `/_synapse/admin/v1/media/${SERVER}/abc`],
    ['POST', `/_synapse/admin/v1/media/quarantine/${SERVER}/abc`],
    ['POST', `/_synapse/admin/v1/media/unquarantine/${SERVER}/abc`],
    ['POST', '/_synapse/admin/v1/media/protect/abc'],
    ['POST', '/_synapse/admin/v1/media/unprotect/abc'],
    ['POST', '/_synapse/admin/v1/user/@alice:media.test/media/quarantine'],
    ['DELETE', `/_synapse/admin/v1/media/${SERVER}/abc`],
    ['POST', `/_synapse/admin/v1/media/delete?before_ts=${T0}`],
    ['POST', `/_synapse/admin/v1/media/${SERVER}/delete?before_ts=${T0}`],
    ['GET', '/_synapse/admin/v1/users/@alice:media.test/media'],
    ['DELETE', '/_synapse/admin/v1/users/@alice:media.test/media'],
    ['POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${T0}`],
    ['GET', '/_synapse/admin/v1/statistics/users/media'],
    ['POST', `/_hsmedia/admin/v1/media/quarantine_by_hash/${'a'.repeat(64)}`],
    ['POST', `/_hsmedia/admin/v1/media/unquarantine_by_hash/${'a'.repeat(64)}`],
    ['GET', '/_hsmedia/admin/v1/audit?action=quarantine'],
  ];

  it('refuses non-admins (403 M_FORBIDDEN), guests (403) and missing tokens (401) on every route, before any parameter is read', async () => {
    h = await start();
    const id = await upload('keep me');
    for (const [method, path] of routes) {
      const asUser = await api(method, path.replace('abc', id), ALICE);
      expect([method, path, asUser.status, (await json(asUser))['errcode']]).toEqual([method, path, 403, 'M_FORBIDDEN']);
      const asGuest = await api(method, path, GUEST);
      expect([path, asGuest.status]).toEqual([path, 403]);
      await asGuest.arrayBuffer();
      const anonymous = await api(method, path, {});
      expect([path, anonymous.status, (await json(anonymous))['errcode']]).toEqual([path, 401, 'M_MISSING_TOKEN']);
    }
    // Nothing happened to the media.
    expect(await servedStatuses(id)).toEqual(ALL_OK);
  });

  it('answers wrong methods with 405 and unknown admin paths with 404 M_UNRECOGNIZED', async () => {
    h = await start();
    const wrong = await api('PUT', '/_synapse/admin/v1/purge_media_cache');
    expect([wrong.status, (await json(wrong))['errcode']]).toEqual([405, 'M_UNRECOGNIZED']);
    const unknown = await api('GET', '/_synapse/admin/v1/rooms');
    expect([unknown.status, (await json(unknown))['errcode']]).toEqual([404, 'M_UNRECOGNIZED']);
  });
});

describe('admin API: quarantine', () => {
  it('quarantines one item on every endpoint at once (cached records invalidated), and releases it', async () => {
    h = await start();
    const id = await upload('bad content');
    const other = await upload('fine content');
    expect(await servedStatuses(id)).toEqual(ALL_OK); // now in the record and blob caches
    const res = await api('POST', `/_synapse/admin/v1/media/quarantine/${SERVER}/${id}`);
    expect([res.status, await json(res)]).toEqual([200, {}]);
    expect(await servedStatuses(id)).toEqual(ALL_GONE);
    expect(await servedStatuses(other)).toEqual(ALL_OK);
    const info = await json(await api('GET', `/_synapse/admin/v1/media/${SERVER}/${id}`));
    expect(info['media_info']).toMatchObject({
      media_origin: SERVER,
      media_id: id,
      user_id: '@alice:media.test',
      media_type: 'text/plain',
      media_length: 11,
      quarantined: true,
      quarantined_by: 'unknown',
      sha256: createHash('sha256').update('bad content').digest('hex'),
    });
    const released = await api('POST', `/_synapse/admin/v1/media/unquarantine/${SERVER}/${id}`);
    expect(released.status).toBe(200);
    expect(await servedStatuses(id)).toEqual(ALL_OK);
  });

  it('quarantines every copy of identical content by hash, and only those', async () => {
    h = await start();
    const first = await upload('the same bytes');
    const second = await upload('the same bytes', BOB);
    const different = await upload('other bytes');
    const hash = createHash('sha256').update('the same bytes').digest('hex');
    const res = await api('POST', `/_hsmedia/admin/v1/media/quarantine_by_hash/${hash.toUpperCase()}`);
    expect([res.status, await json(res)]).toEqual([200, { num_quarantined: 2 }]);
    expect(await servedStatuses(first)).toEqual(ALL_GONE);
    expect(await servedStatuses(second)).toEqual(ALL_GONE);
    expect(await servedStatuses(different)).toEqual(ALL_OK);
    // The hash is blocked: a re-upload of the same file is refused and nothing of it is kept.
    const before = [(await h!.metadata.summarizeMedia({})).count, await blobFiles()];
    const refused = await fetch(`${h!.url}/_matrix/media/v3/upload`, { method: 'POST', headers: { ...ALICE, 'Content-Type': 'text/plain' }, body: 'the same bytes' });
    expect([refused.status, (await json(refused))['errcode']]).toEqual([403, 'M_FORBIDDEN']);
    expect([(await h!.metadata.summarizeMedia({})).count, await blobFiles()]).toEqual(before);
    const released = await api('POST', `/_hsmedia/admin/v1/media/unquarantine_by_hash/${hash}`);
    expect(await json(released)).toEqual({ num_unquarantined: 2 });
    expect(await servedStatuses(first)).toEqual(ALL_OK);
    expect(await servedStatuses(await upload('the same bytes'))).toEqual(ALL_OK);
    for (const bad of ['abc', 'g'.repeat(64), 'a'.repeat(65)]) {
      const refused = await api('POST', `/_hsmedia/admin/v1/media/quarantine_by_hash/${bad}`);
      expect([bad, refused.status, (await json(refused))['errcode']]).toEqual([bad, 400, 'M_INVALID_PARAM']);
    }
  });

  it("quarantines all of a user's uploads (more than one batch) and nobody else's", async () => {
    h = await start();
    const alices = [await upload('a1'), await upload('a2'), await upload('a3')];
    const bobs = await upload('b1', BOB);
    const res = await api('POST', '/_synapse/admin/v1/user/@alice:media.test/media/quarantine');
    expect(await json(res)).toEqual({ num_quarantined: 3 });
    for (const id of alices) expect(await servedStatuses(id)).toEqual(ALL_GONE);
    expect(await servedStatuses(bobs)).toEqual(ALL_OK);
    expect(await json(await api('POST', '/_synapse/admin/v1/user/@alice:media.test/media/quarantine'))).toEqual({ num_quarantined: 0 });
    expect(await json(await api('POST', '/_synapse/admin/v1/user/@alice:media.test/media/unquarantine'))).toEqual({ num_unquarantined: 3 });
    expect(await servedStatuses(alices[0]!)).toEqual(ALL_OK);
    const bad = await api('POST', '/_synapse/admin/v1/user/alice/media/quarantine');
    expect([bad.status, (await json(bad))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
  });
});

describe('admin API: protection', () => {
  const hashOf = (text: string): string => createHash('sha256').update(text).digest('hex');
  const protectedFlag = async (mediaId: string): Promise<unknown> =>
    ((await json(await api('GET', `/_synapse/admin/v1/media/${SERVER}/${mediaId}`)))['media_info'] as Record<string, unknown>)['safe_from_quarantine'];

  it('protects media from quarantine by user and by hash, reports safe_from_quarantine, and unprotects it', async () => {
    h = await start();
    const sticker = await upload('shared sticker');
    const mine = await upload('my own upload');
    const copy = await upload('shared sticker', BOB);
    expect(await protectedFlag(sticker)).toBe(false);
    const res = await api('POST', `/_synapse/admin/v1/media/protect/${sticker}`);
    expect([res.status, await json(res)]).toEqual([200, {}]);
    expect(await protectedFlag(sticker)).toBe(true);
    expect(await protectedFlag(copy)).toBe(false);
    const listed = await json(await api('GET', '/_synapse/admin/v1/users/@alice:media.test/media'));
    expect(Object.fromEntries((listed['media'] as { media_id: string; safe_from_quarantine: boolean }[]).map((m) => [m.media_id, m.safe_from_quarantine]))).toEqual({
      [sticker]: true,
      [mine]: false,
    });

    // By user: the protected item is skipped, the rest is quarantined.
    const byUser = await api('POST', '/_synapse/admin/v1/user/@alice:media.test/media/quarantine');
    expect(await json(byUser)).toEqual({ num_quarantined: 1 });
    expect(await servedStatuses(sticker)).toEqual(ALL_OK);
    expect(await servedStatuses(mine)).toEqual(ALL_GONE);
    // By hash: only the unprotected copy.
    const byHash = await api('POST', `/_hsmedia/admin/v1/media/quarantine_by_hash/${hashOf('shared sticker')}`);
    expect(await json(byHash)).toEqual({ num_quarantined: 1 });
    expect(await servedStatuses(sticker)).toEqual(ALL_OK);
    expect(await servedStatuses(copy)).toEqual(ALL_GONE);

    // Unprotected, it falls to the next bulk quarantine.
    const unprotect = await api('POST', `/_synapse/admin/v1/media/unprotect/${sticker}`);
    expect([unprotect.status, await json(unprotect)]).toEqual([200, {}]);
    expect(await protectedFlag(sticker)).toBe(false);
    expect(await json(await api('POST', `/_hsmedia/admin/v1/media/quarantine_by_hash/${hashOf('shared sticker')}`))).toEqual({ num_quarantined: 1 });
    expect(await servedStatuses(sticker)).toEqual(ALL_GONE);
  });

  it('never quarantines a protected item, even by ID (200 {} and no change, as Synapse); releasing it works', async () => {
    h = await start();
    const id = await upload('quarantined, then protected');
    expect((await api('POST', `/_synapse/admin/v1/media/quarantine/${SERVER}/${id}`)).status).toBe(200);
    expect(await servedStatuses(id)).toEqual(ALL_GONE);
    // Protecting does not release it; releasing protected media works, by user too.
    expect((await api('POST', `/_synapse/admin/v1/media/protect/${id}`)).status).toBe(200);
    expect(await servedStatuses(id)).toEqual(ALL_GONE);
    expect(await json(await api('POST', '/_synapse/admin/v1/user/@alice:media.test/media/unquarantine'))).toEqual({ num_unquarantined: 1 });
    expect(await servedStatuses(id)).toEqual(ALL_OK);
    const again = await api('POST', `/_synapse/admin/v1/media/quarantine/${SERVER}/${id}`);
    expect([again.status, await json(again)]).toEqual([200, {}]);
    expect(await servedStatuses(id)).toEqual(ALL_OK);
    const info = (await json(await api('GET', `/_synapse/admin/v1/media/${SERVER}/${id}`)))['media_info'];
    expect(info).toMatchObject({ quarantined: false, quarantined_by: null, safe_from_quarantine: true });
  });

  it('answers {} for unknown media (as Synapse), 404 M_NOT_FOUND for a malformed ID, and changes nothing else', async () => {
    h = await start();
    const id = await upload('untouched');
    const unknown = await api('POST', '/_synapse/admin/v1/media/protect/NoSuchMedia42');
    expect([unknown.status, await json(unknown)]).toEqual([200, {}]);
    for (const bad of ['a%2Fb', 'x'.repeat(300), 'a%00b']) {
      const res = await api('POST', `/_synapse/admin/v1/media/protect/${bad}`);
      expect([bad.slice(0, 10), res.status, (await json(res))['errcode']]).toEqual([bad.slice(0, 10), 404, 'M_NOT_FOUND']);
    }
    expect((await h.metadata.listMedia({ protected: true }, { limit: 10 })).length).toBe(0);
    expect(await protectedFlag(id)).toBe(false);
    const wrong = await api('GET', `/_synapse/admin/v1/media/unprotect/${id}`);
    // GET on this path is media_info for server "unprotect": unknown media, not a protection change.
    expect(wrong.status).toBe(404);
    await wrong.arrayBuffer();
  });
});

describe('admin API: deletion', () => {
  it('deletes one item: row, blob file and thumbnails; then 404', async () => {
    h = await start();
    const id = await upload('delete me');
    const record = await h.metadata.getMedia(SERVER, id);
    expect(await blobExists(record)).toBe(true);
    const store = h.metadata as unknown as { insertThumbnail?: (t: unknown) => Promise<boolean> };
    let thumbnailBlob: string | undefined;
    if (typeof store.insertThumbnail === 'function') {
      const stored = await h.blobs.put(bytesOf('thumbnail bytes'));
      thumbnailBlob = stored.blobId;
      await store.insertThumbnail({
        serverName: SERVER, mediaId: id, width: 32, height: 32, method: 'scale', animated: false,
        contentType: 'image/png', blobId: stored.blobId, size: stored.size, createdAt: T0,
      });
    }
    const res = await api('DELETE', `/_synapse/admin/v1/media/${SERVER}/${id}`);
    expect([res.status, await json(res)]).toEqual([200, { deleted_media: [id], total: 1 }]);
    expect(await h.metadata.getMedia(SERVER, id)).toBeNull();
    expect(await blobExists(record)).toBe(false);
    await expect(access(join(h.blobs.root))).resolves.toBeUndefined();
    if (thumbnailBlob !== undefined) expect(await h.blobs.stat(thumbnailBlob)).toBeNull();
    expect(await servedStatuses(id)).toEqual(ALL_GONE);
    const again = await api('DELETE', `/_synapse/admin/v1/media/${SERVER}/${id}`);
    expect([again.status, (await json(again))['errcode']]).toEqual([404, 'M_NOT_FOUND']);
    const remote = await api('DELETE', `/_synapse/admin/v1/media/other.example/${id}`);
    expect([remote.status, (await json(remote))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it('keeps a blob another record still uses', async () => {
    h = await start();
    const id = await upload('shared');
    const record = (await h.metadata.getMedia(SERVER, id))!;
    await h.metadata.insertMedia({ ...record, mediaId: 'twinOfShared' });
    expect((await api('DELETE', `/_synapse/admin/v1/media/${SERVER}/${id}`)).status).toBe(200);
    expect(await blobExists(record)).toBe(true);
    expect(await servedStatuses('twinOfShared')).toEqual(ALL_OK);
  });

  it('deletes local media last used before a date, optionally above a size; validates before_ts', async () => {
    h = await start();
    const old = await upload('old');
    const oldBig = await upload('old and bigger');
    h.clock.set(T0 + 10 * DAY);
    const recent = await upload('recent');
    const before = T0 + 5 * DAY;
    const sized = await json(await api('POST', `/_synapse/admin/v1/media/delete?before_ts=${before}&size_gt=5`));
    expect(sized).toEqual({ deleted_media: [oldBig], total: 1 });
    const rest = await json(await api('POST', `/_synapse/admin/v1/media/${SERVER}/delete?before_ts=${before}&keep_profiles=false`));
    expect(rest).toEqual({ deleted_media: [old], total: 1 });
    expect(await servedStatuses(recent)).toEqual(ALL_OK);
    expect(await servedStatuses(old)).toEqual(ALL_GONE);
    for (const [query, errcode] of [
      ['', 'M_MISSING_PARAM'],
      ['?before_ts=1000', 'M_INVALID_PARAM'],
      ['?before_ts=-5', 'M_INVALID_PARAM'],
      [`?before_ts=${T0}&size_gt=x`, 'M_INVALID_PARAM'],
      [`?before_ts=${T0}&keep_profiles=maybe`, 'M_INVALID_PARAM'],
    ] as const) {
      const res = await api('POST', `/_synapse/admin/v1/media/delete${query}`);
      expect([query, res.status, (await json(res))['errcode']]).toEqual([query, 400, errcode]);
    }
    const remote = await api('POST', `/_synapse/admin/v1/media/other.example/delete?before_ts=${T0}`);
    expect(remote.status).toBe(400);
    expect(await servedStatuses(recent)).toEqual(ALL_OK);
  });

  it("lists and deletes a user's media with Synapse's paging (from, limit, order_by, dir, next_token)", async () => {
    h = await start();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      h.clock.set(T0 + i * 1000);
      ids.push(await upload(`alice ${'x'.repeat(i)}`));
    }
    const bobs = await upload('bob', BOB);
    const first = await json(await api('GET', '/_synapse/admin/v1/users/@alice:media.test/media?limit=2'));
    expect(first['total']).toBe(3);
    expect(first['next_token']).toBe(2);
    expect((first['media'] as { media_id: string }[]).map((m) => m.media_id)).toEqual(ids.slice(0, 2));
    expect((first['media'] as object[])[0]).toEqual({
      created_ts: T0,
      last_access_ts: null,
      media_id: ids[0],
      media_length: 6,
      media_type: 'text/plain',
      quarantined_by: null,
      safe_from_quarantine: false,
      upload_name: null,
    });
    const last = await json(await api('GET', '/_synapse/admin/v1/users/@alice:media.test/media?limit=2&from=2'));
    expect(last['next_token']).toBeUndefined();
    const bySize = await json(await api('GET', '/_synapse/admin/v1/users/@alice:media.test/media?order_by=media_length&dir=b'));
    expect((bySize['media'] as { media_id: string }[]).map((m) => m.media_id)).toEqual([...ids].reverse());
    for (const query of ['?order_by=nope', '?dir=x', '?limit=0', '?from=-1', '?limit=abc']) {
      const res = await api('GET', `/_synapse/admin/v1/users/@alice:media.test/media${query}`);
      expect([query, res.status, (await json(res))['errcode']]).toEqual([query, 400, 'M_INVALID_PARAM']);
    }
    const records = await Promise.all(ids.map((id) => h!.metadata.getMedia(SERVER, id)));
    const deleted = await json(await api('DELETE', '/_synapse/admin/v1/users/@alice:media.test/media'));
    expect(deleted).toEqual({ deleted_media: ids, total: 3 });
    for (const record of records) expect(await blobExists(record)).toBe(false);
    expect(await servedStatuses(bobs)).toEqual(ALL_OK);
    expect(await json(await api('GET', '/_synapse/admin/v1/users/@alice:media.test/media'))).toEqual({ media: [], total: 0 });
  });

  it('purges cached remote media not used since a date, never local media', async () => {
    h = await start();
    const local = await upload('local, old');
    const remote = async (mediaId: string, lastAccessAt: number | null, uploadedAt: number): Promise<MediaRecord> => {
      const stored = await h!.blobs.put(bytesOf(`remote ${mediaId}`));
      const record: MediaRecord = {
        serverName: 'remote.example', mediaId, blobId: stored.blobId, contentType: 'text/plain', uploadName: null,
        size: stored.size, sha256: stored.sha256, userId: null, createdAt: uploadedAt, uploadedAt, expiresAt: null,
        authenticated: false, quarantined: false, lastAccessAt,
      };
      await h!.metadata.insertMedia(record);
      return record;
    };
    const stale = await remote('stale', T0 - 40 * DAY, T0 - 50 * DAY);
    const neverRead = await remote('neverRead', null, T0 - 45 * DAY);
    const fresh = await remote('fresh', T0 - DAY, T0 - 50 * DAY);
    const res = await api('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${T0 - 30 * DAY}`);
    expect([res.status, await json(res)]).toEqual([200, { deleted: 2 }]);
    expect(await blobExists(stale)).toBe(false);
    expect(await blobExists(neverRead)).toBe(false);
    expect(await blobExists(fresh)).toBe(true);
    expect(await h.metadata.getMedia('remote.example', 'stale')).toBeNull();
    expect(await servedStatuses(local)).toEqual(ALL_OK);
    const missing = await api('POST', '/_synapse/admin/v1/purge_media_cache');
    expect([missing.status, (await json(missing))['errcode']]).toEqual([400, 'M_MISSING_PARAM']);
  });

  it('keeps quarantined and protected media out of purges and bulk deletes unless include_quarantined_media / include_protected_media', async () => {
    h = await start();
    const stored = await h.blobs.put(bytesOf('remote quarantined'));
    await h.metadata.insertMedia({
      serverName: 'remote.example', mediaId: 'quarantined', blobId: stored.blobId, contentType: 'text/plain', uploadName: null,
      size: stored.size, sha256: stored.sha256, userId: null, createdAt: T0 - 50 * DAY, uploadedAt: T0 - 50 * DAY, expiresAt: null,
      authenticated: false, quarantined: true, lastAccessAt: T0 - 40 * DAY,
    });
    const purge = (extra: string) => api('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${T0 - 30 * DAY}${extra}`);
    expect(await json(await purge(''))).toEqual({ deleted: 0 });
    const bad = await purge('&include_quarantined_media=yes');
    expect([bad.status, (await json(bad))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
    expect(await json(await purge('&include_quarantined_media=true'))).toEqual({ deleted: 1 });

    const quarantined = await upload('quarantined upload');
    const kept = await upload('protected upload');
    const ordinary = await upload('ordinary upload');
    expect((await api('POST', `/_synapse/admin/v1/media/quarantine/${SERVER}/${quarantined}`)).status).toBe(200);
    expect((await api('POST', `/_synapse/admin/v1/media/protect/${kept}`)).status).toBe(200);
    const deleteOld = (extra: string) => api('POST', `/_synapse/admin/v1/media/delete?before_ts=${T0 + 1}${extra}`);
    expect(await json(await deleteOld(''))).toEqual({ deleted_media: [ordinary], total: 1 });
    expect(await json(await api('DELETE', '/_synapse/admin/v1/users/@alice:media.test/media'))).toEqual({ deleted_media: [], total: 0 });
    expect(await json(await deleteOld('&include_protected_media=true'))).toEqual({ deleted_media: [kept], total: 1 });
    expect(await json(await api('DELETE', '/_synapse/admin/v1/users/@alice:media.test/media?include_quarantined_media=true'))).toEqual({ deleted_media: [quarantined], total: 1 });
  });
});

describe('admin API: statistics', () => {
  it("reports per-user counts and bytes in Synapse's shape, ordered, paged and searchable", async () => {
    h = await start();
    await upload('12345');
    await upload('123');
    h.clock.set(T0 + DAY);
    await upload('1234567890', BOB);
    const all = await json(await api('GET', '/_synapse/admin/v1/statistics/users/media'));
    expect(all).toEqual({
      users: [
        { user_id: '@alice:media.test', displayname: null, media_count: 2, media_length: 8 },
        { user_id: '@bob:media.test', displayname: null, media_count: 1, media_length: 10 },
      ],
      total: 2,
    });
    const top = await json(await api('GET', '/_synapse/admin/v1/statistics/users/media?order_by=media_length&dir=b&limit=1'));
    expect(top).toEqual({ users: [{ user_id: '@bob:media.test', displayname: null, media_count: 1, media_length: 10 }], total: 2, next_token: 1 });
    const since = await json(await api('GET', `/_synapse/admin/v1/statistics/users/media?from_ts=${T0 + 1}`));
    expect((since['users'] as { user_id: string }[]).map((u) => u.user_id)).toEqual(['@bob:media.test']);
    const search = await json(await api('GET', '/_synapse/admin/v1/statistics/users/media?search_term=ALI'));
    expect((search['users'] as { user_id: string }[]).map((u) => u.user_id)).toEqual(['@alice:media.test']);
    const bad = await api('GET', '/_synapse/admin/v1/statistics/users/media?order_by=size');
    expect([bad.status, (await json(bad))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it('answers 404 for unknown media and 400 for a malformed server name', async () => {
    h = await start();
    const unknown = await api('GET', `/_synapse/admin/v1/media/${SERVER}/nope`);
    expect([unknown.status, (await json(unknown))['errcode']]).toEqual([404, 'M_NOT_FOUND']);
    const bad = await api('GET', '/_synapse/admin/v1/media/bad%20name/nope');
    expect([bad.status, (await json(bad))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
  });
});

describe('admin API: audit log', () => {
  interface AuditEntry {
    id: number;
    action: string;
    actor: string | null;
    target: string;
    reason: string | null;
    ts: number;
  }
  async function audit(query = ''): Promise<{ actions: AuditEntry[]; next_token?: number }> {
    const res = await api('GET', `/_hsmedia/admin/v1/audit${query}`);
    expect(res.status).toBe(200);
    return (await res.json()) as { actions: AuditEntry[]; next_token?: number };
  }

  it('records each admin action with the admin, the target, the reason (query or JSON body) and the time', async () => {
    h = await start();
    const id = await upload('audited');
    const sha = createHash('sha256').update('audited').digest('hex');
    expect((await api('POST', `/_synapse/admin/v1/media/protect/${id}?reason=sticker+pack`)).status).toBe(200);
    expect((await api('POST', `/_synapse/admin/v1/media/unprotect/${id}`)).status).toBe(200);
    const quarantine = await fetch(`${h.url}/_synapse/admin/v1/media/quarantine/${SERVER}/${id}`, {
      method: 'POST',
      headers: { ...ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: 'report #7 ✓' }),
    });
    expect(quarantine.status).toBe(200);
    expect((await api('POST', `/_hsmedia/admin/v1/media/unquarantine_by_hash/${sha}?reason=appeal`)).status).toBe(200);
    expect((await api('POST', '/_synapse/admin/v1/user/@alice:media.test/media/quarantine?reason=spam')).status).toBe(200);
    expect((await api('DELETE', `/_synapse/admin/v1/media/${SERVER}/${id}?reason=gone`)).status).toBe(200);
    expect((await api('POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${T0}&reason=space`)).status).toBe(200);
    const { actions, next_token } = await audit();
    expect(next_token).toBeUndefined();
    expect(actions.map(({ action, actor, target, reason, ts }) => ({ action, actor, target, reason, ts })).reverse()).toEqual(
      [
        ['protect', `mxc://${SERVER}/${id}`, 'sticker pack'],
        ['unprotect', `mxc://${SERVER}/${id}`, null],
        ['quarantine', `mxc://${SERVER}/${id}`, 'report #7 ✓'],
        ['unquarantine', sha, 'appeal'],
        ['quarantine', '@alice:media.test', 'spam'],
        ['delete', `mxc://${SERVER}/${id}`, 'gone'],
        ['purge', 'remote_cache', 'space'],
      ].map(([action, target, reason]) => ({ action, actor: '@admin:media.test', target, reason, ts: T0 })),
    );
  });

  it('filters by action and by target, and pages newest first with limit and from', async () => {
    h = await start();
    const a = await upload('a');
    const b = await upload('b');
    for (const id of [a, b, a]) expect((await api('POST', `/_synapse/admin/v1/media/quarantine/${SERVER}/${id}`)).status).toBe(200);
    expect((await api('POST', `/_synapse/admin/v1/media/unquarantine/${SERVER}/${a}`)).status).toBe(200);
    const ofA = await audit(`?target=${encodeURIComponent(`mxc://${SERVER}/${a}`)}`);
    expect(ofA.actions.map((entry) => entry.action)).toEqual(['unquarantine', 'quarantine', 'quarantine']);
    const quarantines = await audit('?action=quarantine');
    expect(quarantines.actions.map((entry) => entry.target)).toEqual([a, b, a].reverse().map((id) => `mxc://${SERVER}/${id}`));
    const first = await audit('?limit=3');
    expect(first.actions).toHaveLength(3);
    expect(first.next_token).toBe(first.actions[2]!.id);
    const second = await audit(`?limit=3&from=${first.next_token}`);
    expect(second.actions.map((entry) => entry.target)).toEqual([`mxc://${SERVER}/${a}`]);
    expect(second.next_token).toBeUndefined();
    expect([...first.actions, ...second.actions].map((entry) => entry.id)).toEqual(
      [...first.actions, ...second.actions].map((entry) => entry.id).sort((x, y) => y - x),
    );
  });

  it('refuses a bad reason or filter with 400 and changes nothing', async () => {
    h = await start();
    const id = await upload('kept');
    const tooLong = await api('POST', `/_synapse/admin/v1/media/quarantine/${SERVER}/${id}?reason=${'x'.repeat(1001)}`);
    expect([tooLong.status, (await json(tooLong))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
    const both = await fetch(`${h.url}/_synapse/admin/v1/media/quarantine/${SERVER}/${id}?reason=a`, {
      method: 'POST',
      headers: { ...ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: 'b' }),
    });
    expect([both.status, (await json(both))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
    const notString = await fetch(`${h.url}/_synapse/admin/v1/media/protect/${id}`, { method: 'POST', headers: ADMIN, body: '{"reason": 5}' });
    expect([notString.status, (await json(notString))['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
    const notJson = await fetch(`${h.url}/_synapse/admin/v1/media/protect/${id}`, { method: 'POST', headers: ADMIN, body: 'reason' });
    expect([notJson.status, (await json(notJson))['errcode']]).toEqual([400, 'M_NOT_JSON']);
    for (const query of ['?action=nope', '?limit=0', '?limit=1001', '?from=0', '?from=x', `?target=${'x'.repeat(513)}`, '?action=purge&action=delete']) {
      const res = await api('GET', `/_hsmedia/admin/v1/audit${query}`);
      expect([query, res.status, (await json(res))['errcode']]).toEqual([query, 400, 'M_INVALID_PARAM']);
    }
    expect(await servedStatuses(id)).toEqual(ALL_OK);
    expect((await audit()).actions).toEqual([]);
  });
});
