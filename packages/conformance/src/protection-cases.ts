import type { MediaQueries, MediaRecord, MediaRecordStore } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const LOCAL = 'local.example.org';
const REMOTE = 'remote.example.com';
const HASH = 'cc'.repeat(32);

function record(mediaId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: LOCAL,
    mediaId,
    blobId: `blob_${mediaId}`,
    contentType: 'image/png',
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

const ids = (records: readonly MediaRecord[]): string[] => records.map((r) => r.mediaId).sort();

/**
 * Cases for the protection flag (`setMediaProtected`, `MediaRecord.protected`:
 * Synapse's `safe_from_quarantine`), run by `describeMediaRecordStore` and
 * `describeMetadataStore`. A record that is not protected has no `protected` field.
 */
export function describeProtectionCases(store: () => MediaRecordStore): void {
  describe('protection from quarantine', () => {
    it('sets and clears the flag of one record only; unprotected records carry no protected field', async () => {
      const subject = store();
      expect(await subject.insertMedia(record('x1'))).toBe(true);
      expect(await subject.insertMedia(record('x2'))).toBe(true);
      expect(await subject.setMediaProtected(LOCAL, 'x1', true)).toBe(true);
      expect(await subject.getMedia(LOCAL, 'x1')).toEqual({ ...record('x1'), protected: true });
      expect(await subject.getMedia(LOCAL, 'x2')).toEqual(record('x2'));
      expect(await subject.setMediaProtected(LOCAL, 'x1', true)).toBe(true);
      expect(await subject.setMediaProtected(LOCAL, 'x1', false)).toBe(true);
      const cleared = await subject.getMedia(LOCAL, 'x1');
      expect(cleared).toEqual(record('x1'));
      expect(cleared !== null && 'protected' in cleared).toBe(false);
      expect(await subject.setMediaProtected(LOCAL, 'missing', true)).toBe(false);
      expect(await subject.setMediaProtected(REMOTE, 'x1', true)).toBe(false);
      expect(await subject.getMedia(REMOTE, 'x1')).toBeNull();
    });

    it('keeps the flag through quarantine, completion and touches, and stores it on insert', async () => {
      const subject = store();
      expect(await subject.insertMedia(record('y1', { protected: true }))).toBe(true);
      expect((await subject.getMedia(LOCAL, 'y1'))?.protected).toBe(true);
      expect(await subject.setMediaQuarantined(LOCAL, 'y1', true)).toBe(true);
      await subject.touchMedia(LOCAL, 'y1', 5_000);
      expect(await subject.getMedia(LOCAL, 'y1')).toEqual({ ...record('y1'), protected: true, quarantined: true, lastAccessAt: 5_000 });
      const pending = record('y2', { blobId: null, size: null, sha256: null, contentType: null, uploadedAt: null, expiresAt: 9_000 });
      expect(await subject.insertMedia(pending)).toBe(true);
      expect(await subject.setMediaProtected(LOCAL, 'y2', true)).toBe(true);
      const completion = { blobId: 'blob_y2', contentType: 'image/png', uploadName: null, size: 10, sha256: HASH, uploadedAt: 2_000 };
      expect(await subject.completeMedia(LOCAL, 'y2', completion)).toBe(true);
      expect((await subject.getMedia(LOCAL, 'y2'))?.protected).toBe(true);
    });
  });
}

/**
 * Cases for `MediaQuery.protected` in listings and summaries, run by
 * `describeMediaQueries` and `describeMetadataStore`.
 */
export function describeProtectionQueryCases(store: () => MediaRecordStore & MediaQueries): void {
  describe('protection from quarantine', () => {
    it('filters listings and summaries by protection', async () => {
      const subject = store();
      for (const id of ['z1', 'z2', 'z3']) expect(await subject.insertMedia(record(id))).toBe(true);
      expect(await subject.insertMedia(record('z4', { serverName: REMOTE, userId: null }))).toBe(true);
      expect(await subject.setMediaProtected(LOCAL, 'z2', true)).toBe(true);
      expect(await subject.setMediaProtected(REMOTE, 'z4', true)).toBe(true);
      expect(ids(await subject.listMedia({ protected: true }, { limit: 10 }))).toEqual(['z2', 'z4']);
      expect(ids(await subject.listMedia({ protected: false }, { limit: 10 }))).toEqual(['z1', 'z3']);
      expect(ids(await subject.listMedia({ sha256: HASH, protected: false, quarantined: false }, { limit: 10 }))).toEqual(['z1', 'z3']);
      expect(ids(await subject.listMedia({ userId: '@alice:local.example.org', protected: true }, { limit: 10 }))).toEqual(['z2']);
      expect(ids(await subject.listMedia({}, { limit: 10 }))).toEqual(['z1', 'z2', 'z3', 'z4']);
      expect(await subject.summarizeMedia({ protected: true })).toEqual({ count: 2, totalBytes: 20 });
    });
  });
}
