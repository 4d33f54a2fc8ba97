import type { MediaQueries, MediaRecord, MediaRecordStore } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const LOCAL = 'local.example.org';
const REMOTE = 'remote.example.com';
const HASH_A = 'aa'.repeat(32);
const HASH_B = 'bb'.repeat(32);

function record(mediaId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: LOCAL,
    mediaId,
    blobId: `blob_${mediaId}`,
    contentType: 'image/png',
    uploadName: `${mediaId}.png`,
    size: 100,
    sha256: HASH_A,
    userId: '@alice:local.example.org',
    createdAt: 1_000,
    uploadedAt: 1_000,
    expiresAt: null,
    authenticated: false,
    quarantined: false,
    lastAccessAt: null,
    ...overrides,
  };
}

/** A small, varied data set: three users (no two IDs differ only in case: collations order those differently), a remote item, two hashes, sizes, times, a quarantined item. */
function fixture(): MediaRecord[] {
  return [
    record('a1', { size: 10, createdAt: 1_000, uploadedAt: 1_000, lastAccessAt: 5_000, uploadName: 'zeta.png' }),
    record('a2', { size: 20, createdAt: 2_000, uploadedAt: 2_000, sha256: HASH_B, uploadName: 'alpha.png' }),
    record('a3', { size: 30, createdAt: 3_000, uploadedAt: 3_000, quarantined: true, uploadName: null }),
    record('b1', { userId: '@xBOB:local.example.org', size: 400, createdAt: 4_000, uploadedAt: 4_000 }),
    record('p1', {
      userId: '@bob:local.example.org',
      blobId: null,
      size: null,
      sha256: null,
      createdAt: 500,
      uploadedAt: null,
      expiresAt: 99_000,
      contentType: null,
      uploadName: null,
    }),
    record('r1', { serverName: REMOTE, userId: null, size: 1_000, createdAt: 1_500, uploadedAt: 1_600, lastAccessAt: 2_500 }),
    record('r2', { serverName: REMOTE, userId: null, size: 2_000, createdAt: 1_200, uploadedAt: 1_300, sha256: HASH_B }),
  ];
}

const ids = (records: readonly MediaRecord[]): string[] => records.map((r) => r.mediaId);

/** Inserts the {@link fixture} records into the store and gives it back. */
async function seed<S extends MediaRecordStore>(store: () => S): Promise<S> {
  const subject = store();
  for (const r of fixture()) expect(await subject.insertMedia(r)).toBe(true);
  return subject;
}

/**
 * Cases for the admin and retention queries (`listMedia`, `summarizeMedia`,
 * `mediaUsageByUser`) over records written through the {@link MediaRecordStore},
 * run by `describeMediaQueries` and `describeMetadataStore`. Their expected
 * answers are those of the reference semantics (the in-memory store of
 * `@hsmedia/media-core/memory` implements them over plain arrays).
 */
export function describeMediaQueryCases(store: () => MediaRecordStore & MediaQueries): void {
  describe('admin queries', () => {

    it('lists everything by creation time with full records', async () => {
      const subject = await seed(store);
      const all = await subject.listMedia({}, { limit: 100 });
      expect(ids(all)).toEqual(['p1', 'a1', 'r2', 'r1', 'a2', 'a3', 'b1']);
      expect(all[1]).toEqual(fixture()[0]);
      expect(typeof all[1]!.size).toBe('number');
      expect(typeof all[1]!.quarantined).toBe('boolean');
    });

    it('filters by origin, user, hash and quarantine', async () => {
      const subject = await seed(store);
      expect(ids(await subject.listMedia({ serverName: LOCAL }, { limit: 100 }))).toEqual(['p1', 'a1', 'a2', 'a3', 'b1']);
      expect(ids(await subject.listMedia({ notServerName: LOCAL }, { limit: 100 }))).toEqual(['r2', 'r1']);
      expect(ids(await subject.listMedia({ userId: '@alice:local.example.org' }, { limit: 100 }))).toEqual(['a1', 'a2', 'a3']);
      // User IDs match exactly: case matters.
      expect(ids(await subject.listMedia({ userId: '@bob:local.example.org' }, { limit: 100 }))).toEqual(['p1']);
      expect(ids(await subject.listMedia({ sha256: HASH_B }, { limit: 100 }))).toEqual(['r2', 'a2']);
      expect(ids(await subject.listMedia({ quarantined: true }, { limit: 100 }))).toEqual(['a3']);
      expect(ids(await subject.listMedia({ userId: '@alice:local.example.org', quarantined: false, sha256: HASH_A }, { limit: 100 }))).toEqual(['a1']);
      expect(await subject.listMedia({ userId: 'x'.repeat(300) }, { limit: 100 })).toEqual([]);
    });

    it('filters by creation time, last use (access, else upload, else creation) and size', async () => {
      const subject = await seed(store);
      expect(ids(await subject.listMedia({ createdBefore: 1_500 }, { limit: 100 }))).toEqual(['p1', 'a1', 'r2']);
      // a1 was accessed at 5000; r1 at 2500; r2 uploaded at 1300; p1 never uploaded: created 500.
      expect(ids(await subject.listMedia({ lastUsedBefore: 2_500 }, { limit: 100 }))).toEqual(['p1', 'r2', 'a2']);
      expect(ids(await subject.listMedia({ sizeGreaterThan: 30 }, { limit: 100 }))).toEqual(['r2', 'r1', 'b1']);
    });

    it('orders by last use, size, ID, name and type both ways, ties by key, nulls first ascending', async () => {
      const subject = await seed(store);
      expect(ids(await subject.listMedia({}, { orderBy: 'last_used', limit: 100 }))).toEqual(['p1', 'r2', 'a2', 'r1', 'a3', 'b1', 'a1']);
      expect(ids(await subject.listMedia({}, { orderBy: 'size', limit: 100 }))).toEqual(['p1', 'a1', 'a2', 'a3', 'b1', 'r1', 'r2']);
      expect(ids(await subject.listMedia({}, { orderBy: 'size', direction: 'desc', limit: 100 }))).toEqual(['r2', 'r1', 'b1', 'a3', 'a2', 'a1', 'p1']);
      expect(ids(await subject.listMedia({ serverName: LOCAL }, { orderBy: 'media_id', direction: 'desc', limit: 100 }))).toEqual(['p1', 'b1', 'a3', 'a2', 'a1']);
      expect(ids(await subject.listMedia({ serverName: LOCAL }, { orderBy: 'upload_name', limit: 100 }))).toEqual(['a3', 'p1', 'a2', 'b1', 'a1']);
      // Equal content types: the key decides.
      expect(ids(await subject.listMedia({ notServerName: LOCAL }, { orderBy: 'content_type', limit: 100 }))).toEqual(['r1', 'r2']);
    });

    it('pages with limit and offset', async () => {
      const subject = await seed(store);
      expect(ids(await subject.listMedia({}, { limit: 2 }))).toEqual(['p1', 'a1']);
      expect(ids(await subject.listMedia({}, { limit: 2, offset: 2 }))).toEqual(['r2', 'r1']);
      expect(ids(await subject.listMedia({}, { limit: 2, offset: 6 }))).toEqual(['b1']);
      expect(await subject.listMedia({}, { limit: 2, offset: 60 })).toEqual([]);
    });

    it('summarizes counts and sizes (unknown sizes count as 0)', async () => {
      const subject = await seed(store);
      expect(await subject.summarizeMedia({})).toEqual({ count: 7, totalBytes: 3_460 });
      expect(await subject.summarizeMedia({ notServerName: LOCAL })).toEqual({ count: 2, totalBytes: 3_000 });
      expect(await subject.summarizeMedia({ userId: '@bob:local.example.org' })).toEqual({ count: 1, totalBytes: 0 });
      expect(await subject.summarizeMedia({ userId: '@nobody:local.example.org' })).toEqual({ count: 0, totalBytes: 0 });
    });

    it('reports usage per uploader, ordered and paged, remote media excluded', async () => {
      const subject = await seed(store);
      expect(await subject.mediaUsageByUser({ limit: 10 })).toEqual({
        users: [
          { userId: '@alice:local.example.org', mediaCount: 3, mediaLength: 60 },
          { userId: '@bob:local.example.org', mediaCount: 1, mediaLength: 0 },
          { userId: '@xBOB:local.example.org', mediaCount: 1, mediaLength: 400 },
        ],
        total: 3,
      });
      const bySize = await subject.mediaUsageByUser({ orderBy: 'media_length', direction: 'desc', limit: 2 });
      expect(bySize.users.map((u) => u.userId)).toEqual(['@xBOB:local.example.org', '@alice:local.example.org']);
      expect(bySize.total).toBe(3);
      const byCount = await subject.mediaUsageByUser({ orderBy: 'media_count', limit: 10, offset: 1 });
      expect(byCount.users.map((u) => u.userId)).toEqual(['@xBOB:local.example.org', '@alice:local.example.org']);
    });

    it('filters usage by creation time and by an ASCII case-insensitive search term (wildcards are literal)', async () => {
      const subject = await seed(store);
      const recent = await subject.mediaUsageByUser({ createdFrom: 2_000, createdUntil: 4_000, limit: 10 });
      expect(recent).toEqual({ users: [{ userId: '@alice:local.example.org', mediaCount: 2, mediaLength: 50 }], total: 1 });
      const bobs = await subject.mediaUsageByUser({ searchTerm: 'BOB', limit: 10 });
      expect(bobs.users.map((u) => u.userId)).toEqual(['@bob:local.example.org', '@xBOB:local.example.org']);
      expect(bobs.total).toBe(2);
      expect(await subject.mediaUsageByUser({ searchTerm: '%', limit: 10 })).toEqual({ users: [], total: 0 });
      expect(await subject.mediaUsageByUser({ searchTerm: '_', limit: 10 })).toEqual({ users: [], total: 0 });
    });

    it('sees records it did not create through the query (inserts, completions, deletions)', async () => {
      const subject = await seed(store);
      await subject.deleteMedia(LOCAL, 'a1');
      await subject.completeMedia(LOCAL, 'p1', {
        blobId: 'blob_p1',
        contentType: 'text/plain',
        uploadName: null,
        size: 7,
        sha256: HASH_A,
        uploadedAt: 6_000,
      });
      expect(ids(await subject.listMedia({ sha256: HASH_A }, { limit: 100 }))).toEqual(['p1', 'r1', 'a3', 'b1']);
      expect(await subject.summarizeMedia({ serverName: LOCAL })).toEqual({ count: 4, totalBytes: 457 });
    });
  });
}

/**
 * Cases for {@link MediaRecordStore.setMediaQuarantined} on the same data
 * set, run by `describeMediaRecordStore` and `describeMetadataStore`.
 */
export function describeQuarantineFlagCases(store: () => MediaRecordStore): void {
  describe('quarantine flag', () => {
    it('sets and clears the quarantine flag of one record only', async () => {
      const subject = await seed(store);
      expect(await subject.setMediaQuarantined(LOCAL, 'a1', true)).toBe(true);
      expect((await subject.getMedia(LOCAL, 'a1'))?.quarantined).toBe(true);
      expect((await subject.getMedia(LOCAL, 'a2'))?.quarantined).toBe(false);
      expect(await subject.setMediaQuarantined(LOCAL, 'a1', true)).toBe(true);
      expect(await subject.setMediaQuarantined(LOCAL, 'a1', false)).toBe(true);
      expect(await subject.getMedia(LOCAL, 'a1')).toEqual(fixture()[0]);
      expect(await subject.setMediaQuarantined(LOCAL, 'missing', true)).toBe(false);
      expect(await subject.setMediaQuarantined(REMOTE, 'a1', true)).toBe(false);
      expect(await subject.getMedia(REMOTE, 'a1')).toBeNull();
    });
  });
}
