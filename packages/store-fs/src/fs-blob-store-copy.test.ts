import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentTooLargeError } from '@hsmedia/errors';
import { SourceFileError } from '@hsmedia/media-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from './fs-blob-store.js';

// copyFile: a bulk import's copy of another store's file, read/hashed/written on a worker thread (issue 24).

let dir: string;
let store: FsBlobStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'h6-store-fs-copy-'));
  store = new FsBlobStore({ root: join(dir, 'store') });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function read(blobId: string): Promise<Buffer> {
  return Buffer.from(await new Response((await store.open(blobId))!).arrayBuffer());
}

/** Every file under the store's `staging/` and `blobs/`, relative. */
async function storeFiles(): Promise<string[]> {
  const found: string[] = [];
  for (const top of ['staging', 'blobs']) {
    const entries = await readdir(join(dir, 'store', top), { recursive: true, withFileTypes: true }).catch(() => []);
    for (const entry of entries) if (entry.isFile()) found.push(join(entry.parentPath, entry.name));
  }
  return found;
}

async function sourceFile(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Open descriptors of this process (Linux): a deferred blob keeps one until it is synced. */
async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

describe.runIf(process.platform === 'linux')('FsBlobStore.copyFile', () => {
  it('copies bytes of several sizes (empty, one buffer, several buffers) with the right size and hash', async () => {
    for (const size of [0, 1, 1024 * 1024, 3 * 1024 * 1024 + 17]) {
      const bytes = randomBytes(size);
      const path = await sourceFile(`file-${size}`, bytes);
      const stored = await store.copyFile(path, { maxBytes: size });
      expect(stored).toEqual({ blobId: expect.any(String), size, sha256: sha256(bytes) });
      expect((await read(stored.blobId)).equals(bytes)).toBe(true);
    }
    expect(await readdir(join(dir, 'store', 'staging'))).toEqual([]);
  });

  it('copies many files at once through the pool, each to its own blob', async () => {
    const sources = await Promise.all(Array.from({ length: 24 }, async (_, i) => ({ bytes: randomBytes(1000 + i * 40_000), i })));
    const stored = await Promise.all(sources.map(async ({ bytes, i }) => store.copyFile(await sourceFile(`many-${i}`, bytes))));
    for (const [i, blob] of stored.entries()) {
      expect(blob.sha256).toBe(sha256(sources[i]!.bytes));
      expect((await read(blob.blobId)).equals(sources[i]!.bytes)).toBe(true);
    }
    expect(new Set(stored.map((s) => s.blobId)).size).toBe(24);
  });

  it('refuses more than maxBytes with ContentTooLargeError, leaving nothing in blobs/ or staging/', async () => {
    const path = await sourceFile('big', randomBytes(2 * 1024 * 1024 + 1));
    await expect(store.copyFile(path, { maxBytes: 2 * 1024 * 1024 })).rejects.toBeInstanceOf(ContentTooLargeError);
    await expect(store.copyFile(path, { maxBytes: 0 })).rejects.toBeInstanceOf(ContentTooLargeError);
    expect(await storeFiles()).toEqual([]);
  });

  it('refuses a symlink (never read through), a directory and a FIFO; a missing file is ENOENT; nothing is left', async () => {
    const target = await sourceFile('target', Buffer.from('secret'));
    await symlink(target, join(dir, 'link'));
    await expect(store.copyFile(join(dir, 'link'))).rejects.toMatchObject({ name: 'SourceFileError', reason: 'missing', code: 'ELOOP' });
    await mkdir(join(dir, 'a-directory'));
    await expect(store.copyFile(join(dir, 'a-directory'))).rejects.toThrow();
    await expect(store.copyFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    if (spawnSync('mkfifo', [join(dir, 'fifo')]).status === 0) {
      // A FIFO with no writer: the open must not hang, and it is not a regular file.
      await expect(store.copyFile(join(dir, 'fifo'))).rejects.toMatchObject({ code: 'ENOTFILE' });
    }
    expect(await storeFiles()).toEqual([]);
  });

  it('with `within`, refuses a path that resolves outside it (a symlinked file or directory), as SourceFileError', async () => {
    const inside = join(dir, 'inside');
    await mkdir(join(inside, 'sub'), { recursive: true });
    await writeFile(join(inside, 'sub', 'file'), 'inside bytes');
    const secret = await sourceFile('secret', Buffer.from('outside bytes'));
    await symlink(secret, join(inside, 'sub', 'out-file'));
    await symlink(dir, join(inside, 'out-dir'));
    await symlink(join(inside, 'sub', 'file'), join(inside, 'in-file'));
    for (const adopt of [(path: string) => store.copyFile(path, { within: inside }), (path: string) => store.linkFile(path, { within: inside })]) {
      await expect(adopt(join(inside, 'sub', 'out-file'))).rejects.toMatchObject({ name: 'SourceFileError', reason: 'outside', path: join(inside, 'sub', 'out-file') });
      await expect(adopt(join(inside, 'out-dir', 'secret'))).rejects.toBeInstanceOf(SourceFileError);
      await expect(adopt(join(inside, 'nothing-here'))).rejects.toMatchObject({ reason: 'missing', code: 'ENOENT' });
      // A symlink that stays inside is followed, as the media store's own layout may use them.
      const stored = (await adopt(join(inside, 'in-file')))!;
      expect((await read(stored.blobId)).toString()).toBe('inside bytes');
      await store.delete(stored.blobId);
    }
    // A directory: not a file to copy; link(2) refuses it (EPERM), which linkFile answers as "copy instead".
    await expect(store.copyFile(join(inside, 'sub'), { within: inside })).rejects.toMatchObject({ reason: 'missing' });
    expect(await store.linkFile(join(inside, 'sub'), { within: inside })).toBeNull();
    expect(await storeFiles()).toEqual([]);
  });

  it('rejects with the abort reason, before or while copying, leaving nothing behind', async () => {
    const path = await sourceFile('aborted', randomBytes(4 * 1024 * 1024));
    const reason = new Error('stop');
    await expect(store.copyFile(path, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const controller = new AbortController();
    const copying = store.copyFile(path, { signal: controller.signal });
    controller.abort(reason);
    await expect(copying).rejects.toBe(reason);
    expect(await storeFiles()).toEqual([]);
    // The pool is still usable afterwards.
    expect((await store.copyFile(path)).size).toBe(4 * 1024 * 1024);
  });

  it('with deferSync keeps the file open until syncBlobs, and the blob is complete before and after', async () => {
    // Starts the copy and sync workers (each has descriptors of its own) before counting descriptors.
    const warm = await store.copyFile(await sourceFile('warm-up', Buffer.from('x')), { deferSync: true });
    await store.syncBlobs([warm.blobId]);
    const bytes = randomBytes(300_000);
    const path = await sourceFile('deferred', bytes);
    const before = await openFds();
    const stored = await store.copyFile(path, { deferSync: true });
    expect(await openFds()).toBe(before + 1);
    expect((await read(stored.blobId)).equals(bytes)).toBe(true);
    await store.syncBlobs([stored.blobId]);
    expect(await openFds()).toBe(before);
    expect((await read(stored.blobId)).equals(bytes)).toBe(true);
    expect(await readdir(join(dir, 'store', 'staging'))).toEqual([]);
  });

  it('works without fsync too', async () => {
    const unsynced = new FsBlobStore({ root: join(dir, 'store'), fsync: false });
    const bytes = randomBytes(5000);
    const stored = await unsynced.copyFile(await sourceFile('unsynced', bytes), { deferSync: true });
    expect(stored.sha256).toBe(sha256(bytes));
    expect((await read(stored.blobId)).equals(bytes)).toBe(true);
  });
});
