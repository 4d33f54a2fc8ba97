import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// A directory fsync that fails after the rename cannot be caused on a healthy disk, so this one function
// is replaced; everything else (files, renames, the tree) is the real filesystem.
const failing = vi.hoisted(() => ({ directorySync: false }));
vi.mock('./internal/deferred-syncs.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('./internal/deferred-syncs.js')>();
  return {
    ...real,
    syncDirectory: async (path: string): Promise<void> => {
      if (failing.directorySync) throw Object.assign(new Error(`EIO: i/o error, fsync '${path}'`), { code: 'EIO' });
      await real.syncDirectory(path);
    },
  };
});

const { FsBlobStore } = await import('./fs-blob-store.js');

async function* bytes(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text);
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hsmedia-publish-failure-'));
  failing.directorySync = false;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('FsBlobStore when the directory sync after the rename fails', () => {
  it('a staged publish onto a name others share reports the failure and leaves the shared blob in place', async () => {
    const store = new FsBlobStore({ root, fsync: true });
    const sha256 = createHash('sha256').update('shared bytes').digest('hex');
    const first = await store.stageBlob(bytes('shared bytes'));
    await first.publishAs(sha256);

    failing.directorySync = true;
    const second = await store.stageBlob(bytes('shared bytes'));
    await expect(second.publishAs(sha256)).rejects.toThrow(/EIO/);

    failing.directorySync = false;
    const path = join(root, 'blobs', sha256.slice(0, 2), sha256.slice(2, 4), sha256);
    expect(await readFile(path, 'utf8')).toBe('shared bytes');
    expect(await readdir(join(root, 'staging'))).toEqual([]);
  });

  it('a put under a fresh ID removes its own renamed blob, so the failure leaves no orphan', async () => {
    const store = new FsBlobStore({ root, fsync: true });
    failing.directorySync = true;
    await expect(store.put(bytes('lonely bytes'))).rejects.toThrow(/EIO/);
    failing.directorySync = false;
    const blobs: string[] = [];
    for await (const blob of store.listBlobs()) blobs.push(blob.blobId);
    expect(blobs).toEqual([]);
    expect(await readdir(join(root, 'staging'))).toEqual([]);
  });
});
