import type { MediaQueries, MediaRecord, MediaRecordStore } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const SERVER = 'media.example.org';
const ALICE = '@alice:media.example.org';
const BOB = '@bob:media.example.org';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

let counter = 0;

/** A complete local record of `userId`, `size` bytes, created at `createdAt`. */
function uploaded(userId: string | null, size: number, createdAt: number, serverName: string = SERVER): MediaRecord {
  counter += 1;
  return {
    serverName,
    mediaId: `Usage${String(counter).padStart(8, '0')}`,
    blobId: `UsageBlob${String(counter).padStart(8, '0')}`,
    contentType: 'application/octet-stream',
    uploadName: null,
    size,
    sha256: SHA,
    userId,
    createdAt,
    uploadedAt: createdAt,
    expiresAt: null,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
  };
}

/** A `/create` record of `userId` not uploaded yet, expiring at `expiresAt`. */
function pending(userId: string, createdAt: number, expiresAt: number | null): MediaRecord {
  return { ...uploaded(userId, 0, createdAt), blobId: null, size: null, sha256: null, contentType: null, uploadedAt: null, expiresAt };
}

/**
 * Cases for the quota query {@link MediaQueries.getUserUsage} over records
 * written through the {@link MediaRecordStore}, run by `describeMediaQueries`
 * and `describeMetadataStore`.
 */
export function describeUsageCases(store: () => MediaRecordStore & MediaQueries): void {
  describe('getUserUsage', () => {
    it('answers zero for a user without media', async () => {
      expect(await store().getUserUsage(ALICE, 0)).toEqual({ bytes: 0, files: 0 });
    });

    it("sums sizes and counts one user's completed media only, as numbers", async () => {
      for (const record of [
        uploaded(ALICE, 1000, 1_000),
        uploaded(ALICE, 2_500_000_000, 2_000), // over 2^31: no 32-bit overflow
        uploaded(ALICE, 0, 3_000),
        uploaded(BOB, 7, 1_000),
        uploaded(null, 99, 1_000, 'remote.example'), // remote media has no user
        pending(ALICE, 1_000, 10_000_000),
      ]) {
        expect(await store().insertMedia(record)).toBe(true);
      }
      const usage = await store().getUserUsage(ALICE, 0);
      expect(usage).toEqual({ bytes: 2_500_001_000, files: 3 });
      expect(typeof usage.bytes).toBe('number');
      expect(typeof usage.files).toBe('number');
      expect(await store().getUserUsage(BOB, 0)).toEqual({ bytes: 7, files: 1 });
    });

    it('counts media created at or after sinceMs', async () => {
      await store().insertMedia(uploaded(ALICE, 10, 1_000));
      await store().insertMedia(uploaded(ALICE, 20, 2_000));
      await store().insertMedia(uploaded(ALICE, 40, 3_000));
      expect(await store().getUserUsage(ALICE, 2_000)).toEqual({ bytes: 60, files: 2 });
      expect(await store().getUserUsage(ALICE, 2_001)).toEqual({ bytes: 40, files: 1 });
      expect(await store().getUserUsage(ALICE, 3_001)).toEqual({ bytes: 0, files: 0 });
    });

    it('counts a completed async upload and forgets deleted media', async () => {
      const created = pending(ALICE, 1_000, 10_000);
      await store().insertMedia(created);
      expect(await store().getUserUsage(ALICE, 0)).toEqual({ bytes: 0, files: 0 });
      await store().completeMedia(SERVER, created.mediaId, {
        blobId: 'UsageCompletedBlob0001',
        contentType: 'text/plain',
        uploadName: null,
        size: 123,
        sha256: SHA,
        uploadedAt: 2_000,
      });
      expect(await store().getUserUsage(ALICE, 0)).toEqual({ bytes: 123, files: 1 });
      await store().deleteMedia(SERVER, created.mediaId);
      expect(await store().getUserUsage(ALICE, 0)).toEqual({ bytes: 0, files: 0 });
    });

    it('matches user IDs exactly', async () => {
      await store().insertMedia(uploaded(ALICE, 5, 1_000));
      expect(await store().getUserUsage('@ALICE:media.example.org', 0)).toEqual({ bytes: 0, files: 0 });
      expect(await store().getUserUsage('@alice:media.example.or%', 0)).toEqual({ bytes: 0, files: 0 });
    });
  });
}

/**
 * Cases for the cap on pending async uploads ({@link MediaRecordStore.countPendingMedia}),
 * run by `describeMediaRecordStore` and `describeMetadataStore`.
 */
export function describePendingCountCases(store: () => MediaRecordStore): void {
  describe('countPendingMedia', () => {
    it('counts pending, unexpired records of one user', async () => {
      await store().insertMedia(pending(ALICE, 1_000, 5_000));
      await store().insertMedia(pending(ALICE, 1_000, 6_000));
      await store().insertMedia(pending(ALICE, 1_000, null)); // never expires
      await store().insertMedia(pending(BOB, 1_000, 6_000));
      await store().insertMedia(uploaded(ALICE, 10, 1_000));
      expect(await store().countPendingMedia(ALICE, 4_999)).toBe(3);
      // Expired at exactly expiresAt.
      expect(await store().countPendingMedia(ALICE, 5_000)).toBe(2);
      expect(await store().countPendingMedia(ALICE, 6_000)).toBe(1);
      expect(await store().countPendingMedia(BOB, 0)).toBe(1);
      expect(await store().countPendingMedia('@carol:media.example.org', 0)).toBe(0);
    });

    it('stops counting a record once it is completed', async () => {
      const created = pending(ALICE, 1_000, 5_000);
      await store().insertMedia(created);
      expect(await store().countPendingMedia(ALICE, 2_000)).toBe(1);
      await store().completeMedia(SERVER, created.mediaId, {
        blobId: 'UsageCompletedBlob0002',
        contentType: 'text/plain',
        uploadName: null,
        size: 1,
        sha256: SHA,
        uploadedAt: 2_000,
      });
      expect(await store().countPendingMedia(ALICE, 2_000)).toBe(0);
    });
  });
}
