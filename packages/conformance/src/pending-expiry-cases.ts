import type { MediaCompletion, MediaRecord, MediaRecordStore } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const SERVER = 'media.example.org';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const NOW = 1_700_000_000_000;

let counter = 0;

/** A `/create` record not uploaded yet, expiring at `expiresAt`. */
function pending(expiresAt: number | null): MediaRecord {
  counter += 1;
  return {
    serverName: SERVER,
    mediaId: `Expiry${String(counter).padStart(8, '0')}`,
    blobId: null,
    contentType: null,
    uploadName: null,
    size: null,
    sha256: null,
    userId: '@alice:media.example.org',
    createdAt: NOW - 86_400_000,
    uploadedAt: null,
    expiresAt,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
  };
}

/** A completed async upload: its `expiresAt` stays set (and may be past). */
function completed(expiresAt: number | null): MediaRecord {
  const record = pending(expiresAt);
  return {
    ...record,
    blobId: `Blob${record.mediaId}`,
    contentType: 'text/plain',
    size: 5,
    sha256: SHA,
    uploadedAt: NOW - 1_000,
  };
}

const completionOf = (record: MediaRecord): MediaCompletion => ({
  blobId: `Blob${record.mediaId}`,
  contentType: 'text/plain',
  uploadName: null,
  size: 5,
  sha256: SHA,
  uploadedAt: NOW,
});

/**
 * Cases for {@link MediaRecordStore.deleteExpiredPendingMedia} (the clean-up
 * of `/create` IDs nobody uploaded to), run by `describeMediaRecordStore` and
 * `describeMetadataStore`.
 */
export function describePendingExpiryCases(store: () => MediaRecordStore): void {
  describe('deleteExpiredPendingMedia', () => {
    const insert = async (...records: MediaRecord[]): Promise<void> => {
      for (const record of records) expect(await store().insertMedia(record)).toBe(true);
    };
    const exists = async (record: MediaRecord): Promise<boolean> =>
      (await store().getMedia(record.serverName, record.mediaId)) !== null;

    it('answers 0 on an empty store', async () => {
      expect(await store().deleteExpiredPendingMedia(NOW, 100)).toBe(0);
    });

    it('deletes pending records expired at or before now, and only those', async () => {
      const expired = pending(NOW - 1);
      const expiringNow = pending(NOW);
      const unexpired = pending(NOW + 1);
      const neverExpires = pending(null);
      await insert(expired, expiringNow, unexpired, neverExpires);

      const deleted = await store().deleteExpiredPendingMedia(NOW, 100);
      expect(deleted).toBe(2);
      expect(typeof deleted).toBe('number');
      expect(await exists(expired)).toBe(false);
      expect(await exists(expiringNow)).toBe(false);
      expect(await exists(unexpired)).toBe(true);
      expect(await exists(neverExpires)).toBe(true);
      expect(await store().deleteExpiredPendingMedia(NOW, 100)).toBe(0);
    });

    it('keeps completed records whose expiresAt is past', async () => {
      const done = completed(NOW - 60_000);
      await insert(done);
      expect(await store().deleteExpiredPendingMedia(NOW, 100)).toBe(0);
      expect(await store().getMedia(done.serverName, done.mediaId)).toEqual(done);
    });

    it('keeps a record completed after it was created, even once past its expiry', async () => {
      const created = pending(NOW - 60_000);
      await insert(created);
      expect(await store().completeMedia(created.serverName, created.mediaId, completionOf(created))).toBe(true);
      expect(await store().deleteExpiredPendingMedia(NOW, 100)).toBe(0);
      expect((await store().getMedia(created.serverName, created.mediaId))?.blobId).toBe(`Blob${created.mediaId}`);
    });

    it('deletes at most limit records per call', async () => {
      const expired = Array.from({ length: 5 }, (_, i) => pending(NOW - 1000 + i));
      const kept = pending(NOW + 1000);
      await insert(...expired, kept);

      expect(await store().deleteExpiredPendingMedia(NOW, 2)).toBe(2);
      expect(await store().deleteExpiredPendingMedia(NOW, 2)).toBe(2);
      expect(await store().deleteExpiredPendingMedia(NOW, 2)).toBe(1);
      expect(await store().deleteExpiredPendingMedia(NOW, 2)).toBe(0);
      for (const record of expired) expect(await exists(record)).toBe(false);
      expect(await exists(kept)).toBe(true);
    });

    it('never deletes a record completed concurrently: each ends up completed or deleted', async () => {
      const records = Array.from({ length: 20 }, () => pending(NOW - 1));
      await insert(...records);

      // Interleave completions with small delete batches, all in flight at once.
      const completions = records.map((record) =>
        store().completeMedia(record.serverName, record.mediaId, completionOf(record)),
      );
      const deletions = Array.from({ length: 10 }, () => store().deleteExpiredPendingMedia(NOW, 3));
      const completedFlags = await Promise.all(completions);
      const deletedCounts = await Promise.all(deletions);

      let completedCount = 0;
      for (const [i, record] of records.entries()) {
        const row = await store().getMedia(record.serverName, record.mediaId);
        if (completedFlags[i]) {
          completedCount += 1;
          expect(row?.blobId, record.mediaId).toBe(`Blob${record.mediaId}`);
        } else {
          expect(row, record.mediaId).toBeNull();
        }
      }
      expect(completedCount + deletedCounts.reduce((a, b) => a + b, 0)).toBe(records.length);
    });
  });
}
