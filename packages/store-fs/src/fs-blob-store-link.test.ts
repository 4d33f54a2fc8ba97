import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentTooLargeError } from '@hsmedia/errors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from './fs-blob-store.js';

// linkFile: adopting another store's file by a hard link (issue 24's bulk import).

let dir: string;
let store: FsBlobStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'h24syn-store-fs-link-'));
  store = new FsBlobStore({ root: join(dir, 'store') });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function read(blobId: string): Promise<Buffer> {
  return Buffer.from(await new Response((await store.open(blobId))!).arrayBuffer());
}

async function stagingFiles(): Promise<string[]> {
  return readdir(join(dir, 'store', 'staging')).catch(() => []);
}

describe.runIf(process.platform === 'linux')('FsBlobStore.linkFile', () => {
  it('adopts a file without copying it: same inode, hashed and counted', async () => {
    const source = join(dir, 'synapse-file');
    const bytes = Buffer.from('media bytes '.repeat(100_000));
    await writeFile(source, bytes);
    const stored = await store.linkFile(source, { maxBytes: bytes.byteLength });
    expect(stored).toEqual({ blobId: expect.any(String), size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect((await read(stored!.blobId)).equals(bytes)).toBe(true);
    expect((await stat(source)).nlink).toBe(2);
    // Deleting the blob leaves the other name intact.
    await store.delete(stored!.blobId);
    expect((await stat(source)).nlink).toBe(1);
    expect(await stagingFiles()).toEqual([]);
  });

  it('refuses more than maxBytes, a symlink and a missing file, keeping nothing', async () => {
    const source = join(dir, 'big');
    await writeFile(source, Buffer.alloc(5000, 1));
    await expect(store.linkFile(source, { maxBytes: 4999 })).rejects.toBeInstanceOf(ContentTooLargeError);
    expect((await stat(source)).nlink).toBe(1);
    const outside = join(dir, 'secret');
    await writeFile(outside, 'secret');
    const link = join(dir, 'link');
    await symlink(outside, link);
    await expect(store.linkFile(link)).rejects.toThrow();
    await expect(store.linkFile(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await stagingFiles()).toEqual([]);
    expect(await readdir(join(dir, 'store', 'blobs')).catch(() => [])).toEqual([]);
  });
});
