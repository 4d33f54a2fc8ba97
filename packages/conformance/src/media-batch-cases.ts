import type { BlockedHashBatches, BlockedHashes, MediaMetadataStore, MediaRecord, MediaRecordBatches } from '@hsmedia/media-core';
import { describe, expect, it, type TestContext } from 'vitest';

const SERVER = 'media.example.org';
const REMOTE = 'remote.example.com:8448';
const hash = (digit: string): string => digit.repeat(64);

function record(mediaId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: SERVER,
    mediaId,
    blobId: `Blob${mediaId}`,
    contentType: 'image/png',
    uploadName: `${mediaId}.png`,
    size: 100,
    sha256: hash('e'),
    userId: '@alice:media.example.org',
    createdAt: 1_700_000_000_000,
    uploadedAt: 1_700_000_000_000,
    expiresAt: null,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
    ...overrides,
  };
}

const byId = (a: MediaRecord, b: MediaRecord): number => `${a.serverName}/${a.mediaId}`.localeCompare(`${b.serverName}/${b.mediaId}`);

/**
 * Cases for the optional batch capabilities a bulk import uses
 * (`MediaRecordBatches`, `BlockedHashBatches`), run by `describeMetadataStore`
 * for stores that have them (skipped otherwise). Each batch must answer
 * exactly what the single-item methods answer one by one.
 */
export function describeMediaBatchCases(
  store: (context: TestContext) => MediaMetadataStore & MediaRecordBatches,
  hashes: (context: TestContext) => BlockedHashes & BlockedHashBatches,
): void {
  describe('media record batches (optional MediaRecordBatches capability)', () => {
    it('inserts a batch: per record true, or false for a key that exists or came earlier in the batch, which keeps its row', async (context) => {
      const subject = store(context);
      const existing = record('Existing0001', { uploadName: 'kept.png' });
      expect(await subject.insertMedia(existing)).toBe(true);
      const batch = [
        record('Batch0001', { profile: true, protected: true, scanState: 'pending' }),
        record('Existing0001', { uploadName: 'ignored.png' }),
        record('Batch0002', { serverName: REMOTE, userId: null, quarantined: true }),
        record('Batch0001', { uploadName: 'second.png' }),
        record('Pending0001', { blobId: null, contentType: null, size: null, sha256: null, uploadedAt: null, expiresAt: 1_700_086_400_000 }),
      ];
      expect(await subject.insertMediaBatch(batch)).toEqual([true, false, true, false, true]);
      expect(await subject.getMedia(SERVER, 'Existing0001')).toEqual(existing);
      expect(await subject.getMedia(SERVER, 'Batch0001')).toEqual(batch[0]);
      expect(await subject.getMedia(REMOTE, 'Batch0002')).toEqual(batch[2]);
      expect(await subject.getMedia(SERVER, 'Pending0001')).toEqual(batch[4]);
      expect(await subject.isBlobReferenced('BlobBatch0001')).toBe(true);
      expect(await subject.insertMediaBatch([])).toEqual([]);
    });

    it('inserts a batch larger than one statement holds, and a second run of it inserts nothing', async (context) => {
      const subject = store(context);
      const many = Array.from({ length: 1000 }, (_, index) => record(`Many${String(index).padStart(5, '0')}`, { size: index }));
      expect((await subject.insertMediaBatch(many)).every(Boolean)).toBe(true);
      expect((await subject.insertMediaBatch(many)).some(Boolean)).toBe(false);
      expect(await subject.summarizeMedia({})).toEqual({ count: 1000, totalBytes: (999 * 1000) / 2 });
    });

    it('lets concurrent batches with the same keys insert each key exactly once', async (context) => {
      const subject = store(context);
      const keys = Array.from({ length: 20 }, (_, index) => `Race${index}`);
      const results = await Promise.all(Array.from({ length: 4 }, () => subject.insertMediaBatch(keys.map((id) => record(id)))));
      for (let index = 0; index < keys.length; index++) expect(results.filter((answer) => answer[index] === true)).toHaveLength(1);
      expect((await subject.summarizeMedia({})).count).toBe(keys.length);
    });

    it('gets the existing records of a batch of keys, each once, across origins', async (context) => {
      const subject = store(context);
      const local = record('Get0001', { profile: true });
      const remote = record('Get0001', { serverName: REMOTE, userId: null });
      const pending = record('Get0002', { blobId: null, contentType: null, size: null, sha256: null, uploadedAt: null, expiresAt: 5 });
      for (const each of [local, remote, pending]) expect(await subject.insertMedia(each)).toBe(true);
      const found = await subject.getMediaBatch([
        { serverName: SERVER, mediaId: 'Get0001' },
        { serverName: SERVER, mediaId: 'Missing' },
        { serverName: REMOTE, mediaId: 'Get0001' },
        { serverName: SERVER, mediaId: 'Get0002' },
        { serverName: SERVER, mediaId: 'Get0001' },
        { serverName: SERVER, mediaId: 'bad\0id' },
      ]);
      expect(found.sort(byId)).toEqual([local, pending, remote].sort(byId));
      expect(await subject.getMediaBatch([])).toEqual([]);
    });

    it('refuses a batch of more than 1000 keys or records with a TypeError, writing nothing', async (context) => {
      const subject = store(context);
      const many = Array.from({ length: 1001 }, (_, index) => record(`Over${index}`));
      await expect(subject.insertMediaBatch(many)).rejects.toThrow(TypeError);
      await expect(subject.getMediaBatch(many)).rejects.toThrow(TypeError);
      expect((await subject.summarizeMedia({})).count).toBe(0);
    });
  });

  describe('blocked hash batches (optional BlockedHashBatches capability)', () => {
    it('answers which hashes of a batch are blocked; malformed ones never are', async (context) => {
      const subject = hashes(context);
      for (const digit of ['1', '3']) expect(await subject.blockHash({ sha256: hash(digit), reason: null, blockedBy: null, blockedAt: 1 })).toBe(true);
      const answer = await subject.blockedHashesAmong([hash('1'), hash('2'), hash('3'), hash('1'), hash('A'), 'not a hash']);
      expect([...answer].sort()).toEqual([hash('1'), hash('3')]);
      expect(await subject.blockedHashesAmong([])).toEqual(new Set());
      await expect(subject.blockedHashesAmong(Array.from({ length: 1001 }, () => hash('1')))).rejects.toThrow(TypeError);
    });
  });
}
