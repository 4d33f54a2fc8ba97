import type { MediaQueries, MediaRecord, MediaRecordStore } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const LOCAL = 'local.example.org';
const REMOTE = 'remote.example.com';

function record(mediaId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: LOCAL,
    mediaId,
    blobId: `blob_${mediaId}`,
    contentType: 'image/png',
    uploadName: null,
    size: 10,
    sha256: 'dd'.repeat(32),
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
 * Cases for the profile-media flag (`setMediaProfile`, `MediaRecord.profile`:
 * avatars kept by bulk deletions, Synapse's `keep_profiles`), run by
 * `describeMediaRecordStore` and `describeMetadataStore`. A record without
 * the flag has no `profile` field.
 */
export function describeProfileCases(store: () => MediaRecordStore): void {
  describe('profile media flag', () => {
    it('sets and clears the flag of one record only; other records carry no profile field', async () => {
      const subject = store();
      expect(await subject.insertMedia(record('p1'))).toBe(true);
      expect(await subject.insertMedia(record('p2'))).toBe(true);
      expect(await subject.setMediaProfile(LOCAL, 'p1', true)).toBe(true);
      expect(await subject.getMedia(LOCAL, 'p1')).toEqual({ ...record('p1'), profile: true });
      expect(await subject.getMedia(LOCAL, 'p2')).toEqual(record('p2'));
      expect(await subject.setMediaProfile(LOCAL, 'p1', false)).toBe(true);
      const cleared = await subject.getMedia(LOCAL, 'p1');
      expect(cleared).toEqual(record('p1'));
      expect(cleared !== null && 'profile' in cleared).toBe(false);
      expect(await subject.setMediaProfile(LOCAL, 'missing', true)).toBe(false);
      expect(await subject.setMediaProfile(REMOTE, 'p1', true)).toBe(false);
      await expect(subject.setMediaProfile(LOCAL, 'p1', 'yes' as unknown as boolean)).rejects.toThrow(TypeError);
      expect(await subject.getMedia(LOCAL, 'p1')).toEqual(record('p1'));
    });

    it('keeps the flag beside protection and quarantine, through touches, and stores it on insert', async () => {
      const subject = store();
      expect(await subject.insertMedia(record('q1', { profile: true }))).toBe(true);
      expect(await subject.setMediaProtected(LOCAL, 'q1', true)).toBe(true);
      expect(await subject.setMediaQuarantined(LOCAL, 'q1', true)).toBe(true);
      await subject.touchMedia(LOCAL, 'q1', 5_000);
      expect(await subject.getMedia(LOCAL, 'q1')).toEqual({ ...record('q1'), profile: true, protected: true, quarantined: true, lastAccessAt: 5_000 });
      expect(await subject.setMediaProtected(LOCAL, 'q1', false)).toBe(true);
      expect((await subject.getMedia(LOCAL, 'q1'))?.profile).toBe(true);
    });
  });
}

/** Cases for `MediaQuery.profile` in listings and summaries, run by `describeMediaQueries` and `describeMetadataStore`. */
export function describeProfileQueryCases(store: () => MediaRecordStore & MediaQueries): void {
  describe('profile media flag', () => {
    it('filters listings and summaries by the flag, with the other conditions', async () => {
      const subject = store();
      for (const id of ['r1', 'r2', 'r3']) expect(await subject.insertMedia(record(id))).toBe(true);
      expect(await subject.insertMedia(record('r4', { serverName: REMOTE, userId: null, profile: true }))).toBe(true);
      expect(await subject.setMediaProfile(LOCAL, 'r2', true)).toBe(true);
      expect(await subject.setMediaProtected(LOCAL, 'r3', true)).toBe(true);
      expect(ids(await subject.listMedia({ profile: true }, { limit: 10 }))).toEqual(['r2', 'r4']);
      expect(ids(await subject.listMedia({ profile: false }, { limit: 10 }))).toEqual(['r1', 'r3']);
      expect(ids(await subject.listMedia({ serverName: LOCAL, profile: false, protected: false, quarantined: false }, { limit: 10 }))).toEqual(['r1']);
      expect(ids(await subject.listMedia({ notServerName: LOCAL, profile: false }, { limit: 10 }))).toEqual([]);
      expect(await subject.summarizeMedia({ profile: true })).toEqual({ count: 2, totalBytes: 20 });
      await expect(subject.listMedia({ profile: 1 as unknown as boolean }, { limit: 10 })).rejects.toThrow(TypeError);
    });
  });
}
