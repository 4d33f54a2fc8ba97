import { createHash } from 'node:crypto';
import { isMatrixError, type MatrixError } from '@hsmedia/errors';
import { describe, expect, it } from 'vitest';
import { RemoteMediaError } from './errors.js';
import { MediaService, type MediaServiceOptions } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type {
  BlobReadOptions,
  MediaQueries,
  MediaRecord,
  RemoteMedia,
  RemoteMediaRequest,
  RemoteMediaSource,
} from './ports/index.js';

// media-core sits below the real stores in the dependency graph, so these
// tests use the shipped in-memory stores (conformance-tested like the real
// ones), with only the counters and failure switches the tests need added;
// media-routes runs the same paths on the real FsBlobStore and SQLite store.

/** The in-memory blob store, counting `open` calls (to prove hot media are served from memory). */
class CountingBlobStore extends MemoryBlobStore {
  opens = 0;
  override async open(blobId: string, options?: BlobReadOptions): Promise<ReadableStream<Uint8Array> | null> {
    this.opens++;
    return super.open(blobId, options);
  }
}

/** The in-memory metadata store, counting reads and touches, and failing or refusing inserts on demand. */
class InstrumentedMetadataStore extends MemoryMetadataStore {
  reads = 0;
  touches: [string, string, number][] = [];
  /** When set, `insertMedia` rejects with it (a database that cannot write). */
  failInsert: Error | null = null;
  /** How many of the next inserts answer false, as on an ID collision. */
  refuseInserts = 0;
  override async getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    this.reads++;
    return super.getMedia(serverName, mediaId);
  }
  override async insertMedia(record: MediaRecord): Promise<boolean> {
    if (this.failInsert) throw this.failInsert;
    if (this.refuseInserts > 0) {
      this.refuseInserts--;
      return false;
    }
    return super.insertMedia(record);
  }
  override async touchMedia(serverName: string, mediaId: string, at: number): Promise<void> {
    this.touches.push([serverName, mediaId, at]);
    return super.touchMedia(serverName, mediaId, at);
  }
}

/** How many media records (complete or pending, of any origin) the store holds. */
async function recordCount(metadata: MediaQueries): Promise<number> {
  return (await metadata.summarizeMedia({})).count;
}

const alice = { userId: '@alice:example.org', isGuest: false };
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
async function* iter(...chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

function setup(overrides: Partial<MediaServiceOptions> = {}) {
  const blobs = new CountingBlobStore();
  const metadata = new InstrumentedMetadataStore();
  let now = 1_700_000_000_000;
  const clock = { now: () => now };
  const media = new MediaService({
    serverName: 'example.org',
    blobs,
    metadata,
    maxUploadBytes: 100,
    clock,
    touchIntervalMs: 0,
    ...overrides,
  });
  return { blobs, metadata, media, advance: (ms: number) => (now += ms), now: () => now };
}

async function matrixError(promise: Promise<unknown>): Promise<MatrixError> {
  try {
    await promise;
  } catch (err) {
    if (isMatrixError(err)) return err;
    throw err;
  }
  throw new Error('expected a MatrixError');
}

async function readAll(stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of stream as AsyncIterable<Uint8Array>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

describe('MediaService.upload', () => {
  it('stores the blob and a complete record, and answers an mxc URI', async () => {
    const { media, metadata, blobs } = setup();
    const result = await media.upload({ body: iter(enc('hello')), contentType: 'img/png', filename: 'a b.png', requester: alice });
    expect(result.contentUri).toBe(`mxc://example.org/${result.mediaId}`);
    expect(result.mediaId).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const record = (await metadata.getMedia('example.org', result.mediaId))!;
    expect(record).toMatchObject({
      contentType: 'img/png',
      uploadName: 'a b.png',
      size: 5,
      userId: '@alice:example.org',
      authenticated: false,
      quarantined: false,
      sha256: createHash('sha256').update('hello').digest('hex'),
    });
    expect(record.uploadedAt).not.toBeNull();
    expect(blobs.blobCount).toBe(1);
  });

  it('defaults the type to application/octet-stream and treats an empty filename as none', async () => {
    const { media, metadata } = setup();
    const { mediaId } = await media.upload({ body: iter(enc('x')), filename: '', requester: alice });
    expect(await metadata.getMedia('example.org', mediaId)).toMatchObject({
      contentType: 'application/octet-stream',
      uploadName: null,
    });
  });

  it('flags uploads as authenticated while legacy endpoints are frozen', async () => {
    const { media, metadata } = setup({ freezeLegacy: true });
    const { mediaId } = await media.upload({ body: iter(enc('x')), requester: alice });
    expect((await metadata.getMedia('example.org', mediaId))!.authenticated).toBe(true);
  });

  it('refuses at once when the declared length is over the limit, without reading', async () => {
    const { media, blobs, metadata } = setup();
    const body: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]() {
        throw new Error('must not be read');
      },
    };
    const e = await matrixError(media.upload({ body, requester: alice, contentLength: 101 }));
    expect([e.httpStatus, e.errcode]).toEqual([413, 'M_TOO_LARGE']);
    expect(blobs.blobCount + (await recordCount(metadata))).toBe(0);
  });

  it('413 while streaming past the limit, nothing stored; exactly the limit is fine', async () => {
    const { media, blobs, metadata } = setup();
    const e = await matrixError(media.upload({ body: iter(new Uint8Array(60), new Uint8Array(41)), requester: alice }));
    expect([e.httpStatus, e.errcode]).toEqual([413, 'M_TOO_LARGE']);
    expect(blobs.blobCount + (await recordCount(metadata))).toBe(0);
    await media.upload({ body: iter(new Uint8Array(100)), requester: alice, contentLength: 100 });
    expect(await recordCount(metadata)).toBe(1);
  });

  it('403 M_GUEST_ACCESS_FORBIDDEN for guests', async () => {
    const { media } = setup();
    const e = await matrixError(media.upload({ body: iter(enc('x')), requester: { userId: '@g:x', isGuest: true } }));
    expect([e.httpStatus, e.errcode]).toEqual([403, 'M_GUEST_ACCESS_FORBIDDEN']);
  });

  it('400 M_INVALID_PARAM for control characters in type or filename', async () => {
    const { media } = setup();
    for (const extra of [{ contentType: 'text/plain\r\nX-Evil: 1' }, { filename: 'a\nb' }, { filename: 'n'.repeat(256) }]) {
      const e = await matrixError(media.upload({ body: iter(enc('x')), requester: alice, ...extra }));
      expect([e.httpStatus, e.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    }
  });

  it('stores nothing when aborted', async () => {
    const { media, blobs, metadata } = setup();
    const controller = new AbortController();
    async function* body(): AsyncGenerator<Uint8Array> {
      yield enc('a');
      controller.abort(new Error('client gone'));
      yield enc('b');
    }
    await expect(media.upload({ body: body(), requester: alice, signal: controller.signal })).rejects.toThrow('client gone');
    expect(blobs.blobCount + (await recordCount(metadata))).toBe(0);
  });

  it('deletes the blob when the record cannot be written', async () => {
    const { media, blobs, metadata } = setup();
    metadata.failInsert = new Error('disk full');
    await expect(media.upload({ body: iter(enc('x')), requester: alice })).rejects.toThrow('disk full');
    expect(blobs.blobCount).toBe(0);
  });

  it('retries with a fresh ID on a collision', async () => {
    const { media, metadata } = setup();
    metadata.refuseInserts = 2;
    const { mediaId } = await media.upload({ body: iter(enc('x')), requester: alice });
    expect(await metadata.getMedia('example.org', mediaId)).not.toBeNull();
  });
});

describe('MediaService.getMedia', () => {
  it('validates the server name (400) and media ID (404) before any lookup', async () => {
    const { media, metadata } = setup();
    for (const serverName of ['', 'a/b', 'x'.repeat(300), 'a b', 'a:0', '[::1', 'host:99999']) {
      const e = await matrixError(media.getMedia(serverName, 'abc'));
      expect([e.httpStatus, e.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    }
    for (const mediaId of ['', '..', 'a/b', 'a\0b', 'x'.repeat(256), 'ü']) {
      const e = await matrixError(media.getMedia('example.org', mediaId));
      expect([e.httpStatus, e.errcode]).toEqual([404, 'M_NOT_FOUND']);
    }
    expect(metadata.reads).toBe(0);
  });

  it('404 for unknown and quarantined media', async () => {
    const { media, metadata } = setup();
    expect((await matrixError(media.getMedia('example.org', 'missing'))).errcode).toBe('M_NOT_FOUND');
    const { mediaId } = await media.upload({ body: iter(enc('x')), requester: alice });
    expect((await media.getMedia('example.org', mediaId)).size).toBe(1);
    // Through the catalog: the cached record of this process is dropped with the change.
    expect(await media.catalog.setQuarantined('example.org', mediaId, true)).toBe(true);
    expect((await metadata.getMedia('example.org', mediaId))?.quarantined).toBe(true);
    expect((await matrixError(media.getMedia('example.org', mediaId))).httpStatus).toBe(404);
  });

  it('serves handles with the stored type, name, size and a sha256 ETag', async () => {
    const { media } = setup();
    const { mediaId } = await media.upload({ body: iter(enc('hello world')), contentType: 'text/plain', filename: 'h.txt', requester: alice });
    const handle = await media.getMedia('example.org', mediaId);
    expect(handle).toMatchObject({ contentType: 'text/plain', uploadName: 'h.txt', size: 11 });
    expect(handle.etag).toBe(`"${createHash('sha256').update('hello world').digest('hex')}"`);
    expect(await readAll(await handle.open())).toBe('hello world');
    expect(await readAll(await handle.open({ start: 6, end: 10 }))).toBe('world');
    expect(Buffer.from((await handle.readSmall())!).toString()).toBe('hello world');
  });

  it('answers hot media from memory: no metadata query, no blob read', async () => {
    const { media, metadata, blobs } = setup();
    const { mediaId } = await media.upload({ body: iter(enc('avatar')), requester: alice });
    const first = await media.getMedia('example.org', mediaId);
    await first.readSmall();
    const reads = metadata.reads;
    const opens = blobs.opens;
    for (let i = 0; i < 5; i++) {
      const handle = await media.getMedia('example.org', mediaId);
      expect(Buffer.from((await handle.readSmall())!).toString()).toBe('avatar');
      expect(await readAll(await handle.open({ start: 1, end: 2 }))).toBe('va');
    }
    expect(metadata.reads).toBe(reads);
    expect(blobs.opens).toBe(opens);
  });

  it('answers cachedSmall from memory only: undefined until readSmall has read the blob', async () => {
    const { media, blobs } = setup();
    const { mediaId } = await media.upload({ body: iter(enc('avatar')), requester: alice });
    const cold = await media.getMedia('example.org', mediaId);
    expect(cold.cachedSmall?.()).toBeUndefined();
    await cold.readSmall();
    const opens = blobs.opens;
    const hot = await media.getMedia('example.org', mediaId);
    expect(Buffer.from(hot.cachedSmall!()!).toString()).toBe('avatar');
    expect(blobs.opens).toBe(opens);
  });

  it('keeps large media out of the blob cache', async () => {
    const { media } = setup({ maxUploadBytes: 1000, cache: { maxBlobBytes: 10 } });
    const { mediaId } = await media.upload({ body: iter(new Uint8Array(11)), requester: alice });
    expect(await (await media.getMedia('example.org', mediaId)).readSmall()).toBeNull();
  });

  it('re-reads a cached record after recordTtlMs, and forgets deleted media at once', async () => {
    const { media, metadata, blobs, advance } = setup({ cache: { recordTtlMs: 1000 } });
    const { mediaId } = await media.upload({ body: iter(enc('x')), requester: alice });
    await media.getMedia('example.org', mediaId);
    const reads = metadata.reads;
    advance(1001);
    await media.getMedia('example.org', mediaId);
    expect(metadata.reads).toBe(reads + 1);
    expect(await media.deleteMedia('example.org', mediaId)).toBe(true);
    expect(blobs.blobCount).toBe(0);
    expect((await matrixError(media.getMedia('example.org', mediaId))).httpStatus).toBe(404);
    expect(await media.deleteMedia('example.org', mediaId)).toBe(false);
  });

  it('applies the freeze to legacy requests only', async () => {
    const { media, metadata } = setup();
    const before = await media.upload({ body: iter(enc('old')), requester: alice });
    const record = (await metadata.getMedia('example.org', before.mediaId))!;
    expect(await metadata.insertMedia({ ...record, mediaId: 'newer', authenticated: true })).toBe(true);
    await media.getMedia('example.org', before.mediaId, { legacy: true });
    const e = await matrixError(media.getMedia('example.org', 'newer', { legacy: true }));
    expect([e.httpStatus, e.errcode]).toEqual([404, 'M_NOT_FOUND']);
    await media.getMedia('example.org', 'newer');
  });

  it('keeps freezeExemptions (SSO icons) on legacy requests', async () => {
    const { metadata, blobs } = setup();
    const media = new MediaService({
      serverName: 'example.org',
      blobs,
      metadata,
      maxUploadBytes: 100,
      freezeLegacy: true,
      touchIntervalMs: 0,
      freezeExemptions: ['mxc://example.org/sso_icon'],
    });
    const stored = await blobs.put(iter(enc('icon')));
    const base = { blobId: stored.blobId, size: stored.size, sha256: stored.sha256, contentType: 'image/png', uploadName: null };
    const record = { serverName: 'example.org', userId: null, createdAt: 0, uploadedAt: 0, expiresAt: null, authenticated: true, quarantined: false, lastAccessAt: null, ...base };
    await metadata.insertMedia({ ...record, mediaId: 'sso_icon' });
    await metadata.insertMedia({ ...record, mediaId: 'other' });
    await media.getMedia('example.org', 'sso_icon', { legacy: true });
    expect((await matrixError(media.getMedia('example.org', 'other', { legacy: true }))).httpStatus).toBe(404);
    expect(() => new MediaService({ serverName: 'example.org', blobs, metadata, maxUploadBytes: 1, freezeExemptions: ['https://x'] })).toThrow(TypeError);
  });

  it('404 (logged) when the blob behind a record is gone', async () => {
    const { media, metadata, blobs } = setup();
    const { mediaId } = await media.upload({ body: iter(enc('x')), requester: alice });
    // Behind the service's back: the record stays, its blob goes.
    expect(await blobs.delete((await metadata.getMedia('example.org', mediaId))!.blobId!)).toBe(true);
    expect(blobs.blobCount).toBe(0);
    const handle = await media.getMedia('example.org', mediaId);
    expect((await matrixError(handle.readSmall())).httpStatus).toBe(404);
    expect((await matrixError(handle.open())).httpStatus).toBe(404);
  });

  it('batches access times', async () => {
    const { media, metadata } = setup({ touchIntervalMs: 60_000 });
    const { mediaId } = await media.upload({ body: iter(enc('x')), requester: alice });
    for (let i = 0; i < 10; i++) await media.getMedia('example.org', mediaId);
    expect(metadata.touches).toHaveLength(0);
    await media.close();
    expect(metadata.touches).toHaveLength(1);
    expect(metadata.touches[0]!.slice(0, 2)).toEqual(['example.org', mediaId]);
  });
});

describe('MediaService.cachedMedia (answers from memory)', () => {
  it('answers a cached record synchronously with getMedia\'s handle, counting the hit once; nothing for an uncached one', async () => {
    const lookups: string[] = [];
    const { media, metadata } = setup({ onCacheLookup: (cache, hit) => void (cache === 'record' && lookups.push(String(hit))), touchIntervalMs: 60_000 });
    const { mediaId } = await media.upload({ body: iter(enc('avatar')), requester: alice });
    const handle = await media.getMedia('example.org', mediaId);
    lookups.length = 0;
    expect(media.cachedMedia('example.org', mediaId, { requester: alice })).toBe(handle);
    expect(lookups).toEqual(['true']);
    // Not cached (or no such item): nothing done, nothing counted; getMedia answers.
    expect(media.cachedMedia('example.org', 'unknownMedia', { requester: alice })).toBeUndefined();
    expect(media.cachedMedia('bad server!', mediaId, {})).toBeUndefined();
    expect(lookups).toEqual(['true']);
    // The access time is noted as getMedia notes it.
    await media.close();
    expect(metadata.touches.map((touch) => touch[1])).toEqual([mediaId]);
  });

  it('applies the access rules: quarantine, the freeze, and a policy that answers later', async () => {
    const asked: string[] = [];
    const { media, metadata } = setup({
      freezeLegacy: true,
      accessPolicy: {
        async check(record, access) {
          asked.push(`${access.purpose}:${access.legacy}:${access.requester?.userId ?? '-'}`);
        },
      },
    });
    const { mediaId } = await media.upload({ body: iter(enc('x')), requester: alice });
    await media.getMedia('example.org', mediaId, { requester: alice });
    asked.length = 0;
    const known = media.cachedMedia('example.org', mediaId, { requester: alice });
    expect(known).toBeInstanceOf(Promise);
    expect((await known)?.size).toBe(1);
    expect(asked).toEqual(['download:false:@alice:example.org']);
    expect(() => media.cachedMedia('example.org', mediaId, { legacy: true })).toThrow(/not found/i);
    // A quarantine written behind the cache's back is seen once the record is read again (as getMedia).
    expect(await metadata.setMediaQuarantined('example.org', mediaId, true)).toBe(true);
    await media.catalog.mediaChanged('example.org', mediaId);
    expect(media.cachedMedia('example.org', mediaId, { requester: alice })).toBeUndefined();
    expect((await matrixError(media.getMedia('example.org', mediaId, { requester: alice }))).httpStatus).toBe(404);
  });
});

describe('pending (async) uploads', () => {
  async function pending(metadata: MemoryMetadataStore, mediaId: string, expiresAt: number | null): Promise<void> {
    const inserted = await metadata.insertMedia({
      serverName: 'example.org',
      mediaId,
      blobId: null,
      contentType: null,
      uploadName: null,
      size: null,
      sha256: null,
      userId: '@alice:example.org',
      createdAt: 0,
      uploadedAt: null,
      expiresAt,
      authenticated: false,
      quarantined: false,
      lastAccessAt: null,
    });
    expect(inserted).toBe(true);
  }

  it('504 M_NOT_YET_UPLOADED when the upload does not arrive in time', async () => {
    const { media, metadata, now } = setup();
    await pending(metadata, 'later', now() + 86_400_000);
    const e = await matrixError(media.getMedia('example.org', 'later', { timeoutMs: 0 }));
    expect([e.httpStatus, e.errcode]).toEqual([504, 'M_NOT_YET_UPLOADED']);
  });

  it('404 for an expired pending ID', async () => {
    const { media, metadata, now } = setup();
    await pending(metadata, 'expired', now() - 1);
    expect((await matrixError(media.getMedia('example.org', 'expired'))).httpStatus).toBe(404);
  });

  it('serves the upload once it lands while waiting', async () => {
    const blobs = new MemoryBlobStore();
    const metadata = new MemoryMetadataStore();
    const media = new MediaService({ serverName: 'example.org', blobs, metadata, maxUploadBytes: 100, pendingPollMs: 5, touchIntervalMs: 0 });
    await pending(metadata, 'soon', null);
    const waiting = media.getMedia('example.org', 'soon', { timeoutMs: 10_000 });
    const stored = await blobs.put(iter(enc('arrived')));
    await metadata.completeMedia('example.org', 'soon', { ...stored, contentType: 'text/plain', uploadName: null, uploadedAt: 1 });
    const handle = await waiting;
    expect(await readAll(await handle.open())).toBe('arrived');
  });
});

describe('remote media', () => {
  class FakeRemote implements RemoteMediaSource {
    calls: RemoteMediaRequest[] = [];
    readonly answer: (req: RemoteMediaRequest) => Promise<RemoteMedia>;
    constructor(answer: (req: RemoteMediaRequest) => Promise<RemoteMedia>) {
      this.answer = answer;
    }
    fetchMedia(req: RemoteMediaRequest): Promise<RemoteMedia> {
      this.calls.push(req);
      return this.answer(req);
    }
  }
  const body = (s: string | Uint8Array): ReadableStream<Uint8Array> =>
    new ReadableStream({
      start(c) {
        c.enqueue(typeof s === 'string' ? enc(s) : s);
        c.close();
      },
    });

  it('404 M_NOT_FOUND without a remote source, or with allowRemote false', async () => {
    const { media } = setup();
    expect((await matrixError(media.getMedia('other.org', 'abc'))).errcode).toBe('M_NOT_FOUND');
    const remote = new FakeRemote(async () => ({ contentType: 'text/plain', contentDisposition: null, contentLength: null, body: body('x') }));
    const withRemote = setup({ remote });
    expect((await matrixError(withRemote.media.getMedia('other.org', 'abc', { legacy: true, allowRemote: false }))).httpStatus).toBe(404);
    expect(remote.calls).toHaveLength(0);
  });

  it('fetches once for concurrent callers, caches the bytes and the remote filename', async () => {
    const remote = new FakeRemote(async () => ({
      contentType: 'image/png',
      contentDisposition: "inline; filename*=utf-8''%C3%BC.png",
      contentLength: 4,
      body: body('png!'),
    }));
    const { media, metadata } = setup({ remote, freezeLegacy: true });
    const handles = await Promise.all([1, 2, 3].map(() => media.getMedia('other.org', 'abc')));
    expect(remote.calls).toHaveLength(1);
    expect(remote.calls[0]).toMatchObject({ serverName: 'other.org', mediaId: 'abc', maxBytes: 100 });
    for (const h of handles) expect(await readAll(await h.open())).toBe('png!');
    expect(handles[0]).toMatchObject({ contentType: 'image/png', uploadName: 'ü.png' });
    expect(await metadata.getMedia('other.org', 'abc')).toMatchObject({ userId: null, authenticated: true });
    await media.getMedia('other.org', 'abc');
    expect(remote.calls).toHaveLength(1);
    expect((await matrixError(media.getMedia('other.org', 'abc', { legacy: true }))).httpStatus).toBe(404);
  });

  it.each([
    ['not_found', 404, 'M_NOT_FOUND'],
    ['too_large', 502, 'M_TOO_LARGE'],
    ['timeout', 504, 'M_UNKNOWN'],
    ['unreachable', 502, 'M_UNKNOWN'],
    ['bad_response', 502, 'M_UNKNOWN'],
  ] as const)('maps remote failure %s to %i %s', async (failure, status, errcode) => {
    const remote = new FakeRemote(async () => {
      throw new RemoteMediaError(failure, 'secret internal detail');
    });
    const { media, metadata } = setup({ remote });
    const e = await matrixError(media.getMedia('other.org', 'abc'));
    expect([e.httpStatus, e.errcode]).toEqual([status, errcode]);
    expect(e.message).not.toContain('secret');
    expect(await recordCount(metadata)).toBe(0);
  });

  it('502 M_TOO_LARGE and nothing cached when the body exceeds maxRemoteBytes', async () => {
    const remote = new FakeRemote(async () => ({ contentType: null, contentDisposition: null, contentLength: null, body: body(new Uint8Array(11)) }));
    const { media, metadata, blobs } = setup({ remote, maxRemoteBytes: 10 });
    const e = await matrixError(media.getMedia('other.org', 'abc'));
    expect([e.httpStatus, e.errcode]).toEqual([502, 'M_TOO_LARGE']);
    expect((await recordCount(metadata)) + blobs.blobCount).toBe(0);
  });
});

describe('MediaService options', () => {
  it('validates at construction', () => {
    const blobs = new MemoryBlobStore();
    const metadata = new MemoryMetadataStore();
    expect(() => new MediaService({ serverName: 'bad/name', blobs, metadata, maxUploadBytes: 1 })).toThrow(TypeError);
    expect(() => new MediaService({ serverName: 'ok.org', blobs, metadata, maxUploadBytes: 0 })).toThrow(TypeError);
    expect(() => new MediaService({ serverName: 'ok.org', blobs, metadata, maxUploadBytes: 1.5 })).toThrow(TypeError);
    const media = new MediaService({ serverName: 'ok.org', blobs, metadata, maxUploadBytes: 5, touchIntervalMs: 0 });
    expect(media.uploadConfig()).toEqual({ 'm.upload.size': 5 });
    expect(media.serverName).toBe('ok.org');
  });
});
