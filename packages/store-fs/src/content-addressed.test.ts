import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentAddressedBlobStore } from '@hsmedia/media-core';
import { MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from './fs-blob-store.js';

// Content addressing on the filesystem store: staged, hashed, renamed to the SHA-256 path.
async function* bytes(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text);
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'h15dedup-fs-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function fresh() {
  const objects = new FsBlobStore({ root, fsync: false });
  const references = new MemoryMetadataStore();
  return { objects, references, blobs: new ContentAddressedBlobStore({ objects, references }) };
}

describe('ContentAddressedBlobStore on FsBlobStore', () => {
  it('stores identical bytes once under their SHA-256 path and leaves nothing in staging', async () => {
    const { blobs } = fresh();
    const sha256 = createHash('sha256').update('same bytes').digest('hex');
    const results = await Promise.all(Array.from({ length: 8 }, () => blobs.put(bytes('same bytes'))));
    for (const result of results) expect(result).toEqual({ blobId: sha256, size: 10, sha256 });
    expect(await readdir(join(root, 'blobs', sha256.slice(0, 2), sha256.slice(2, 4)))).toEqual([sha256]);
    expect(await readdir(join(root, 'staging'))).toEqual([]);
  });

  it('an over-size put stages nothing and claims nothing', async () => {
    const { blobs, references } = fresh();
    await expect(blobs.put(bytes('too long'), { maxBytes: 3 })).rejects.toMatchObject({ name: 'ContentTooLargeError' });
    expect(await readdir(join(root, 'staging'))).toEqual([]);
    expect(await references.listUnreferencedBlobs(Number.MAX_SAFE_INTEGER, '', 10)).toEqual([]);
  });

  it('the sweep finds objects the ledger never heard of, past the grace period', async () => {
    const { objects, blobs } = fresh();
    const foreign = await objects.put(bytes('written without the ledger'));
    const claimed = await blobs.put(bytes('claimed, never referenced'));
    // Within the grace period both are spared: a put may be on its way to the record insert.
    expect(await blobs.sweepOrphans()).toEqual({ unreferenced: 0, unknown: 0, removed: 0 });
    expect(await blobs.sweepOrphans({ graceMs: -60_000 })).toEqual({ unreferenced: 1, unknown: 1, removed: 2 });
    expect(await objects.stat(foreign.blobId)).toBeNull();
    expect(await blobs.stat(claimed.blobId)).toBeNull();
  });
});
