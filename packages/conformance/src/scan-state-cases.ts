import type { MediaQueries, MediaRecord, MediaRecordStore, MediaScanStates } from '@hsmedia/media-core';
import { describe, expect, it, type TestContext } from 'vitest';

const LOCAL = 'local.example.org';
const HASH = 'dd'.repeat(32);

function record(mediaId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: LOCAL,
    mediaId,
    blobId: `blob_${mediaId}`,
    contentType: 'application/octet-stream',
    uploadName: null,
    size: 10,
    sha256: HASH,
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

type ScanSubject = MediaRecordStore & MediaQueries & MediaScanStates;

/**
 * Cases for the optional `MediaScanStates` capability and
 * `MediaRecord.scanState` (the virus-scan stage): round trips on insert and
 * completion, compare-and-set writes, listing by state. A record stored
 * without a state has no `scanState` field.
 */
export function describeScanStateCases(store: (context: TestContext) => ScanSubject): void {
  describe('scan state (optional MediaScanStates capability)', () => {
    it('stores the state on insert, leaves it out when absent, and changes it', async (context) => {
      const subject = store(context);
      expect(await subject.insertMedia(record('s1', { scanState: 'pending' }))).toBe(true);
      expect(await subject.insertMedia(record('s2'))).toBe(true);
      expect(await subject.getMedia(LOCAL, 's1')).toEqual(record('s1', { scanState: 'pending' }));
      const plain = await subject.getMedia(LOCAL, 's2');
      expect(plain).toEqual(record('s2'));
      expect(plain !== null && 'scanState' in plain).toBe(false);
      expect(await subject.setMediaScanState(LOCAL, 's1', 'infected')).toBe(true);
      expect((await subject.getMedia(LOCAL, 's1'))?.scanState).toBe('infected');
      expect(await subject.setMediaScanState(LOCAL, 'missing', 'clean')).toBe(false);
      await expect(subject.setMediaScanState(LOCAL, 's1', 'bogus' as never)).rejects.toThrow(TypeError);
      expect((await subject.getMedia(LOCAL, 's1'))?.scanState).toBe('infected');
    });

    it('writes only from the given states (a verdict written meanwhile is kept)', async (context) => {
      const subject = store(context);
      expect(await subject.insertMedia(record('c1', { scanState: 'pending' }))).toBe(true);
      expect(await subject.setMediaScanState(LOCAL, 'c1', 'clean', ['pending', 'failed'])).toBe(true);
      expect(await subject.setMediaScanState(LOCAL, 'c1', 'failed', ['pending'])).toBe(false);
      expect((await subject.getMedia(LOCAL, 'c1'))?.scanState).toBe('clean');
      expect(await subject.insertMedia(record('c2'))).toBe(true);
      // A record without a state matches no `onlyFrom` list.
      expect(await subject.setMediaScanState(LOCAL, 'c2', 'clean', ['pending'])).toBe(false);
      expect((await subject.getMedia(LOCAL, 'c2'))?.scanState).toBeUndefined();
    });

    it('sets the state with a completion, and keeps it when the completion has none', async (context) => {
      const subject = store(context);
      const pending = { blobId: null, size: null, sha256: null, contentType: null, uploadedAt: null, expiresAt: 9_000 };
      expect(await subject.insertMedia(record('p1', pending))).toBe(true);
      expect(await subject.insertMedia(record('p2', pending))).toBe(true);
      const completion = { blobId: 'blob_p', contentType: 'text/plain', uploadName: null, size: 10, sha256: HASH, uploadedAt: 2_000 };
      expect(await subject.completeMedia(LOCAL, 'p1', { ...completion, scanState: 'pending' })).toBe(true);
      expect(await subject.completeMedia(LOCAL, 'p2', completion)).toBe(true);
      expect((await subject.getMedia(LOCAL, 'p1'))?.scanState).toBe('pending');
      expect((await subject.getMedia(LOCAL, 'p2'))?.scanState).toBeUndefined();
    });

    it('lists and summarizes by state', async (context) => {
      const subject = store(context);
      expect(await subject.insertMedia(record('l1', { scanState: 'failed', createdAt: 3_000 }))).toBe(true);
      expect(await subject.insertMedia(record('l2', { scanState: 'failed', createdAt: 2_000 }))).toBe(true);
      expect(await subject.insertMedia(record('l3', { scanState: 'clean' }))).toBe(true);
      expect(await subject.insertMedia(record('l4'))).toBe(true);
      const failed = await subject.listMedia({ scanState: 'failed' }, { limit: 10 });
      expect(failed.map((r) => r.mediaId)).toEqual(['l2', 'l1']);
      expect(await subject.summarizeMedia({ scanState: 'clean' })).toEqual({ count: 1, totalBytes: 10 });
      expect(await subject.listMedia({ scanState: 'pending' }, { limit: 10 })).toEqual([]);
    });
  });
}
