import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MediaImports, MediaService, type MediaRecord } from '@hsmedia/media-core';
import { MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from './fs-blob-store.js';

// deferSync + syncBlobs: bulk imports (issue 24) write blobs without an fsync
// each and make them durable in one pass before their rows are written.

let dir: string;
let store: FsBlobStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'h24perf-store-fs-defer-'));
  store = new FsBlobStore({ root: join(dir, 'store') });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function* bytesOf(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text);
}

async function read(blobId: string): Promise<string> {
  return new Response((await store.open(blobId))!).text();
}

/** Open descriptors of this process (Linux): a deferred blob keeps one until it is synced or deleted. */
async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** Starts the copy and sync workers (each has descriptors of its own) before descriptors are counted. */
async function warmUp(): Promise<void> {
  await writeFile(join(dir, 'warm-up'), 'x');
  const warm = await store.copyFile(join(dir, 'warm-up'), { deferSync: true });
  await store.syncBlobs([warm.blobId]);
}

describe.runIf(process.platform === 'linux')('FsBlobStore deferSync', () => {
  it('writes complete, readable blobs that syncBlobs then makes durable, releasing their files', async () => {
    await warmUp();
    const before = await openFds();
    const stored = await Promise.all(['one', 'two', 'three'].map((text) => store.put(bytesOf(text), { deferSync: true })));
    expect(stored.map((s) => s.sha256)).toEqual(['one', 'two', 'three'].map((t) => createHash('sha256').update(t).digest('hex')));
    expect(await read(stored[1]!.blobId)).toBe('two');
    expect(await openFds()).toBe(before + 3);
    await store.syncBlobs(stored.map((s) => s.blobId));
    expect(await openFds()).toBe(before);
    // Already durable, or never deferred: nothing to do.
    await store.syncBlobs([stored[0]!.blobId, 'unknownBlobId0000000000']);
    expect(await readdir(join(dir, 'store', 'staging'))).toEqual([]);
  });

  it('linkFile defers too; a deferred blob deleted before its sync releases its file', async () => {
    const source = join(dir, 'synapse-file');
    await writeFile(source, 'linked bytes');
    await warmUp();
    const before = await openFds();
    const linked = (await store.linkFile(source, { deferSync: true }))!;
    const put = await store.put(bytesOf('discarded'), { deferSync: true });
    expect(await openFds()).toBe(before + 2);
    expect(await store.delete(put.blobId)).toBe(true);
    await store.syncBlobs([linked.blobId, put.blobId]);
    expect(await openFds()).toBe(before);
    expect(await read(linked.blobId)).toBe('linked bytes');
    expect(await store.stat(put.blobId)).toBeNull();
  });

  it('a failed write leaves nothing deferred behind', async () => {
    const before = await openFds();
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('half');
      throw new Error('source went away');
    }
    await expect(store.put(failing(), { deferSync: true })).rejects.toThrow('source went away');
    await expect(store.put(bytesOf('too long'), { deferSync: true, maxBytes: 3 })).rejects.toThrow();
    expect(await openFds()).toBe(before);
    expect(await readdir(join(dir, 'store', 'staging'))).toEqual([]);
  });

  it('MediaImports writes no row before its blob was synced, and batches the syncs of items in flight', async () => {
    const synced = new Set<string>();
    const flushes: string[][] = [];
    const sync = store.syncBlobs.bind(store);
    store.syncBlobs = async (ids) => {
      await sync(ids);
      flushes.push([...ids]);
      for (const id of ids) synced.add(id);
    };
    const metadata = new MemoryMetadataStore();
    const unsynced: string[] = [];
    const insert = metadata.insertMedia.bind(metadata);
    metadata.insertMedia = async (record: MediaRecord) => {
      if (record.blobId !== null && !synced.has(record.blobId)) unsynced.push(record.mediaId);
      return insert(record);
    };
    const media = new MediaService({ serverName: 'example.org', blobs: store, metadata, maxUploadBytes: 1 << 20, touchIntervalMs: 0 });
    const imports = new MediaImports({ catalog: media.catalog });
    const ids = Array.from({ length: 12 }, (_, i) => `media${i}`);
    const outcomes = await Promise.all(
      ids.map((mediaId) =>
        imports.importMedia(
          { serverName: 'example.org', mediaId, contentType: 'text/plain', uploadName: null, userId: '@u:example.org', createdAt: 1, lastAccessAt: null, quarantined: false, protected: false },
          bytesOf(`bytes of ${mediaId}`),
        ),
      ),
    );
    expect(outcomes).toEqual(ids.map(() => 'imported'));
    expect(unsynced).toEqual([]);
    expect(flushes.flat().sort()).toHaveLength(12);
    const record = await metadata.getMedia('example.org', 'media3');
    expect(await read(record!.blobId!)).toBe('bytes of media3');
  });
});
