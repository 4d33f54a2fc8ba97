import type { MediaQueries, MediaRecord, MediaRecordStore } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const LOCAL = 'local.example.org';
const REMOTE = 'remote.example.com';
const OTHER = 'other.example.net';

function record(mediaId: string, overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: LOCAL,
    mediaId,
    blobId: `blob_${mediaId}`,
    contentType: 'image/png',
    uploadName: null,
    size: 100,
    sha256: 'cc'.repeat(32),
    userId: '@alice:local.example.org',
    createdAt: 10_000,
    uploadedAt: 10_000,
    expiresAt: null,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
    ...overrides,
  };
}

/** Local and remote media; `t1`/`t2` share a creation time with a remote item so the tie order shows. */
function fixture(): MediaRecord[] {
  return [
    record('img1', { createdAt: 1_000, size: 10 }),
    record('vid1', { createdAt: 2_000, size: 5_000, contentType: 'Video/MP4' }),
    record('txt1', { createdAt: 3_000, size: 50, contentType: 'text/html; charset=utf-8', userId: '@bob:local.example.org', quarantined: true }),
    record('t1', { createdAt: 4_000, size: 20 }),
    record('t2', { createdAt: 4_000, size: 30, protected: true }),
    record('r1', { serverName: REMOTE, userId: null, createdAt: 4_000, size: 700 }),
    record('r2', { serverName: REMOTE, userId: null, createdAt: 90_000, size: 800, contentType: 'image/jpeg' }),
    record('o1', { serverName: OTHER, userId: null, createdAt: 95_000, size: 800, contentType: 'image/gif' }),
    record('pend', { createdAt: 5_000, blobId: null, size: null, sha256: null, contentType: null, uploadedAt: null, expiresAt: 99_000 }),
  ];
}

const ids = (records: readonly MediaRecord[]): string[] => records.map((r) => r.mediaId);

async function seed<S extends MediaRecordStore>(store: () => S): Promise<S> {
  const subject = store();
  for (const r of fixture()) expect(await subject.insertMedia(r)).toBe(true);
  return subject;
}

/**
 * Cases of the console queries (`browseMedia`, `mediaUsageByOrigin`,
 * `mediaCreationHistogram`), run by `describeMediaQueries` and
 * `describeMetadataStore`.
 */
export function describeMediaBrowseCases(store: () => MediaRecordStore & MediaQueries): void {
  describe('console queries', () => {
    it('browses local and remote media newest first, ties by server name then media ID descending', async () => {
      const subject = await seed(store);
      const all = await subject.browseMedia({}, { limit: 100 });
      expect(ids(all)).toEqual(['o1', 'r2', 'pend', 'r1', 't2', 't1', 'txt1', 'vid1', 'img1']);
      expect(all.find((r) => r.mediaId === 't2')).toEqual(fixture()[4]);
    });

    it('pages by cursor without gaps or repeats', async () => {
      const subject = await seed(store);
      const seen: string[] = [];
      let after: MediaRecord | undefined;
      for (;;) {
        const page = await subject.browseMedia({}, { limit: 2, ...(after === undefined ? {} : { after }) });
        if (page.length === 0) break;
        seen.push(...ids(page));
        after = page.at(-1);
      }
      expect(seen).toEqual(['o1', 'r2', 'pend', 'r1', 't2', 't1', 'txt1', 'vid1', 'img1']);
    });

    it('filters by origin, user, type prefix (case-insensitive), size, time and flags', async () => {
      const subject = await seed(store);
      const browse = async (filter: Parameters<MediaQueries['browseMedia']>[0]): Promise<string[]> => ids(await subject.browseMedia(filter, { limit: 100 }));
      expect(await browse({ serverName: REMOTE })).toEqual(['r2', 'r1']);
      expect(await browse({ userId: '@bob:local.example.org' })).toEqual(['txt1']);
      expect(await browse({ contentTypePrefix: 'video/' })).toEqual(['vid1']);
      expect(await browse({ contentTypePrefix: 'TEXT/HTML' })).toEqual(['txt1']);
      expect(await browse({ contentTypePrefix: 'image/%' })).toEqual([]);
      expect(await browse({ minSize: 700 })).toEqual(['o1', 'r2', 'r1', 'vid1']);
      expect(await browse({ maxSize: 20 })).toEqual(['t1', 'img1']);
      expect(await browse({ createdFrom: 3_000, createdUntil: 5_000 })).toEqual(['r1', 't2', 't1', 'txt1']);
      expect(await browse({ quarantined: true })).toEqual(['txt1']);
      expect(await browse({ protected: true })).toEqual(['t2']);
      expect(await browse({ protected: false, serverName: LOCAL, maxSize: 20 })).toEqual(['t1', 'img1']);
    });

    it('refuses a malformed filter or page', async () => {
      const subject = await seed(store);
      await expect(subject.browseMedia({}, { limit: 0 })).rejects.toThrow(TypeError);
      await expect(subject.browseMedia({ minSize: -1 }, { limit: 1 })).rejects.toThrow(TypeError);
      await expect(subject.browseMedia({ serverName: 'nul\0.example' }, { limit: 1 })).rejects.toThrow(TypeError);
    });

    it('sums stored bytes per origin, most first', async () => {
      const subject = await seed(store);
      expect(await subject.mediaUsageByOrigin(10)).toEqual([
        { serverName: REMOTE, mediaCount: 2, mediaLength: 1_500 },
        { serverName: OTHER, mediaCount: 1, mediaLength: 800 },
        { serverName: LOCAL, mediaCount: 6, mediaLength: 5_110 - 0 },
      ].sort((a, b) => b.mediaLength - a.mediaLength));
      expect(await subject.mediaUsageByOrigin(1)).toEqual([{ serverName: LOCAL, mediaCount: 6, mediaLength: 5_110 }]);
      await expect(subject.mediaUsageByOrigin(0)).rejects.toThrow(TypeError);
    });

    it('counts media per creation interval, local and remote apart', async () => {
      const subject = await seed(store);
      expect(await subject.mediaCreationHistogram({ intervalMs: 2_000, createdFrom: 0, createdUntil: 100_000, serverName: LOCAL })).toEqual([
        { start: 0, mediaCount: 1, mediaLength: 10 },
        { start: 2_000, mediaCount: 2, mediaLength: 5_050 },
        { start: 4_000, mediaCount: 3, mediaLength: 50 },
      ]);
      expect(await subject.mediaCreationHistogram({ intervalMs: 10_000, createdFrom: 0, createdUntil: 100_000, notServerName: LOCAL })).toEqual([
        { start: 0, mediaCount: 1, mediaLength: 700 },
        { start: 90_000, mediaCount: 2, mediaLength: 1_600 },
      ]);
      expect(await subject.mediaCreationHistogram({ intervalMs: 1_000, createdFrom: 4_000, createdUntil: 5_000 })).toEqual([
        { start: 4_000, mediaCount: 3, mediaLength: 750 },
      ]);
      await expect(subject.mediaCreationHistogram({ intervalMs: 0, createdFrom: 0, createdUntil: 1 })).rejects.toThrow(TypeError);
    });
  });
}
