import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { describeBlobStore } from '@hsmedia/conformance';
import { takeFileBody } from '@hsmedia/media-core';
import { tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBlobCache, S3BlobStore, createS3Client } from '../src/index.js';

// The local cache tier in front of a real Ceph RGW: the shared blob-store suite unchanged, then the
// cache's own rules (fill on read, LRU bound, eviction, concurrency, leftovers).

let rgw: RgwCluster;
let client: S3Client;
let bucket: string;
let dir: TempDir;
let prefixes = 0;

beforeAll(async () => {
  [rgw, dir] = await Promise.all([startRgw(), tmpdir('hsmedia-s3-cache-')]);
  client = createS3Client({ endpoint: rgw.endpoint, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });
  bucket = await rgw.createBucket();
}, RGW_START_TIMEOUT_MS);

afterAll(async () => {
  client?.destroy();
  await rgw?.stop();
  await dir?.cleanup();
}, 120_000);

function fresh(maxBytes = 64 * 1024 * 1024): { origin: S3BlobStore; cache: LocalBlobCache; path: string } {
  const id = `c${++prefixes}-${randomBytes(3).toString('hex')}`;
  const origin = new S3BlobStore({ client, bucket, prefix: `${id}/` });
  const path = join(dir.path, id);
  return { origin, cache: new LocalBlobCache({ origin, path, maxBytes }), path };
}

/** The bytes as a stream, what `put` takes. */
function bytesOf(body: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([body]).stream();
}

async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Buffer> {
  if (stream === null) throw new Error('no blob');
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

async function cachedFiles(path: string): Promise<string[]> {
  const entries = await readdir(join(path, 'blobs'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name).sort();
}

describeBlobStore('LocalBlobCache over S3BlobStore on Ceph RGW', async () => ({ store: fresh().cache, cleanup: async () => {} }));

describe('LocalBlobCache', () => {
  it('fills on read, then serves hits from a local file that the server can take (file byte path)', async () => {
    const { origin, cache, path } = fresh();
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const { blobId } = await cache.put(bytesOf(body));
    expect(cache.has(blobId)).toBe(false);
    expect((await readAll(await cache.open(blobId))).equals(body)).toBe(true);
    await cache.settled();
    expect(cache.has(blobId)).toBe(true);
    expect(await cachedFiles(path)).toEqual([blobId]);
    expect(cache.cachedBytes).toBe(body.length);

    // Gone from the bucket behind the cache's back: a hit is served from the local copy.
    await origin.delete(blobId);
    const hit = await cache.open(blobId);
    const file = takeFileBody(hit!);
    expect(file).toBeDefined();
    await file!.close();
    expect((await readAll(await cache.open(blobId, { start: 100, end: 199 }))).equals(body.subarray(100, 200))).toBe(true);
    expect(await cache.stat(blobId)).toEqual({ size: body.length });
  });

  it('stays under maxBytes, evicting the least recently read; an open read survives its eviction', async () => {
    const { cache, path } = fresh(250_000);
    const blobs = await Promise.all([0, 1, 2].map(async () => {
      const body = randomBytes(100_000);
      return { body, blobId: (await cache.put(bytesOf(body))).blobId };
    }));
    for (const { blobId } of blobs.slice(0, 2)) {
      await readAll(await cache.open(blobId));
      await cache.settled();
    }
    // A read of the second is held open; reading the first again then makes the second the least recently read.
    const held = await cache.open(blobs[1]!.blobId);
    const open = await cache.open(blobs[0]!.blobId);
    await readAll(await cache.open(blobs[2]!.blobId));
    await cache.settled();
    expect(cache.cachedBytes).toBeLessThanOrEqual(250_000);
    expect(cache.has(blobs[1]!.blobId)).toBe(false);
    expect(cache.has(blobs[0]!.blobId) && cache.has(blobs[2]!.blobId)).toBe(true);
    expect(await cachedFiles(path)).toEqual([blobs[0]!.blobId, blobs[2]!.blobId].sort());
    // Both reads opened before the eviction still read every byte.
    expect((await readAll(open)).equals(blobs[0]!.body)).toBe(true);
    expect((await readAll(held)).equals(blobs[1]!.body)).toBe(true);
  });

  it('never caches a blob larger than maxBytes', async () => {
    const { cache, path } = fresh(10_000);
    const body = randomBytes(20_000);
    const { blobId } = await cache.put(bytesOf(body));
    expect((await readAll(await cache.open(blobId))).equals(body)).toBe(true);
    await cache.settled();
    expect(cache.has(blobId)).toBe(false);
    expect(await cachedFiles(path)).toEqual([]);
  });

  it('delete and evict drop the local copy, also while a fill is running', async () => {
    const { cache, path } = fresh();
    const body = randomBytes(2 * 1024 * 1024);
    const { blobId } = await cache.put(bytesOf(body));
    await readAll(await cache.open(blobId));
    await cache.settled();
    await cache.evict(blobId);
    expect(cache.has(blobId)).toBe(false);
    expect(await cachedFiles(path)).toEqual([]);

    // Evicted while its fill runs: the fill installs nothing.
    await readAll(await cache.open(blobId));
    await cache.evict(blobId);
    await cache.settled();
    expect(cache.has(blobId)).toBe(false);
    expect(await cachedFiles(path)).toEqual([]);

    await readAll(await cache.open(blobId));
    await cache.settled();
    expect(await cache.delete(blobId)).toBe(true);
    expect(await cachedFiles(path)).toEqual([]);
    expect(await cache.open(blobId)).toBeNull();
    expect(await readdir(join(path, 'tmp'))).toEqual([]);
  });

  it('concurrent readers of a cold blob make one copy, and all get the bytes', async () => {
    const { cache, path } = fresh();
    const body = randomBytes(1024 * 1024);
    const { blobId } = await cache.put(bytesOf(body));
    const reads = await Promise.all(Array.from({ length: 8 }, async () => readAll(await cache.open(blobId))));
    for (const read of reads) expect(read.equals(body)).toBe(true);
    await cache.settled();
    expect(await cachedFiles(path)).toEqual([blobId]);
    expect(await readdir(join(path, 'tmp'))).toEqual([]);
  });

  it('rebuilds its index from the directory and removes partial copies left by a crash', async () => {
    const { origin, cache, path } = fresh();
    const body = randomBytes(50_000);
    const { blobId } = await cache.put(bytesOf(body));
    await readAll(await cache.open(blobId));
    await cache.settled();
    await mkdir(join(path, 'tmp'), { recursive: true });
    await writeFile(join(path, 'tmp', 'leftover.part'), 'half a copy');

    const restarted = new LocalBlobCache({ origin, path, maxBytes: 1024 * 1024 });
    expect((await readAll(await restarted.open(blobId))).equals(body)).toBe(true);
    expect(restarted.has(blobId)).toBe(true);
    expect(restarted.cachedBytes).toBe(body.length);
    expect(await readdir(join(path, 'tmp'))).toEqual([]);
  });
});
