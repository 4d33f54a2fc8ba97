import { createHash } from 'node:crypto';
import { errors, isMatrixError, type MatrixError } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { RemoteMediaError } from './errors.js';
import { MediaAdmin } from './media-admin.js';
import { MediaService, type MediaServiceOptions } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type {
  ByteSource,
  GeneratedThumbnail,
  RemoteMedia,
  RemoteMediaSource,
  RemoteThumbnailRequest,
  ThumbnailGenerator,
  ThumbnailSpec,
} from './ports/index.js';
import { ThumbnailService, type ThumbnailRules, type ThumbnailServiceOptions } from './thumbnail-service.js';

// The thumbnail service on the in-memory stores with a fake generator: what
// it stores, when it generates, what it shares, and how it fails. The real
// sharp generator runs in @hsmedia/thumbnailer and the reference server tests.

const SERVER = 'example.org';
const alice: Requester = { userId: '@alice:example.org', isGuest: false };
const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const dec = (bytes: Uint8Array | null): string => new TextDecoder().decode(bytes ?? new Uint8Array());
async function* iter(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Makes `WxH method` text "thumbnails"; a source saying `corrupt` fails like an undecodable image. */
class FakeGenerator implements ThumbnailGenerator {
  calls = 0;
  readonly specsSeen: ThumbnailSpec[][] = [];
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;

  supports(contentType: string): boolean {
    return contentType === 'image/png' || contentType === 'image/gif';
  }

  /** Holds every generation until {@link release}. */
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  release(): void {
    this.#open?.();
  }

  async generate(source: ByteSource, contentType: string, specs: readonly ThumbnailSpec[]): Promise<GeneratedThumbnail[]> {
    this.calls++;
    this.specsSeen.push([...specs]);
    const chunks: Uint8Array[] = [];
    for await (const chunk of source) chunks.push(chunk);
    await this.#gate;
    if (dec(new Uint8Array(Buffer.concat(chunks))) === 'corrupt') throw new FakeGeneratorError();
    return specs.map((spec) => ({
      spec,
      width: spec.width,
      height: spec.height,
      contentType: 'image/png',
      animated: spec.animated && contentType === 'image/gif',
      bytes: enc(`${spec.width}x${spec.height} ${spec.method}${spec.animated && contentType === 'image/gif' ? ' animated' : ''}`),
    }));
  }
}

class FakeGeneratorError extends Error {}

const rules: ThumbnailRules = {
  parseRequest: (query) => ({
    width: Number(query.get('width')),
    height: Number(query.get('height')),
    method: query.get('method') === 'crop' ? 'crop' : 'scale',
    animated: query.get('animated') === 'true',
  }),
  // The smallest stored row of the method at least as large as asked, else the largest.
  select: (stored, request) => {
    const same = stored.filter((row) => row.method === request.method && row.animated === request.animated);
    const bigEnough = same.filter((row) => row.width >= request.width && row.height >= request.height).sort((a, b) => a.width - b.width);
    return bigEnough[0] ?? same.sort((a, b) => b.width - a.width)[0];
  },
  errorFor: (error) => (error instanceof FakeGeneratorError ? errors.cannotThumbnail() : isMatrixError(error) ? error : null),
};

const SIZES: readonly ThumbnailSpec[] = [
  { width: 32, height: 32, method: 'crop', animated: false },
  { width: 320, height: 240, method: 'scale', animated: false },
];

function setup(options: { media?: Partial<MediaServiceOptions>; thumbnails?: Partial<ThumbnailServiceOptions> } = {}) {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const media = new MediaService({ serverName: SERVER, blobs, metadata, maxUploadBytes: 1 << 20, touchIntervalMs: 0, ...options.media });
  const generator = new FakeGenerator();
  const thumbnails = new ThumbnailService({ media, generator, rules, sizes: SIZES, dynamic: false, ...options.thumbnails });
  const admin = new MediaAdmin({ media, queries: metadata });
  const upload = async (text: string, contentType = 'image/png'): Promise<string> =>
    (await media.upload({ body: iter(enc(text)), contentType, requester: alice })).mediaId;
  return { blobs, metadata, media, generator, thumbnails, admin, upload };
}

async function matrixError(promise: Promise<unknown>): Promise<MatrixError> {
  try {
    await promise;
  } catch (error) {
    if (isMatrixError(error)) return error;
    throw error;
  }
  throw new Error('expected a MatrixError');
}

const crop32: ThumbnailSpec = { width: 32, height: 32, method: 'crop', animated: false };

describe('ThumbnailService: configured sizes', () => {
  it('generates the configured sizes once in the background after an upload and serves them', async () => {
    const { thumbnails, generator, metadata, upload } = setup();
    const mediaId = await upload('png bytes');
    await thumbnails.idle();
    expect(generator.calls).toBe(1);
    expect((await metadata.listThumbnails(SERVER, mediaId)).map((row) => `${row.width}x${row.height}/${row.method}`).sort()).toEqual([
      '320x240/scale',
      '32x32/crop',
    ]);
    const handle = await thumbnails.getThumbnail(SERVER, mediaId, crop32);
    expect([handle.contentType, handle.uploadName, handle.size, handle.fromRemote]).toEqual(['image/png', 'thumbnail.png', 10, false]);
    expect(handle.contentDisposition).toBe('inline; filename=thumbnail.png');
    expect(dec(await handle.readSmall())).toBe('32x32 crop');
    expect(handle.etag).toBe(`"thumb-${handle.thumbnail.blobId}"`);
    // The same row answers again from the caches: no second generation, the same handle object.
    expect(await thumbnails.getThumbnail(SERVER, mediaId, crop32)).toBe(handle);
    expect(generator.calls).toBe(1);
  });

  it('answers a request that arrives before the queue ran from that same generation', async () => {
    const { thumbnails, generator, upload } = setup({ thumbnails: { maxBackgroundJobs: 1 } });
    generator.hold();
    const first = await upload('first');
    const second = await upload('second');
    // The second item waits behind the first in the queue; a request runs it now instead.
    const answer = thumbnails.getThumbnail(SERVER, second, crop32);
    generator.release();
    expect(dec(await (await answer).readSmall())).toBe('32x32 crop');
    await thumbnails.idle();
    expect(generator.calls).toBe(2);
    expect(dec(await (await thumbnails.getThumbnail(SERVER, first, crop32)).readSmall())).toBe('32x32 crop');
    expect(generator.calls).toBe(2);
  });

  it('generates animated variants only for types that can animate, and gives stills to animated=true otherwise', async () => {
    const { thumbnails, generator, upload } = setup();
    const png = await upload('png');
    const gif = await upload('gif', 'image/gif');
    await thumbnails.idle();
    expect(generator.specsSeen.map((specs) => specs.length).sort()).toEqual([2, 4]);
    expect(dec(await (await thumbnails.getThumbnail(SERVER, gif, { ...crop32, animated: true })).readSmall())).toBe('32x32 crop animated');
    expect(dec(await (await thumbnails.getThumbnail(SERVER, png, { ...crop32, animated: true })).readSmall())).toBe('32x32 crop');
  });

  it('makes the configured sizes when another instance has stored only some of them yet', async () => {
    const a = setup();
    a.generator.hold();
    const mediaId = await a.upload('png bytes');
    // B shares A's stores, as another instance does; A is still generating and has stored only its crop so far.
    const media = new MediaService({ serverName: SERVER, blobs: a.blobs, metadata: a.metadata, maxUploadBytes: 1 << 20, touchIntervalMs: 0 });
    const b = new ThumbnailService({ media, generator: new FakeGenerator(), rules, sizes: SIZES, dynamic: false });
    const blob = await a.blobs.put(iter(enc('32x32 crop')));
    await a.metadata.insertThumbnail({ serverName: SERVER, mediaId, width: 32, height: 32, method: 'crop', animated: false, contentType: 'image/png', blobId: blob.blobId, size: blob.size, createdAt: 1 });
    const handle = await b.getThumbnail(SERVER, mediaId, { width: 320, height: 240, method: 'scale', animated: false });
    expect(dec(await handle.readSmall())).toBe('320x240 scale');
    a.generator.release();
    await a.thumbnails.idle();
    expect((await a.metadata.listThumbnails(SERVER, mediaId)).map((row) => `${row.width}x${row.height}/${row.method}`).sort()).toEqual(['320x240/scale', '32x32/crop']);
    await b.close();
    await a.thumbnails.close();
  });

  it('is 404 when no configured size has the method', async () => {
    const { thumbnails, upload } = setup({ thumbnails: { sizes: [{ width: 32, height: 32, method: 'crop', animated: false }] } });
    const mediaId = await upload('png');
    const error = await matrixError(thumbnails.getThumbnail(SERVER, mediaId, { width: 100, height: 100, method: 'scale', animated: false }));
    expect([error.httpStatus, error.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe('ThumbnailService: dynamic sizes', () => {
  it('makes the exact size once for concurrent requests and stores it', async () => {
    const { thumbnails, generator, metadata, upload } = setup({ thumbnails: { sizes: [], dynamic: true } });
    const mediaId = await upload('png');
    const spec: ThumbnailSpec = { width: 50, height: 40, method: 'scale', animated: false };
    const answers = await Promise.all([1, 2, 3].map(() => thumbnails.getThumbnail(SERVER, mediaId, spec)));
    expect(new Set(answers.map((handle) => handle.thumbnail.blobId)).size).toBe(1);
    expect(generator.calls).toBe(1);
    expect(await metadata.listThumbnails(SERVER, mediaId)).toHaveLength(1);
    await thumbnails.getThumbnail(SERVER, mediaId, spec);
    expect(generator.calls).toBe(1);
  });
});

describe('ThumbnailService: failures', () => {
  it('refuses types the generator does not support with 400 M_UNKNOWN, without generating', async () => {
    const { thumbnails, generator, upload } = setup();
    const mediaId = await upload('<svg/>', 'image/svg+xml');
    const error = await matrixError(thumbnails.getThumbnail(SERVER, mediaId, crop32));
    expect([error.httpStatus, error.errcode]).toEqual([400, 'M_UNKNOWN']);
    expect(generator.calls).toBe(0);
  });

  it('remembers a source that cannot be decoded instead of decoding it per request', async () => {
    const { thumbnails, generator, upload } = setup();
    const mediaId = await upload('corrupt');
    await thumbnails.idle();
    expect(generator.calls).toBe(1);
    for (let i = 0; i < 3; i++) {
      const error = await matrixError(thumbnails.getThumbnail(SERVER, mediaId, crop32));
      expect([error.httpStatus, error.errcode]).toEqual([400, 'M_UNKNOWN']);
    }
    expect(generator.calls).toBe(1);
  });

  it('answers 404 for unknown media and leaves nothing behind', async () => {
    const { thumbnails, blobs } = setup();
    const error = await matrixError(thumbnails.getThumbnail(SERVER, 'unknownMedia01', crop32));
    expect(error.httpStatus).toBe(404);
    expect(blobs.blobCount).toBe(0);
  });
});

describe('ThumbnailService: one catalog with the media and admin services', () => {
  it('deleting media (service or admin) deletes its thumbnail rows and blobs in one path', async () => {
    const { thumbnails, media, admin, metadata, blobs, upload } = setup();
    const one = await upload('one');
    const two = await upload('two');
    await thumbnails.idle();
    await thumbnails.getThumbnail(SERVER, one, crop32);
    expect(blobs.blobCount).toBe(6);
    expect(await media.deleteMedia(SERVER, one)).toBe(true);
    expect(await admin.deleteMedia(SERVER, two)).toBe(true);
    expect(await metadata.listThumbnails(SERVER, one)).toEqual([]);
    expect(await metadata.listThumbnails(SERVER, two)).toEqual([]);
    expect(blobs.blobCount).toBe(0);
    expect((await matrixError(thumbnails.getThumbnail(SERVER, one, crop32))).httpStatus).toBe(404);
  });

  it('a quarantine through the admin service stops cached thumbnails at once', async () => {
    const { thumbnails, admin, upload } = setup({ media: { cache: { recordTtlMs: 3_600_000 } } });
    const mediaId = await upload('png');
    await thumbnails.getThumbnail(SERVER, mediaId, crop32);
    expect(await admin.setQuarantined(SERVER, mediaId, true)).toBe(true);
    expect((await matrixError(thumbnails.getThumbnail(SERVER, mediaId, crop32))).httpStatus).toBe(404);
    expect(await admin.setQuarantined(SERVER, mediaId, false)).toBe(true);
    expect((await thumbnails.getThumbnail(SERVER, mediaId, crop32)).size).toBe(10);
  });

  it('asks the access policy with purpose thumbnail and the requester', async () => {
    const seen: string[] = [];
    const { thumbnails, upload } = setup({
      media: {
        accessPolicy: {
          check(record, access) {
            seen.push(`${access.purpose}:${access.requester?.userId ?? '-'}`);
            if (access.requester?.userId === '@mallory:example.org') throw errors.forbidden('Not for you');
          },
        },
      },
    });
    const mediaId = await upload('png');
    await thumbnails.getThumbnail(SERVER, mediaId, crop32, { requester: alice });
    const mallory: Requester = { userId: '@mallory:example.org', isGuest: false };
    expect((await matrixError(thumbnails.getThumbnail(SERVER, mediaId, crop32, { requester: mallory }))).httpStatus).toBe(403);
    expect(seen).toEqual(['thumbnail:@alice:example.org', 'thumbnail:@mallory:example.org']);
  });
});

describe('ThumbnailService: answers from memory (cachedThumbnail)', () => {
  it('answers a spec answered before synchronously, with the same handle, counting one record hit per answer', async () => {
    const lookups: string[] = [];
    const { thumbnails, upload } = setup({ media: { onCacheLookup: (cache, hit) => lookups.push(`${cache}:${hit}`) } });
    const mediaId = await upload('png');
    await thumbnails.idle();
    // Nothing answered from these rows yet: no answer, and nothing counted.
    expect(thumbnails.cachedThumbnail(SERVER, mediaId, crop32, { requester: alice })).toBeUndefined();
    expect(lookups).toEqual([]);
    const handle = await thumbnails.getThumbnail(SERVER, mediaId, crop32, { requester: alice });
    lookups.length = 0;
    const known = thumbnails.cachedThumbnail(SERVER, mediaId, crop32, { requester: alice });
    expect(known).toBe(handle);
    expect(lookups).toEqual(['record:true']);
    // Another spec object (another query string) is chosen through getThumbnail first.
    expect(thumbnails.cachedThumbnail(SERVER, mediaId, { ...crop32 }, { requester: alice })).toBeUndefined();
    expect(thumbnails.cachedThumbnail(SERVER, 'NotStoredHere', crop32, {})).toBeUndefined();
  });

  it('applies the access rules: quarantine and the freeze refuse, an asynchronous policy is asked once', async () => {
    const asked: string[] = [];
    const { thumbnails, admin, upload } = setup({
      media: {
        freezeLegacy: true,
        cache: { recordTtlMs: 3_600_000 },
        accessPolicy: {
          async check(record, access) {
            asked.push(`${access.purpose}:${access.requester?.userId ?? '-'}`);
          },
        },
      },
    });
    const mediaId = await upload('png');
    await thumbnails.getThumbnail(SERVER, mediaId, crop32, { requester: alice });
    asked.length = 0;
    const known = thumbnails.cachedThumbnail(SERVER, mediaId, crop32, { requester: alice });
    expect(known).toBeInstanceOf(Promise);
    expect((await known)?.size).toBe(10);
    expect(asked).toEqual(['thumbnail:@alice:example.org']);
    // Stored while frozen: never on a legacy request.
    expect(() => thumbnails.cachedThumbnail(SERVER, mediaId, crop32, { legacy: true })).toThrow(/not found/i);
    expect(await admin.setQuarantined(SERVER, mediaId, true)).toBe(true);
    // The quarantine dropped the cached record: getThumbnail answers (404).
    expect(thumbnails.cachedThumbnail(SERVER, mediaId, crop32, { requester: alice })).toBeUndefined();
    expect((await matrixError(thumbnails.getThumbnail(SERVER, mediaId, crop32, { requester: alice }))).httpStatus).toBe(404);
  });

  it('forgets its answers when the thumbnails are deleted', async () => {
    const { thumbnails, media, upload } = setup();
    const mediaId = await upload('png');
    await thumbnails.getThumbnail(SERVER, mediaId, crop32);
    expect(thumbnails.cachedThumbnail(SERVER, mediaId, crop32, {})).toBeDefined();
    await media.catalog.deleteThumbnails(SERVER, mediaId);
    expect(thumbnails.cachedThumbnail(SERVER, mediaId, crop32, {})).toBeUndefined();
  });
});

/** A remote whose media and thumbnails answer from tables; counts requests. */
class ScriptedRemote implements RemoteMediaSource {
  mediaFetches = 0;
  thumbnailFetches = 0;
  readonly media = new Map<string, { type: string; bytes: Uint8Array }>();
  thumbnail: (request: RemoteThumbnailRequest) => { type: string; bytes: Uint8Array } | Error = () => new RemoteMediaError('not_found', 'none');

  async fetchMedia(request: { mediaId: string }): Promise<RemoteMedia> {
    this.mediaFetches++;
    const found = this.media.get(request.mediaId);
    if (found === undefined) throw new RemoteMediaError('not_found', 'none');
    return { contentType: found.type, contentDisposition: null, contentLength: found.bytes.byteLength, body: new Response(found.bytes).body! };
  }

  async fetchThumbnail(request: RemoteThumbnailRequest): Promise<RemoteMedia> {
    this.thumbnailFetches++;
    const answer = this.thumbnail(request);
    if (answer instanceof Error) throw answer;
    return { contentType: answer.type, contentDisposition: null, contentLength: answer.bytes.byteLength, body: new Response(answer.bytes).body! };
  }
}

describe('ThumbnailService: remote thumbnails first', () => {
  const REMOTE = 'remote.example';

  function remoteSetup() {
    const remote = new ScriptedRemote();
    return { remote, ...setup({ media: { remote }, thumbnails: { remote } }) };
  }

  it('stores the remote thumbnail as a row without a media row and answers from it afterwards', async () => {
    const { remote, thumbnails, metadata, generator } = remoteSetup();
    remote.thumbnail = () => ({ type: 'image/png', bytes: enc('remote 32') });
    const handle = await thumbnails.getThumbnail(REMOTE, 'remoteMedia01', crop32);
    expect([handle.fromRemote, handle.contentType, dec(await handle.readSmall())]).toEqual([true, 'image/png', 'remote 32']);
    expect(await metadata.getMedia(REMOTE, 'remoteMedia01')).toBeNull();
    expect(await metadata.listThumbnails(REMOTE, 'remoteMedia01')).toHaveLength(1);
    await thumbnails.getThumbnail(REMOTE, 'remoteMedia01', crop32);
    expect([remote.thumbnailFetches, remote.mediaFetches, generator.calls]).toEqual([1, 0, 0]);
  });

  it('answers a remote 404 with 404, without fetching the original', async () => {
    const { remote, thumbnails } = remoteSetup();
    expect((await matrixError(thumbnails.getThumbnail(REMOTE, 'remoteMedia02', crop32))).httpStatus).toBe(404);
    expect(remote.mediaFetches).toBe(0);
  });

  it('falls back to the original when the answer is not a thumbnail type', async () => {
    const { remote, thumbnails, generator } = remoteSetup();
    remote.thumbnail = () => ({ type: 'text/html', bytes: enc('<html>') });
    remote.media.set('remoteMedia03', { type: 'image/png', bytes: enc('original') });
    const handle = await thumbnails.getThumbnail(REMOTE, 'remoteMedia03', crop32);
    expect([handle.fromRemote, dec(await handle.readSmall())]).toEqual([false, '32x32 crop']);
    expect([remote.thumbnailFetches, remote.mediaFetches, generator.calls]).toEqual([1, 1, 1]);
  });

  it('runs the admission stage on a remote thumbnail and keeps nothing it refuses', async () => {
    const remote = new ScriptedRemote();
    remote.thumbnail = () => ({ type: 'image/png', bytes: enc('blocked') });
    const kinds: string[] = [];
    const { thumbnails, metadata, blobs } = setup({
      media: {
        remote,
        admission: {
          async admit(candidate) {
            kinds.push(candidate.kind);
            throw errors.forbidden('Refused');
          },
        },
      },
      thumbnails: { remote },
    });
    expect((await matrixError(thumbnails.getThumbnail(REMOTE, 'remoteMedia04', crop32))).httpStatus).toBe(403);
    expect(kinds).toEqual(['remote_thumbnail']);
    expect(await metadata.listThumbnails(REMOTE, 'remoteMedia04')).toEqual([]);
    expect(blobs.blobCount).toBe(0);
  });

  it('does not cache a remote thumbnail whose bytes are on the blocked-hash list (404, nothing kept)', async () => {
    const { remote, thumbnails, admin, metadata, blobs } = remoteSetup();
    remote.thumbnail = () => ({ type: 'image/png', bytes: enc('blocked thumbnail') });
    await admin.blockHash({ sha256: createHash('sha256').update('blocked thumbnail').digest('hex') });
    expect((await matrixError(thumbnails.getThumbnail(REMOTE, 'remoteMedia06', crop32))).errcode).toBe('M_NOT_FOUND');
    expect(await metadata.listThumbnails(REMOTE, 'remoteMedia06')).toEqual([]);
    expect(blobs.blobCount).toBe(0);
  });

  it('quarantining remote media known only through its thumbnails stops serving them and keeps them from being cached again', async () => {
    const { remote, thumbnails, admin, metadata, blobs } = remoteSetup();
    remote.thumbnail = () => ({ type: 'image/png', bytes: enc('remote thumbnail of bad media') });
    expect((await thumbnails.getThumbnail(REMOTE, 'remoteMedia07', crop32)).fromRemote).toBe(true);
    expect(await metadata.getMedia(REMOTE, 'remoteMedia07')).toBeNull();
    expect(await admin.setQuarantined(REMOTE, 'remoteMedia07', true, { by: '@admin:example.org' })).toBe(true);
    expect(await metadata.listThumbnails(REMOTE, 'remoteMedia07')).toEqual([]);
    expect(blobs.blobCount).toBe(0);
    // The remote still answers the same bytes: refused, not cached, not served.
    expect((await matrixError(thumbnails.getThumbnail(REMOTE, 'remoteMedia07', crop32))).errcode).toBe('M_NOT_FOUND');
    expect(await metadata.listThumbnails(REMOTE, 'remoteMedia07')).toEqual([]);
    expect(blobs.blobCount).toBe(0);
    expect(remote.thumbnailFetches).toBe(2);
    // Unknown remote media without thumbnails stays "not found" (Synapse answers {} either way).
    expect(await admin.setQuarantined(REMOTE, 'remoteMedia08', true)).toBe(false);
  });

  it('never asks the remote for a legacy request', async () => {
    const { remote, thumbnails } = remoteSetup();
    remote.media.set('remoteMedia05', { type: 'image/png', bytes: enc('original') });
    await thumbnails.getThumbnail(REMOTE, 'remoteMedia05', crop32, { legacy: true });
    expect([remote.thumbnailFetches, remote.mediaFetches]).toEqual([0, 1]);
  });
});
