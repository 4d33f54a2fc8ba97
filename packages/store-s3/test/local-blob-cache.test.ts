import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { describeBlobStore } from '@hsmedia/conformance';
import { takeFileBody } from '@hsmedia/media-core';
import { tmpdir, type TempDir } from '@hsmedia/test-fixtures';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBlobCache, S3BlobStore, createS3Client, type FillFailure } from '../src/index.js';

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

/** Copies in progress (or left over) under the cache's temporary directories. */
async function partialCopies(path: string): Promise<string[]> {
  const entries = await readdir(join(path, 'tmp'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

async function bytesOnDisk(path: string): Promise<number> {
  const entries = await readdir(join(path, 'blobs'), { recursive: true, withFileTypes: true }).catch(() => []);
  let total = 0;
  for (const entry of entries.filter((e) => e.isFile())) total += (await stat(join(entry.parentPath, entry.name))).size;
  return total;
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
    expect(await partialCopies(path)).toEqual([]);
  });

  it('concurrent readers of a cold blob make one copy, and all get the bytes', async () => {
    const { cache, path } = fresh();
    const body = randomBytes(1024 * 1024);
    const { blobId } = await cache.put(bytesOf(body));
    const reads = await Promise.all(Array.from({ length: 8 }, async () => readAll(await cache.open(blobId))));
    for (const read of reads) expect(read.equals(body)).toBe(true);
    await cache.settled();
    expect(await cachedFiles(path)).toEqual([blobId]);
    expect(await partialCopies(path)).toEqual([]);
  });

  it('rebuilds its index from the directory and removes partial copies left by a crash', async () => {
    const { origin, cache, path } = fresh();
    const body = randomBytes(50_000);
    const { blobId } = await cache.put(bytesOf(body));
    await readAll(await cache.open(blobId));
    await cache.settled();
    // A copy in progress of a process that is gone (a crash), and one of a live process (another worker).
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid;
    await mkdir(join(path, 'tmp', `${deadPid}.crashed`), { recursive: true });
    await writeFile(join(path, 'tmp', `${deadPid}.crashed`, 'leftover.part'), 'half a copy');
    await mkdir(join(path, 'tmp', `${process.pid}.live`), { recursive: true });
    await writeFile(join(path, 'tmp', `${process.pid}.live`, 'filling.part'), 'a copy in progress');

    const restarted = new LocalBlobCache({ origin, path, maxBytes: 1024 * 1024 });
    expect((await readAll(await restarted.open(blobId))).equals(body)).toBe(true);
    expect(restarted.has(blobId)).toBe(true);
    expect(restarted.cachedBytes).toBe(body.length);
    expect(await partialCopies(path)).toEqual(['filling.part']);
  });
});

describe('LocalBlobCache shared by several processes (two instances on one directory)', () => {
  it('keeps the directory, not each instance, under maxBytes', async () => {
    const { origin, cache: first, path } = fresh(250_000);
    const second = new LocalBlobCache({ origin, path, maxBytes: 250_000 });
    const blobs = await Promise.all([0, 1, 2, 3].map(async () => (await origin.put(bytesOf(randomBytes(100_000)))).blobId));
    // Alternating readers: each instance alone holds at most 200 000 bytes, so only the directory's total can overflow.
    for (const [index, blobId] of blobs.entries()) {
      const reader = index % 2 === 0 ? first : second;
      await readAll(await reader.open(blobId));
      await reader.settled();
    }
    await Promise.all([first.settled(), second.settled()]);
    expect(await bytesOnDisk(path)).toBeLessThanOrEqual(250_000);
    expect((await cachedFiles(path)).length).toBe(2);
    // The most recent copies stay.
    expect(await cachedFiles(path)).toEqual([blobs[2]!, blobs[3]!].sort());
  });

  it('a copy made by one instance is a hit for the other, and a copy removed by one is a miss for the other', async () => {
    const { origin, cache: first, path } = fresh();
    const second = new LocalBlobCache({ origin, path, maxBytes: 64 * 1024 * 1024 });
    const body = randomBytes(300_000);
    const { blobId } = await origin.put(bytesOf(body));
    await readAll(await second.open(blobId)); // indexes the (empty) directory
    await second.settled();
    await second.evict(blobId);
    await readAll(await first.open(blobId));
    await first.settled();

    // Gone from the bucket: only the first instance's copy can answer the second.
    await origin.delete(blobId);
    const hit = await second.open(blobId);
    expect(takeFileBody(hit!)).toBeDefined();
    expect(second.has(blobId)).toBe(true);
    expect((await readAll(await second.open(blobId, { start: 10, end: 19 }))).equals(body.subarray(10, 20))).toBe(true);

    await first.evict(blobId);
    expect(await second.open(blobId)).toBeNull();
    expect(second.has(blobId)).toBe(false);
  });
});

describe('LocalBlobCache fill failures', () => {
  it('are counted by cause and reported once per cause, not once per read', async () => {
    const failures: FillFailure[] = [];
    const id = `f${++prefixes}-${randomBytes(3).toString('hex')}`;
    const origin = new S3BlobStore({ client, bucket, prefix: `${id}/` });
    const path = join(dir.path, id);
    const cache = new LocalBlobCache({ origin, path, maxBytes: 1024 * 1024, onFillError: (_blobId, _error, failure) => failures.push(failure) });
    const body = randomBytes(10_000);
    const { blobId } = await origin.put(bytesOf(body));
    // A file where the blob's shard directory belongs: every copy fails to be renamed into place (a real fs error).
    await mkdir(join(path, 'blobs'), { recursive: true });
    await writeFile(join(path, 'blobs', blobId.slice(0, 2)), 'not a directory');
    for (let i = 0; i < 3; i++) {
      expect((await readAll(await cache.open(blobId))).equals(body)).toBe(true);
      await cache.settled();
    }
    expect(cache.has(blobId)).toBe(false);
    expect([...cache.fillFailures]).toEqual([['EEXIST', 3]]);
    expect(failures.map(({ blobId: failed, cause, count }) => ({ failed, cause, count }))).toEqual([{ failed: blobId, cause: 'EEXIST', count: 1 }]);
    expect(await partialCopies(path)).toEqual([]);
  });
});
