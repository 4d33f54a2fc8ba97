import { isMatrixError, type MatrixError } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { MediaAdmin } from './media-admin.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { MediaRecord } from './ports/index.js';

// The admin service on the in-memory stores: every change goes through the
// shared catalog, so this process never serves what was just changed, even
// with a record cache that would otherwise trust its copy for an hour.

const SERVER = 'example.org';
const REMOTE = 'remote.example';
const alice: Requester = { userId: '@alice:example.org', isGuest: false };
const bob: Requester = { userId: '@bob:example.org', isGuest: false };
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
async function* iter(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function setup() {
  let now = 1_000_000;
  const clock = { now: () => now };
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({ serverName: SERVER, blobs, metadata, maxUploadBytes: 1 << 20, clock, touchIntervalMs: 0, cache: { recordTtlMs: 3_600_000 } });
  const admin = new MediaAdmin({ media, queries: metadata, batchSize: 2 });
  const upload = async (text: string, requester: Requester = alice): Promise<string> =>
    (await media.upload({ body: iter(enc(text)), contentType: 'text/plain', requester })).mediaId;
  /** Puts a cached remote item in place, as a fetch would have. */
  const cacheRemote = async (mediaId: string, text: string, lastAccessAt: number): Promise<void> => {
    const blob = await blobs.put(iter(enc(text)));
    const record: MediaRecord = {
      serverName: REMOTE,
      mediaId,
      blobId: blob.blobId,
      contentType: 'text/plain',
      uploadName: null,
      size: blob.size,
      sha256: blob.sha256,
      userId: null,
      createdAt: lastAccessAt,
      uploadedAt: lastAccessAt,
      expiresAt: null,
      authenticated: true,
      quarantined: false,
      lastAccessAt,
    };
    expect(await metadata.insertMedia(record)).toBe(true);
  };
  return { blobs, metadata, media, admin, upload, cacheRemote, advance: (ms: number) => void (now += ms), clock };
}

async function status(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (isMatrixError(error)) return (error as MatrixError).httpStatus;
    throw error;
  }
}

describe('MediaAdmin', () => {
  it('quarantine and release take effect at once in this process (the catalog drops its copy)', async () => {
    const { media, admin, upload } = setup();
    const mediaId = await upload('x');
    expect(await status(media.getMedia(SERVER, mediaId))).toBe(200);
    expect(await admin.setQuarantined(SERVER, mediaId, true)).toBe(true);
    expect(await status(media.getMedia(SERVER, mediaId))).toBe(404);
    expect((await admin.getMedia(SERVER, mediaId))?.quarantined).toBe(true);
    expect(await admin.setQuarantined(SERVER, mediaId, false)).toBe(true);
    expect(await status(media.getMedia(SERVER, mediaId))).toBe(200);
  });

  it('never quarantines protected media, one by one or in bulk', async () => {
    const { media, admin, upload } = setup();
    const kept = await upload('same bytes');
    const other = await upload('same bytes', bob);
    expect(await admin.setProtected(SERVER, kept, true)).toBe(true);
    expect(await admin.setQuarantined(SERVER, kept, true)).toBe(false);
    const sha = (await admin.getMedia(SERVER, kept))!.sha256!;
    expect(await admin.quarantineByHash(sha.toUpperCase(), true)).toBe(1);
    expect(await status(media.getMedia(SERVER, kept))).toBe(200);
    expect(await status(media.getMedia(SERVER, other))).toBe(404);
    expect(await admin.quarantineByHash('not-a-hash', true)).toBe(0);
  });

  it('quarantines every upload of a user across batches', async () => {
    const { media, admin, upload } = setup();
    const ids = [await upload('1'), await upload('2'), await upload('3'), await upload('4', bob)];
    expect(await admin.quarantineUserMedia(alice.userId, true)).toBe(3);
    expect(await Promise.all(ids.map((id) => status(media.getMedia(SERVER, id))))).toEqual([404, 404, 404, 200]);
    expect(await admin.quarantineUserMedia(alice.userId, false)).toBe(3);
  });

  it('deletes the record, its blob and its cached state; a shared blob stays while a record uses it', async () => {
    const { media, admin, blobs, metadata, upload } = setup();
    const mediaId = await upload('bytes');
    await media.getMedia(SERVER, mediaId);
    expect(await admin.deleteMedia(SERVER, mediaId)).toBe(true);
    expect(await metadata.getMedia(SERVER, mediaId)).toBeNull();
    expect(blobs.blobCount).toBe(0);
    expect(await status(media.getMedia(SERVER, mediaId))).toBe(404);
    expect(await admin.deleteMedia(SERVER, mediaId)).toBe(false);
    expect(await admin.deleteMedia(SERVER, '../etc')).toBe(false);
  });

  it('lists and deletes a page of a user’s uploads', async () => {
    const { admin, upload } = setup();
    await upload('1');
    await upload('2');
    await upload('3', bob);
    const page = await admin.listUserMedia(alice.userId, { limit: 1 });
    expect([page.media.length, page.total]).toEqual([1, 2]);
    expect(await admin.deleteUserMedia(alice.userId, { limit: 10 })).toHaveLength(2);
    expect((await admin.listUserMedia(alice.userId, { limit: 10 })).total).toBe(0);
  });

  it('purges cached remote media last used before a time, never local media', async () => {
    const { admin, media, cacheRemote, upload, metadata } = setup();
    const local = await upload('local');
    await cacheRemote('oldRemote01', 'old', 1_000);
    await cacheRemote('newRemote01', 'new', 5_000_000);
    expect(await admin.purgeRemoteCache(2_000_000)).toBe(1);
    expect(await metadata.getMedia(REMOTE, 'oldRemote01')).toBeNull();
    expect(await metadata.getMedia(REMOTE, 'newRemote01')).not.toBeNull();
    expect(await status(media.getMedia(SERVER, local))).toBe(200);
  });

  it('evicts the least recently used remote media until the cache fits its budget', async () => {
    const { admin, cacheRemote, metadata } = setup();
    await cacheRemote('remoteOld001', '1234567890', 1_000);
    await cacheRemote('remoteMid001', '1234567890', 2_000);
    await cacheRemote('remoteNew001', '1234567890', 3_000);
    expect(await admin.evictRemoteCache(15)).toEqual({ deleted: 2, freedBytes: 20, remainingBytes: 10 });
    expect(await metadata.getMedia(REMOTE, 'remoteNew001')).not.toBeNull();
  });

  it('deletes local media by size and age only when a condition is given', async () => {
    const { admin, upload, advance } = setup();
    await upload('small');
    advance(10_000);
    await upload('a much larger upload');
    expect(await admin.deleteLocalMedia({})).toEqual([]);
    expect(await admin.deleteLocalMedia({ sizeGreaterThan: 10 })).toHaveLength(1);
  });

  it('purges and evicts quarantined and protected remote media only when asked explicitly', async () => {
    const { admin, cacheRemote, metadata } = setup();
    await cacheRemote('quarantined1', 'bad remote', 1_000);
    await cacheRemote('protected001', 'kept remote', 1_000);
    await cacheRemote('ordinary0001', 'ordinary', 1_000);
    expect(await admin.setQuarantined(REMOTE, 'quarantined1', true)).toBe(true);
    expect(await admin.setProtected(REMOTE, 'protected001', true)).toBe(true);
    expect(await admin.purgeRemoteCache(2_000_000)).toBe(1);
    expect(await metadata.getMedia(REMOTE, 'ordinary0001')).toBeNull();
    expect(await admin.evictRemoteCache(0)).toEqual({ deleted: 0, freedBytes: 0, remainingBytes: 21 });
    expect(await admin.purgeRemoteCache(2_000_000, undefined, { includeQuarantined: true })).toBe(1);
    expect(await metadata.getMedia(REMOTE, 'quarantined1')).toBeNull();
    expect(await admin.evictRemoteCache(0, { includeProtected: true })).toEqual({ deleted: 1, freedBytes: 11, remainingBytes: 0 });
  });

  it('deletes local media by date, size or user without quarantined and protected items unless asked', async () => {
    const { admin, upload, metadata } = setup();
    const quarantined = await upload('quarantined');
    const isProtected = await upload('protected!!');
    const ordinary = await upload('ordinary!!!');
    expect(await admin.setQuarantined(SERVER, quarantined, true)).toBe(true);
    expect(await admin.setProtected(SERVER, isProtected, true)).toBe(true);
    expect(await admin.deleteLocalMedia({ sizeGreaterThan: 1 })).toEqual([ordinary]);
    expect(await admin.deleteUserMedia(alice.userId, { limit: 10 })).toEqual([]);
    expect(await admin.deleteUserMedia(alice.userId, { limit: 10 }, { includeProtected: true })).toEqual([isProtected]);
    expect(await admin.deleteLocalMedia({ sizeGreaterThan: 1, includeQuarantined: true })).toEqual([quarantined]);
    expect((await metadata.summarizeMedia({})).count).toBe(0);
  });

  it('keeps profile media out of every bulk deletion unless includeProfiles, and records the flag changes', async () => {
    const { admin, upload, cacheRemote, metadata } = setup();
    const avatar = await upload('avatar bytes');
    const other = await upload('other bytes!');
    await cacheRemote('remoteavatar', 'remote avatar', 1_000);
    expect(await admin.setProfile(SERVER, avatar, true, { by: '@admin:example.org', reason: 'avatar' })).toBe(true);
    expect(await admin.setProfile(REMOTE, 'remoteavatar', true)).toBe(true);
    expect(await admin.setProfile(SERVER, 'unknownid000', true)).toBe(false);
    expect(await admin.setProfile('bad server!', 'x', true)).toBe(false);
    expect((await admin.getMedia(SERVER, avatar))?.profile).toBe(true);
    expect(await admin.deleteLocalMedia({ sizeGreaterThan: 1 })).toEqual([other]);
    expect(await admin.deleteUserMedia(alice.userId, { limit: 10 })).toEqual([]);
    expect(await admin.purgeRemoteCache(2_000_000)).toBe(0);
    expect(await admin.evictRemoteCache(0)).toMatchObject({ deleted: 0 });
    expect(await admin.deleteLocalMedia({ sizeGreaterThan: 1, includeProfiles: true })).toEqual([avatar]);
    expect(await admin.evictRemoteCache(0, { includeProfiles: true })).toMatchObject({ deleted: 1 });
    expect((await metadata.summarizeMedia({})).count).toBe(0);
    const actions = await admin.listAdminActions({ limit: 10, action: 'mark_profile' });
    expect(actions.map((entry) => [entry.actor, entry.target, entry.reason])).toEqual([
      [null, 'mxc://example.org/unknownid000', null],
      [null, `mxc://${REMOTE}/remoteavatar`, null],
      ['@admin:example.org', `mxc://${SERVER}/${avatar}`, 'avatar'],
    ]);
  });

  it('imports a hash list all or nothing: blocked bytes stop being served, the import is recorded once', async () => {
    const { admin, upload, media } = setup();
    const id = await upload('shared list bytes');
    const sha = (await admin.getMedia(SERVER, id))!.sha256!;
    await expect(
      admin.importBlockedHashes([{ sha256: sha, reason: 'list', blockedBy: null, blockedAt: null }, { sha256: 'nothex', reason: null, blockedBy: null, blockedAt: null }]),
    ).rejects.toThrow(TypeError);
    expect(await status(media.getMedia(SERVER, id))).toBe(200);
    const result = await admin.importBlockedHashes(
      [
        { sha256: sha, reason: 'list', blockedBy: null, blockedAt: null },
        { sha256: sha, reason: 'again', blockedBy: null, blockedAt: null },
        { sha256: 'e'.repeat(64), reason: null, blockedBy: 'friend.example', blockedAt: 5 },
      ],
      { by: '@admin:example.org', reason: 'shared list' },
    );
    expect(result).toEqual({ imported: 2, alreadyPresent: 0 });
    expect(await status(media.getMedia(SERVER, id))).toBe(404);
    expect(await admin.listBlockedHashes({ limit: 10 })).toEqual(
      [
        { sha256: sha, reason: 'list', blockedBy: '@admin:example.org', blockedAt: 1_000_000 },
        { sha256: 'e'.repeat(64), reason: null, blockedBy: 'friend.example', blockedAt: 5 },
      ].sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1)),
    );
    expect(await admin.importBlockedHashes([{ sha256: sha, reason: null, blockedBy: null, blockedAt: null }])).toEqual({ imported: 0, alreadyPresent: 1 });
    const actions = await admin.listAdminActions({ limit: 10, action: 'import_hashes' });
    expect(actions.map((entry) => [entry.actor, entry.target, entry.reason])).toEqual([
      [null, 'blocked_hashes', null],
      ['@admin:example.org', 'blocked_hashes', 'shared list'],
    ]);
  });

  it('reports usage by user', async () => {
    const { admin, upload } = setup();
    await upload('12');
    await upload('345', bob);
    const usage = await admin.usageByUser({ limit: 10, orderBy: 'media_length', direction: 'desc' });
    expect(usage.users.map((user) => [user.userId, user.mediaLength])).toEqual([
      [bob.userId, 3],
      [alice.userId, 2],
    ]);
  });
});
