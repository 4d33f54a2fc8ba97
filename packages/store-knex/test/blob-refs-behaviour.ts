import { KnexMetadataStore } from '@hsmedia/store-knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completeRecord, completion, pendingRecord } from './fixtures.js';
import type { KnexTestDatabase } from './knex-store-behaviour.js';
import { tableNamesFor } from '../src/internal/table-names.js';
import { blobRefsMigration } from '../src/migrations/0012_blob_refs.js';

const thumbnail = (blobId: string, width = 32) => ({
  serverName: 'example.org',
  mediaId: 'withThumbs',
  width,
  height: 32,
  method: 'scale' as const,
  animated: false,
  contentType: 'image/png',
  blobId,
  size: 100,
  createdAt: 1_700_000_000_000,
});

const NOW = 1_700_000_000_000;
const fresh = { pinsStaleBefore: NOW - 1000, deletionStaleBefore: NOW - 1000 };

/** The `blob_refs` ledger (migration 0012): counted by triggers, and its conditional deletion protocol. */
export function describeBlobReferenceLedger(label: string, openDatabase: () => Promise<KnexTestDatabase>): void {
  describe(`${label}: blob reference ledger`, () => {
    let db: KnexTestDatabase;
    let store: KnexMetadataStore;
    beforeEach(async () => {
      db = await openDatabase();
      store = new KnexMetadataStore({ knex: db.knex });
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
      await db.dispose();
    });

    it('counts every record and thumbnail row that uses a blob, whatever inserts or deletes it', async () => {
      await store.insertMedia(completeRecord({ mediaId: 'one', blobId: 'shared_blob', size: 1000 }));
      await store.insertMedia(completeRecord({ mediaId: 'two', blobId: 'shared_blob', size: 1000 }));
      await store.insertMedia(pendingRecord({ mediaId: 'pending' }));
      await store.completeMedia('example.org', 'pending', completion({ blobId: 'shared_blob', size: 1000 }));
      expect(await store.blobStorageStats()).toEqual({ blobs: 1, storedBytes: 1000, referencedBytes: 3000 });
      await store.insertThumbnail(thumbnail('thumb_blob'));
      await store.insertThumbnail(thumbnail('thumb_blob', 64));
      expect(await store.blobStorageStats()).toEqual({ blobs: 2, storedBytes: 1100, referencedBytes: 3200 });
      await store.deleteMedia('remote.example:8448', 'one');
      await store.deleteMedia('example.org', 'pending');
      expect(await store.deleteThumbnails('example.org', 'withThumbs')).toHaveLength(2);
      expect(await store.blobStorageStats()).toEqual({ blobs: 1, storedBytes: 1000, referencedBytes: 1000 });
      // Still referenced by 'two': no deletion may begin.
      expect(await store.beginBlobDeletion('shared_blob', NOW, fresh)).toBe(false);
      await store.deleteMedia('remote.example:8448', 'two');
      expect(await store.beginBlobDeletion('shared_blob', NOW, fresh)).toBe(true);
      expect(await store.beginBlobDeletion('shared_blob', NOW, fresh)).toBe(false); // one deleter at a time
      await store.finishBlobDeletion('shared_blob', NOW, true, fresh);
      expect(await store.knownBlobs(['shared_blob', 'thumb_blob'])).toEqual(new Set(['thumb_blob']));
    });

    it('a put’s pin holds the blob until a record consumes it or the put releases it', async () => {
      expect(await store.pinBlob('pinned_blob', 10, NOW, fresh.deletionStaleBefore)).toEqual({ deletionInFlight: false });
      expect(await store.beginBlobDeletion('pinned_blob', NOW, fresh)).toBe(false);
      await store.insertMedia(completeRecord({ mediaId: 'uses', blobId: 'pinned_blob', size: 10 }));
      await store.deleteMedia('remote.example:8448', 'uses');
      // The insert consumed the pin: the last delete leaves nothing holding the blob.
      expect(await store.beginBlobDeletion('pinned_blob', NOW, fresh)).toBe(true);
      await store.finishBlobDeletion('pinned_blob', NOW, true, fresh);

      await store.pinBlob('released_blob', 10, NOW, fresh.deletionStaleBefore);
      await store.unpinBlob('released_blob');
      expect(await store.listUnreferencedBlobs(NOW, '', 10)).toEqual(['released_blob']);
      // A crashed put's pin goes stale: the sweep may take the blob then.
      await store.pinBlob('crashed_put', 10, NOW - 5000, fresh.deletionStaleBefore);
      expect(await store.listUnreferencedBlobs(fresh.pinsStaleBefore, '', 10)).toEqual(['crashed_put', 'released_blob']);
      expect(await store.listUnreferencedBlobs(fresh.pinsStaleBefore, 'crashed_put', 10)).toEqual(['released_blob']);
    });

    it('a pin during a deletion in flight learns of it and keeps the row; the deletion ends without dropping it', async () => {
      expect(await store.beginBlobDeletion('contested', NOW, fresh)).toBe(true);
      expect(await store.pinBlob('contested', 10, NOW + 1, fresh.deletionStaleBefore)).toEqual({ deletionInFlight: true });
      expect(await store.isBlobDeletionInFlight('contested', fresh.deletionStaleBefore)).toBe(true);
      await store.finishBlobDeletion('contested', NOW, true, fresh);
      expect(await store.isBlobDeletionInFlight('contested', fresh.deletionStaleBefore)).toBe(false);
      expect(await store.knownBlobs(['contested'])).toEqual(new Set(['contested']));
      expect(await store.beginBlobDeletion('contested', NOW + 2, fresh)).toBe(false);
    });

    it('a deletion mark older than the lease is a crashed deleter’s: another may take over', async () => {
      expect(await store.beginBlobDeletion('abandoned', NOW - 5000, fresh)).toBe(true);
      expect(await store.pinBlob('abandoned', 1, NOW, fresh.deletionStaleBefore)).toEqual({ deletionInFlight: false });
      await store.unpinBlob('abandoned');
      expect(await store.beginBlobDeletion('abandoned', NOW, fresh)).toBe(true);
      // The old deleter's late finish changes nothing.
      await store.finishBlobDeletion('abandoned', NOW - 5000, true, fresh);
      expect(await store.isBlobDeletionInFlight('abandoned', fresh.deletionStaleBefore)).toBe(true);
    });

    it('migration 0012 counts the blobs of rows stored before it', async () => {
      // As if the database predated 0012: undo it, store rows, migrate again.
      await blobRefsMigration.down(db.knex, tableNamesFor(''));
      await db.knex('hsmedia_migrations').where({ name: blobRefsMigration.name }).delete();
      await store.insertMedia(completeRecord({ mediaId: 'old1', blobId: 'old_blob', size: 500 }));
      await store.insertMedia(completeRecord({ mediaId: 'old2', blobId: 'old_blob', size: 500 }));
      await store.insertThumbnail(thumbnail('old_thumb'));
      await store.migrate();
      expect(await store.blobStorageStats()).toEqual({ blobs: 2, storedBytes: 600, referencedBytes: 1100 });
      await store.deleteMedia('remote.example:8448', 'old1');
      await store.deleteMedia('remote.example:8448', 'old2');
      expect(await store.beginBlobDeletion('old_blob', NOW, fresh)).toBe(true);
    });

    it('rejects blob IDs no backend can store', async () => {
      await expect(store.pinBlob('', 1, NOW, NOW)).rejects.toThrow(TypeError);
      await expect(store.beginBlobDeletion('a\0b', NOW, fresh)).rejects.toThrow(TypeError);
      expect(await store.knownBlobs(['a\0b'])).toEqual(new Set());
    });
  });
}
