import type { MediaRecordStore, StoredThumbnail, ThumbnailIndex } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const SERVER = 'media.example.org';

function thumbnail(overrides: Partial<StoredThumbnail> = {}): StoredThumbnail {
  return {
    serverName: SERVER,
    mediaId: 'ThumbnailMedia0001',
    width: 96,
    height: 96,
    method: 'crop',
    animated: false,
    contentType: 'image/jpeg',
    blobId: 'BlobIdThumbnail000000001',
    size: 2_345,
    createdAt: 1_700_000_300_123,
    ...overrides,
  };
}

/**
 * Cases for the thumbnail rows of a {@link ThumbnailIndex}
 * (`listThumbnails`, `insertThumbnail`, `deleteThumbnails`), run by
 * `describeThumbnailIndex` and `describeMetadataStore`. When the same store
 * is also the {@link MediaRecordStore}, its `isBlobReferenced` must see
 * thumbnail blobs too (skipped otherwise).
 */
export function describeThumbnailCases(store: () => ThumbnailIndex): void {
  describe('thumbnails', () => {
    it('answers [] for a media item without thumbnails', async () => {
      expect(await store().listThumbnails(SERVER, 'NoThumbnails')).toEqual([]);
    });

    it('round-trips a thumbnail exactly (numbers, booleans, strings)', async () => {
      const row = thumbnail({ animated: true, contentType: 'image/webp', method: 'scale', width: 800, height: 450 });
      expect(await store().insertThumbnail(row)).toBe(true);
      const [read] = await store().listThumbnails(SERVER, row.mediaId);
      expect(read).toStrictEqual(row);
      expect(typeof read?.size).toBe('number');
      expect(typeof read?.animated).toBe('boolean');
    });

    it('refuses a second insert of the same key and keeps the original', async () => {
      expect(await store().insertThumbnail(thumbnail())).toBe(true);
      expect(await store().insertThumbnail(thumbnail({ blobId: 'BlobIdThumbnail000000002', size: 9 }))).toBe(false);
      expect(await store().listThumbnails(SERVER, 'ThumbnailMedia0001')).toStrictEqual([thumbnail()]);
    });

    it('keys by server, media, width, height, method, animated and content type', async () => {
      const variants: Partial<StoredThumbnail>[] = [
        {},
        { width: 97 },
        { height: 97 },
        { method: 'scale' },
        { animated: true },
        { contentType: 'image/png' },
      ];
      for (const [i, variant] of variants.entries()) {
        expect(await store().insertThumbnail(thumbnail({ ...variant, blobId: `BlobIdVariant${i}` }))).toBe(true);
      }
      expect(await store().insertThumbnail(thumbnail({ serverName: 'other.example.com:8448', blobId: 'BlobIdOther' }))).toBe(true);
      expect(await store().insertThumbnail(thumbnail({ mediaId: 'thumbnailmedia0001', blobId: 'BlobIdCase' }))).toBe(true);
      const rows = await store().listThumbnails(SERVER, 'ThumbnailMedia0001');
      expect(rows.map((r) => r.blobId).sort()).toEqual(variants.map((_, i) => `BlobIdVariant${i}`).sort());
      expect((await store().listThumbnails('other.example.com:8448', 'ThumbnailMedia0001')).map((r) => r.blobId)).toEqual(['BlobIdOther']);
    });

    it('deleteThumbnails removes one media item\'s rows and gives their blob IDs', async () => {
      const mine = [thumbnail(), thumbnail({ width: 32, height: 32, blobId: 'BlobIdThumbnail000000002' })];
      const other = thumbnail({ mediaId: 'ThumbnailMedia0002', blobId: 'BlobIdThumbnail000000003' });
      for (const row of [...mine, other]) expect(await store().insertThumbnail(row)).toBe(true);
      expect((await store().deleteThumbnails(SERVER, 'ThumbnailMedia0001')).sort()).toEqual(mine.map((r) => r.blobId).sort());
      expect(await store().listThumbnails(SERVER, 'ThumbnailMedia0001')).toEqual([]);
      expect(await store().deleteThumbnails(SERVER, 'ThumbnailMedia0001')).toEqual([]);
      expect(await store().listThumbnails(SERVER, 'ThumbnailMedia0002')).toStrictEqual([other]);
      // The key is free again.
      expect(await store().insertThumbnail(thumbnail())).toBe(true);
    });

    it('isBlobReferenced sees thumbnail blobs until their rows are deleted', async (context) => {
      const subject = store() as ThumbnailIndex & Partial<Pick<MediaRecordStore, 'isBlobReferenced'>>;
      const isBlobReferenced = subject.isBlobReferenced?.bind(subject);
      if (isBlobReferenced === undefined) {
        context.skip('the store is not also a MediaRecordStore');
        return;
      }
      const row = thumbnail({ blobId: 'BlobIdOnlyThumbnail' });
      expect(await isBlobReferenced(row.blobId)).toBe(false);
      await subject.insertThumbnail(row);
      expect(await isBlobReferenced(row.blobId)).toBe(true);
      await subject.deleteThumbnails(row.serverName, row.mediaId);
      expect(await isBlobReferenced(row.blobId)).toBe(false);
    });

    it('lets exactly one of several concurrent inserts of the same key win', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store().insertThumbnail(thumbnail({ blobId: `BlobIdRace${i}` }))),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const rows = await store().listThumbnails(SERVER, 'ThumbnailMedia0001');
      expect(rows).toHaveLength(1);
      expect(results[Number(rows[0]!.blobId.slice('BlobIdRace'.length))]).toBe(true);
    });
  });
}
