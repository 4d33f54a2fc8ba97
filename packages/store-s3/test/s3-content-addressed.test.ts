import { createHash, randomBytes } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { ContentAddressedBlobStore, MediaService, OrphanBlobSweep } from '@hsmedia/media-core';
import { MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore, createS3Client } from '../src/index.js';

// Content addressing on a real S3 (Ceph RGW): staged under `.staging/`, published by a
// server-side copy to the SHA-256 key, one object per distinct content.
const MiB = 1024 * 1024;
let rgw: RgwCluster;
let client: S3Client;
let bucket: string;

beforeAll(async () => {
  rgw = await startRgw();
  client = createS3Client({ endpoint: rgw.endpoint, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey });
  bucket = await rgw.createBucket();
}, RGW_START_TIMEOUT_MS);

afterAll(async () => {
  client?.destroy();
  await rgw?.stop();
}, 120_000);

let prefixes = 0;
function fresh(options: { staleUploadAfterMs?: number } = {}) {
  const objects = new S3BlobStore({ client, bucket, prefix: `ca${++prefixes}-${randomBytes(3).toString('hex')}/`, partSize: 5 * MiB, ...options });
  const references = new MemoryMetadataStore();
  return { objects, references, blobs: new ContentAddressedBlobStore({ objects, references }) };
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function* chunks(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

describe('ContentAddressedBlobStore on S3BlobStore (Ceph RGW)', () => {
  it('stores identical bytes once under their SHA-256, multipart included, and leaves no staging object', async () => {
    const { objects, blobs } = fresh();
    const data = randomBytes(11 * MiB + 5);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const [first, second] = await Promise.all([blobs.put(chunks(data, MiB)), blobs.put(chunks(data, 256 * 1024))]);
    expect(first).toEqual({ blobId: sha256, size: data.byteLength, sha256 });
    expect(second.blobId).toBe(sha256);
    expect(await keysUnder(objects.prefix)).toEqual([`${objects.prefix}${sha256}`]);
    const read: Uint8Array[] = [];
    for await (const part of (await blobs.open(sha256, { start: 6 * MiB, end: 6 * MiB + 9 }))!) read.push(part);
    expect(Buffer.concat(read).equals(data.subarray(6 * MiB, 6 * MiB + 10))).toBe(true);
  });

  it('a released put of new bytes leaves nothing; bytes another put claims stay', async () => {
    const { objects, blobs } = fresh();
    const kept = await blobs.put(chunks(Buffer.from('kept bytes'), 4));
    const again = await blobs.put(chunks(Buffer.from('kept bytes'), 4));
    await blobs.release(again.blobId);
    expect(await blobs.stat(kept.blobId)).toEqual({ size: 10 });
    await blobs.release(kept.blobId);
    expect(await keysUnder(objects.prefix)).toEqual([]);
  });

  it('the sweep lists objects the ledger never heard of; cleanupStaging removes staged objects never published', async () => {
    const { objects, blobs } = fresh({ staleUploadAfterMs: 0 });
    const foreign = await objects.put(chunks(Buffer.from('written without the ledger'), 8));
    const staged = await objects.stageBlob(chunks(Buffer.from('crashed before publishing'), 8));
    expect(staged.size).toBe(25);
    expect(await blobs.sweepOrphans({ graceMs: -60_000, dryRun: true })).toEqual({ unreferenced: 0, unknown: 1, removed: 0 });
    expect(await blobs.sweepOrphans({ graceMs: -60_000 })).toEqual({ unreferenced: 0, unknown: 1, removed: 1 });
    expect(await objects.stat(foreign.blobId)).toBeNull();
    expect(await objects.cleanupStaging()).toBe(1);
    expect(await keysUnder(objects.prefix)).toEqual([]);
  });
});

describe('the orphan sweep of a plain S3BlobStore (random blob IDs, Ceph RGW)', () => {
  it('lists each object with the time of its PUT; removes an unreferenced one past the grace, keeps a referenced one', async () => {
    const { objects, references } = fresh();
    const media = new MediaService({ serverName: 'example.org', blobs: objects, metadata: references, maxUploadBytes: MiB, touchIntervalMs: 0 });
    const before = Date.now();
    const uploaded = await media.upload({ body: chunks(Buffer.from('referenced by a record'), 8), requester: { userId: '@alice:example.org', isGuest: false } });
    const orphan = await objects.put(chunks(Buffer.from('an import killed before its row'), 8));
    const after = Date.now();
    const referenced = (await references.getMedia('example.org', uploaded.mediaId))!.blobId!;
    const listed = new Map<string, number>();
    for await (const blob of objects.listBlobs()) listed.set(blob.blobId, blob.modifiedAt);
    expect([...listed.keys()].sort()).toEqual([orphan.blobId, referenced].sort());
    // LastModified has whole seconds: the PUT's second, never later than the PUT.
    for (const modifiedAt of listed.values()) {
      expect(modifiedAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(modifiedAt).toBeLessThanOrEqual(after);
    }
    const graceMs = 60_000;
    // Exactly one grace period after its LastModified it is still spared; a millisecond past `after` plus the grace it goes.
    const within = new OrphanBlobSweep({ objects, references, graceMs, clock: { now: () => listed.get(orphan.blobId)! + graceMs } });
    expect(await within.sweep()).toEqual({ unreferenced: 0, unknown: 0, removed: 0 });
    const past = new OrphanBlobSweep({ objects, references, graceMs, clock: { now: () => after + graceMs + 1 } });
    expect(await past.sweep()).toEqual({ unreferenced: 0, unknown: 1, removed: 1 });
    expect(await objects.stat(orphan.blobId)).toBeNull();
    expect(await objects.stat(referenced)).not.toBeNull();
  });
});
