import { isMatrixError, type MatrixError } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { MediaAdmin } from './media-admin.js';
import { InProcessMediaChangeFeed } from './media-change-feed.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import { parseMediaChange, type MediaChange } from './ports/index.js';

// Two services over one store stand for two processes of a deployment: each
// trusts its cached records for an hour, so only the change feed can tell
// one about the other's quarantine, deletion or hash block.

const SERVER = 'example.org';
const alice: Requester = { userId: '@alice:example.org', isGuest: false };
async function* iter(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function setup(shareFeed = true) {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const feed = new InProcessMediaChangeFeed();
  const seen: MediaChange[] = [];
  feed.subscribe((change) => seen.push(change));
  const service = (changes: InProcessMediaChangeFeed | undefined): MediaService =>
    new MediaService({
      serverName: SERVER,
      blobs,
      metadata,
      maxUploadBytes: 1 << 20,
      touchIntervalMs: 0,
      cache: { recordTtlMs: 3_600_000 },
      blockedHashTtlMs: 3_600_000,
      ...(changes === undefined ? {} : { changes }),
    });
  const a = service(feed);
  const b = service(shareFeed ? feed : undefined);
  const adminA = new MediaAdmin({ media: a, queries: metadata });
  const upload = async (text: string): Promise<string> =>
    (await a.upload({ body: iter(new TextEncoder().encode(text)), contentType: 'text/plain', requester: alice })).mediaId;
  return { a, b, adminA, upload, feed, seen, metadata };
}

async function status(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (isMatrixError(error)) return (error as MatrixError).httpStatus;
    throw error;
  }
}

/** The in-process feed delivers on a later microtask; this lets it run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('media changes shared through a MediaChangeFeed', () => {
  it('a quarantine through A is applied to B’s cache; without the feed B keeps serving its cached record', async () => {
    for (const shared of [true, false]) {
      const { a, b, adminA, upload } = setup(shared);
      const mediaId = await upload('hello');
      expect(await status(b.getMedia(SERVER, mediaId))).toBe(200);
      await adminA.setQuarantined(SERVER, mediaId, true);
      await settle();
      expect(await status(a.getMedia(SERVER, mediaId))).toBe(404);
      expect(await status(b.getMedia(SERVER, mediaId))).toBe(shared ? 404 : 200);
    }
  });

  it('announces quarantine, unquarantine, protection, deletion and hash blocks', async () => {
    const { adminA, upload, seen, b } = setup();
    const mediaId = await upload('announced');
    await adminA.setProtected(SERVER, mediaId, true);
    await adminA.setProtected(SERVER, mediaId, false);
    await adminA.setQuarantined(SERVER, mediaId, true);
    await adminA.setQuarantined(SERVER, mediaId, false);
    const sha256 = 'ab'.repeat(32);
    await adminA.blockHash({ sha256 });
    await adminA.deleteMedia(SERVER, mediaId);
    await settle();
    const causes = seen.flatMap((change) => (change.kind === 'media' ? [change.cause] : []));
    expect(causes).toEqual(expect.arrayContaining(['protect', 'unprotect', 'quarantine', 'unquarantine', 'delete']));
    expect(seen).toContainEqual({ kind: 'blocked-hashes', sha256 });
    // A verdict (a scan) uses the generic announcement.
    await b.catalog.mediaChanged(SERVER, mediaId, 'verdict');
    await settle();
    expect(seen).toContainEqual({ kind: 'media', serverName: SERVER, mediaId, cause: 'verdict' });
  });

  it('a hash blocked through A is refused by B at once, though B cached “not blocked” for an hour', async () => {
    const { a, b, adminA, upload, metadata } = setup();
    const mediaId = await upload('soon blocked');
    expect(await status(b.getMedia(SERVER, mediaId))).toBe(200);
    const record = await metadata.getMedia(SERVER, mediaId);
    await adminA.blockHash({ sha256: record!.sha256! });
    await settle();
    expect(await status(b.getMedia(SERVER, mediaId))).toBe(404);
    expect(await status(a.getMedia(SERVER, mediaId))).toBe(404);
  });

  it('a resync drops every cache: a change nobody announced is seen', async () => {
    const { b, upload, metadata } = setup();
    const mediaId = await upload('silent change');
    expect(await status(b.getMedia(SERVER, mediaId))).toBe(200);
    await metadata.setMediaQuarantined(SERVER, mediaId, true);
    expect(await status(b.getMedia(SERVER, mediaId))).toBe(200);
    b.catalog.dropCaches();
    expect(await status(b.getMedia(SERVER, mediaId))).toBe(404);
  });

  it('a listener that throws does not stop the others; unsubscribe stops delivery', async () => {
    const feed = new InProcessMediaChangeFeed();
    const got: MediaChange[] = [];
    feed.subscribe(() => {
      throw new Error('boom');
    });
    const stop = feed.subscribe((change) => got.push(change));
    await feed.publish({ kind: 'blocked-hashes' });
    stop();
    await feed.publish({ kind: 'blocked-hashes' });
    expect(got).toEqual([{ kind: 'blocked-hashes' }]);
  });

  it('parseMediaChange accepts what publishers send and nothing else', () => {
    const change = { kind: 'media', serverName: SERVER, mediaId: 'abc', cause: 'quarantine' };
    expect(parseMediaChange(JSON.parse(JSON.stringify(change)))).toEqual(change);
    expect(parseMediaChange({ kind: 'blocked-hashes' })).toEqual({ kind: 'blocked-hashes' });
    for (const bad of [
      null,
      'media',
      { kind: 'resync' },
      { kind: 'media', serverName: SERVER, mediaId: 'abc', cause: 'explode' },
      { kind: 'media', serverName: '', mediaId: 'abc', cause: 'delete' },
      { kind: 'media', serverName: SERVER, mediaId: 5, cause: 'delete' },
      { kind: 'blocked-hashes', sha256: 42 },
      { kind: 'other' },
    ]) {
      expect(parseMediaChange(bad)).toBeUndefined();
    }
  });
});
