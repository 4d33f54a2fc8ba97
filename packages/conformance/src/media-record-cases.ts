import type { MediaCompletion, MediaRecord, MediaRecordStore } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';

const SERVER = 'media.example.org';
const OTHER_SERVER = 'other.example.com:8448';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SHA_2 = 'a591a6d40bf420404a011733cfb7b190d62c65bf0bcda32b57b277d9ad9f146e';

/** A complete local record; `overrides` change single fields. */
function completeRecord(overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: SERVER,
    mediaId: 'CompleteMedia0001',
    blobId: 'BlobIdCompleteMedia00001',
    contentType: 'image/png',
    uploadName: 'photo.png',
    size: 12_345,
    sha256: SHA,
    userId: '@alice:media.example.org',
    createdAt: 1_700_000_000_123,
    uploadedAt: 1_700_000_000_456,
    expiresAt: null,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
    ...overrides,
  };
}

/** A record created through `/create` and not uploaded yet. */
function pendingRecord(overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: SERVER,
    mediaId: 'PendingMedia0001',
    blobId: null,
    contentType: null,
    uploadName: null,
    size: null,
    sha256: null,
    userId: '@bob:media.example.org',
    createdAt: 1_700_000_100_000,
    uploadedAt: null,
    expiresAt: 1_700_086_500_000,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
    ...overrides,
  };
}

function completion(overrides: Partial<MediaCompletion> = {}): MediaCompletion {
  return {
    blobId: 'BlobIdCompletion00000001',
    contentType: 'text/plain; charset=utf-8',
    uploadName: 'notes — ünïcödé.txt',
    size: 42,
    sha256: SHA_2,
    uploadedAt: 1_700_000_200_000,
    ...overrides,
  };
}

/** Checks equality and that every field kept its JS type (no `1` for `true`, no string or bigint for a number). */
function expectSameRecord(actual: MediaRecord | null, expected: MediaRecord): void {
  expect(actual).not.toBeNull();
  expect(actual).toEqual(expected);
  for (const key of Object.keys(expected) as (keyof MediaRecord)[]) {
    const want = expected[key];
    expect(actual![key] === null ? 'null' : typeof actual![key], key).toBe(want === null ? 'null' : typeof want);
  }
}

/**
 * Cases for the single-record operations of a {@link MediaRecordStore}
 * (`insertMedia`, `getMedia`, `completeMedia`, `deleteMedia`, `touchMedia`,
 * `isBlobReferenced`) and their behaviour under concurrency, run by
 * `describeMediaRecordStore` and `describeMetadataStore`.
 */
export function describeMediaRecordCases(store: () => MediaRecordStore): void {
  describe('insertMedia / getMedia', () => {
    it('round-trips a complete record exactly', async () => {
      const record = completeRecord();
      expect(await store().insertMedia(record)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, record.mediaId), record);
    });

    it('round-trips a pending record with null fields', async () => {
      const record = pendingRecord();
      expect(await store().insertMedia(record)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, record.mediaId), record);
    });

    it('round-trips a remote record (no user, every nullable field null)', async () => {
      const record = completeRecord({
        serverName: OTHER_SERVER,
        mediaId: 'RemoteMedia',
        userId: null,
        contentType: null,
        uploadName: null,
        authenticated: false,
      });
      expect(await store().insertMedia(record)).toBe(true);
      expectSameRecord(await store().getMedia(OTHER_SERVER, 'RemoteMedia'), record);
    });

    const uploadNames = [
      'Grüße aus Köln.jpg',
      '日本語のファイル名.png',
      '🎉 party 👩‍👩‍👧.gif',
      'quote"semi;colon,comma.txt',
      "'; DROP TABLE media; --",
      'back\\slash and %41 percent_under',
      ' leading and trailing spaces ',
      'x'.repeat(255),
    ];
    for (const [i, uploadName] of uploadNames.entries()) {
      it(`keeps uploadName ${JSON.stringify(uploadName.length > 40 ? `${uploadName.slice(0, 8)}…` : uploadName)} verbatim`, async () => {
        const record = completeRecord({ mediaId: `name${i}`, uploadName });
        expect(await store().insertMedia(record)).toBe(true);
        expectSameRecord(await store().getMedia(SERVER, `name${i}`), record);
      });
    }

    const contentTypes = [
      'img/png',
      'text/plain; charset=utf-8',
      'TEXT/HTML;Charset="UTF-8"',
      'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      'image/svg+xml',
      'application/octet-stream',
    ];
    for (const [i, contentType] of contentTypes.entries()) {
      it(`keeps contentType ${JSON.stringify(contentType.length > 40 ? `${contentType.slice(0, 20)}…` : contentType)} verbatim`, async () => {
        const record = completeRecord({ mediaId: `type${i}`, contentType });
        expect(await store().insertMedia(record)).toBe(true);
        expectSameRecord(await store().getMedia(SERVER, `type${i}`), record);
      });
    }

    const sizes = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 1, 5 * 2 ** 40, Number.MAX_SAFE_INTEGER];
    for (const size of sizes) {
      it(`keeps size ${size} exactly, as a number`, async () => {
        const record = completeRecord({ mediaId: `size${size}`, size });
        expect(await store().insertMedia(record)).toBe(true);
        expectSameRecord(await store().getMedia(SERVER, `size${size}`), record);
      });
    }

    it('keeps timestamps of every magnitude exactly', async () => {
      const record = completeRecord({
        createdAt: 0,
        uploadedAt: 1,
        expiresAt: 4_102_444_800_000, // 2100-01-01
        lastAccessAt: 8_640_000_000_000_000, // the largest Date
      });
      expect(await store().insertMedia(record)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, record.mediaId), record);
    });

    for (const [authenticated, quarantined] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      it(`keeps authenticated=${authenticated} quarantined=${quarantined} as booleans`, async () => {
        const record = completeRecord({ mediaId: `flags${+authenticated}${+quarantined}`, authenticated, quarantined });
        expect(await store().insertMedia(record)).toBe(true);
        expectSameRecord(await store().getMedia(SERVER, record.mediaId), record);
      });
    }

    it('keeps the longest media ID and server names with ports or IPv6 literals', async () => {
      for (const [serverName, mediaId] of [
        [SERVER, 'M'.repeat(255)],
        ['[2001:db8::1]:8448', 'ipv6'],
        ['127.0.0.1:8008', 'ipv4'],
      ] as const) {
        const record = completeRecord({ serverName, mediaId });
        expect(await store().insertMedia(record)).toBe(true);
        expectSameRecord(await store().getMedia(serverName, mediaId), record);
      }
    });

    it('answers null for an unknown record', async () => {
      expect(await store().getMedia(SERVER, 'nothing')).toBeNull();
      expect(await store().getMedia('unknown.example', 'nothing')).toBeNull();
    });

    it('matches media IDs exactly: case-sensitive, no wildcards', async () => {
      await store().insertMedia(completeRecord({ mediaId: 'media_1', blobId: 'BlobIdLowercase000000001' }));
      expect(await store().getMedia(SERVER, 'mediaX1')).toBeNull();
      expect(await store().getMedia(SERVER, 'MEDIA_1')).toBeNull();
      expect(await store().getMedia(SERVER, 'media_')).toBeNull();
      expect(await store().getMedia(SERVER, 'media_1 ')).toBeNull();
      const upper = completeRecord({ mediaId: 'MEDIA_1', blobId: 'BlobIdUppercase000000001' });
      expect(await store().insertMedia(upper)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, 'MEDIA_1'), upper);
      expect((await store().getMedia(SERVER, 'media_1'))?.blobId).toBe('BlobIdLowercase000000001');
    });

    it('refuses a second insert of the same (serverName, mediaId) and keeps the original', async () => {
      const original = completeRecord();
      expect(await store().insertMedia(original)).toBe(true);
      const intruder = completeRecord({
        blobId: 'BlobIdIntruder0000000001',
        contentType: 'text/html',
        uploadName: 'evil.html',
        size: 1,
        sha256: SHA_2,
        userId: '@mallory:media.example.org',
        quarantined: true,
      });
      expect(await store().insertMedia(intruder)).toBe(false);
      expect(await store().insertMedia(pendingRecord({ mediaId: original.mediaId }))).toBe(false);
      expectSameRecord(await store().getMedia(SERVER, original.mediaId), original);
    });

    it('keeps the same mediaId under two server names apart', async () => {
      const local = completeRecord({ mediaId: 'shared' });
      const remote = completeRecord({
        serverName: OTHER_SERVER,
        mediaId: 'shared',
        blobId: 'BlobIdRemoteShared000001',
        userId: null,
        uploadName: 'remote.png',
      });
      expect(await store().insertMedia(local)).toBe(true);
      expect(await store().insertMedia(remote)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, 'shared'), local);
      expectSameRecord(await store().getMedia(OTHER_SERVER, 'shared'), remote);
      expect(await store().deleteMedia(SERVER, 'shared')).toBe(true);
      expect(await store().getMedia(SERVER, 'shared')).toBeNull();
      expectSameRecord(await store().getMedia(OTHER_SERVER, 'shared'), remote);
    });

    it('returns a record the caller can change without changing the store', async () => {
      const record = completeRecord();
      await store().insertMedia(record);
      const got = (await store().getMedia(SERVER, record.mediaId)) as { -readonly [K in keyof MediaRecord]: MediaRecord[K] };
      try {
        got.uploadName = 'changed.png';
      } catch {
        // A frozen record is fine too.
      }
      expectSameRecord(await store().getMedia(SERVER, record.mediaId), record);
    });
  });

  describe('completeMedia', () => {
    it('fills a pending record and answers true; every other field is unchanged', async () => {
      const pending = pendingRecord();
      await store().insertMedia(pending);
      const filled = completion();
      expect(await store().completeMedia(SERVER, pending.mediaId, filled)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, pending.mediaId), { ...pending, ...filled });
    });

    it('accepts a null uploadName and a zero size', async () => {
      const pending = pendingRecord();
      await store().insertMedia(pending);
      const filled = completion({ uploadName: null, size: 0 });
      expect(await store().completeMedia(SERVER, pending.mediaId, filled)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, pending.mediaId), { ...pending, ...filled });
    });

    it('answers false the second time and changes nothing', async () => {
      const pending = pendingRecord();
      await store().insertMedia(pending);
      const first = completion();
      expect(await store().completeMedia(SERVER, pending.mediaId, first)).toBe(true);
      const second = completion({
        blobId: 'BlobIdSecondAttempt00001',
        contentType: 'text/html',
        uploadName: 'overwrite.html',
        size: 7,
        sha256: SHA,
        uploadedAt: 1_700_000_900_000,
      });
      expect(await store().completeMedia(SERVER, pending.mediaId, second)).toBe(false);
      expectSameRecord(await store().getMedia(SERVER, pending.mediaId), { ...pending, ...first });
    });

    it('answers false for a record inserted complete and leaves it alone', async () => {
      const record = completeRecord();
      await store().insertMedia(record);
      expect(await store().completeMedia(SERVER, record.mediaId, completion())).toBe(false);
      expectSameRecord(await store().getMedia(SERVER, record.mediaId), record);
    });

    it('answers false for a missing record and creates nothing', async () => {
      expect(await store().completeMedia(SERVER, 'missing', completion())).toBe(false);
      expect(await store().getMedia(SERVER, 'missing')).toBeNull();
      expect(await store().isBlobReferenced(completion().blobId)).toBe(false);
    });

    it('fills only the (serverName, mediaId) it names', async () => {
      const here = pendingRecord({ mediaId: 'same' });
      const there = pendingRecord({ serverName: OTHER_SERVER, mediaId: 'same', userId: null });
      await store().insertMedia(here);
      await store().insertMedia(there);
      expect(await store().completeMedia(SERVER, 'same', completion())).toBe(true);
      expectSameRecord(await store().getMedia(OTHER_SERVER, 'same'), there);
    });

    it('lets exactly one of several concurrent completions win', async () => {
      const pending = pendingRecord();
      await store().insertMedia(pending);
      const attempts = Array.from({ length: 8 }, (_, i) =>
        completion({ blobId: `BlobIdConcurrentFill0000${i}`, size: 100 + i }),
      );
      const results = await Promise.all(attempts.map((c) => store().completeMedia(SERVER, pending.mediaId, c)));
      expect(results.filter((r) => r)).toHaveLength(1);
      const winner = attempts[results.indexOf(true)]!;
      expectSameRecord(await store().getMedia(SERVER, pending.mediaId), { ...pending, ...winner });
    });
  });

  describe('deleteMedia', () => {
    it('answers true, then false, and the record is gone', async () => {
      const record = completeRecord();
      await store().insertMedia(record);
      expect(await store().deleteMedia(SERVER, record.mediaId)).toBe(true);
      expect(await store().deleteMedia(SERVER, record.mediaId)).toBe(false);
      expect(await store().getMedia(SERVER, record.mediaId)).toBeNull();
    });

    it('answers false for a record that never existed', async () => {
      expect(await store().deleteMedia(SERVER, 'never')).toBe(false);
    });

    it('frees the key for a new insert', async () => {
      await store().insertMedia(completeRecord());
      await store().deleteMedia(SERVER, completeRecord().mediaId);
      const again = completeRecord({ blobId: 'BlobIdReinserted00000001' });
      expect(await store().insertMedia(again)).toBe(true);
      expectSameRecord(await store().getMedia(SERVER, again.mediaId), again);
    });
  });

  describe('touchMedia', () => {
    it('updates lastAccessAt and nothing else', async () => {
      const record = completeRecord();
      await store().insertMedia(record);
      await store().touchMedia(SERVER, record.mediaId, 1_700_000_500_000);
      expectSameRecord(await store().getMedia(SERVER, record.mediaId), { ...record, lastAccessAt: 1_700_000_500_000 });
      await store().touchMedia(SERVER, record.mediaId, 1_700_000_600_000);
      expect((await store().getMedia(SERVER, record.mediaId))?.lastAccessAt).toBe(1_700_000_600_000);
    });

    it('touches only the record it names', async () => {
      const a = completeRecord({ mediaId: 'touchA' });
      const b = completeRecord({ mediaId: 'touchB' });
      await store().insertMedia(a);
      await store().insertMedia(b);
      await store().touchMedia(SERVER, 'touchA', 1_700_000_700_000);
      expectSameRecord(await store().getMedia(SERVER, 'touchB'), b);
    });

    it('does nothing (and does not throw) for a missing record', async () => {
      await store().touchMedia(SERVER, 'missing', 1_700_000_700_000);
      expect(await store().getMedia(SERVER, 'missing')).toBeNull();
    });
  });

  describe('isBlobReferenced', () => {
    it('follows inserts, completions and deletions', async () => {
      const blobId = 'BlobIdReferenced00000001';
      expect(await store().isBlobReferenced(blobId)).toBe(false);
      await store().insertMedia(completeRecord({ mediaId: 'ref1', blobId }));
      expect(await store().isBlobReferenced(blobId)).toBe(true);
      // A second record sharing the blob (deduplicated upload) keeps it referenced after the first goes.
      await store().insertMedia(completeRecord({ serverName: OTHER_SERVER, mediaId: 'ref2', blobId, userId: null }));
      await store().deleteMedia(SERVER, 'ref1');
      expect(await store().isBlobReferenced(blobId)).toBe(true);
      await store().deleteMedia(OTHER_SERVER, 'ref2');
      expect(await store().isBlobReferenced(blobId)).toBe(false);
    });

    it('sees a blob referenced by a completion', async () => {
      await store().insertMedia(pendingRecord());
      const filled = completion();
      expect(await store().isBlobReferenced(filled.blobId)).toBe(false);
      await store().completeMedia(SERVER, pendingRecord().mediaId, filled);
      expect(await store().isBlobReferenced(filled.blobId)).toBe(true);
    });

    it('matches blob IDs exactly', async () => {
      await store().insertMedia(completeRecord({ blobId: 'Blob_Exact_Match_0000001' }));
      expect(await store().isBlobReferenced('Blob_Exact_Match_0000001')).toBe(true);
      expect(await store().isBlobReferenced('blob_exact_match_0000001')).toBe(false);
      expect(await store().isBlobReferenced('BlobXExactXMatchX0000001')).toBe(false);
      expect(await store().isBlobReferenced('Blob_Exact_Match_000000')).toBe(false);
      expect(await store().isBlobReferenced('')).toBe(false);
    });
  });

  describe('concurrency', () => {
    it('lets exactly one of several concurrent inserts of the same key win', async () => {
      const attempts = Array.from({ length: 10 }, (_, i) =>
        completeRecord({ mediaId: 'contested', blobId: `BlobIdContested00000000${i}`, size: i }),
      );
      const results = await Promise.all(attempts.map((r) => store().insertMedia(r)));
      expect(results.filter((r) => r)).toHaveLength(1);
      expectSameRecord(await store().getMedia(SERVER, 'contested'), attempts[results.indexOf(true)]!);
    });

    it('accepts concurrent inserts of different keys', async () => {
      const records = Array.from({ length: 20 }, (_, i) => completeRecord({ mediaId: `parallel${i}` }));
      expect(await Promise.all(records.map((r) => store().insertMedia(r)))).toEqual(records.map(() => true));
      for (const record of records) expectSameRecord(await store().getMedia(SERVER, record.mediaId), record);
    });
  });
}
