import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeBlobStore } from '@hsmedia/conformance';
import { ContentTooLargeError } from '@hsmedia/errors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from './fs-blob-store.js';

describeBlobStore('FsBlobStore', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hsmedia-store-fs-'));
  return { store: new FsBlobStore({ root }), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describeBlobStore('FsBlobStore (fsync off)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hsmedia-store-fs-'));
  return { store: new FsBlobStore({ root, fsync: false }), cleanup: () => rm(root, { recursive: true, force: true }) };
});

/** Every regular file under `dir`, relative, sorted; [] when `dir` does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function bytesOf(size: number, fill = 0x61): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield part;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

describe('FsBlobStore on disk', () => {
  let parent: string;
  let root: string;
  let store: FsBlobStore;

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'hsmedia-store-fs-'));
    root = join(parent, 'root');
    store = new FsBlobStore({ root });
  });
  afterEach(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('creates the root lazily and answers not found before any write', async () => {
    expect(await store.open('AAAAAAAAAAAAAAAAAAAAAAAA')).toBeNull();
    expect(await store.stat('AAAAAAAAAAAAAAAAAAAAAAAA')).toBeNull();
    expect(await store.delete('AAAAAAAAAAAAAAAAAAAAAAAA')).toBe(false);
    expect(await store.cleanupStaging()).toBe(0);
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
    await store.put(chunks(bytesOf(3)));
    expect((await stat(root)).isDirectory()).toBe(true);
  });

  it('writes blobs under blobs/<id[0..1]>/<id[2..3]>/<id> and leaves staging empty', async () => {
    const { blobId } = await store.put(chunks(Buffer.from('hello '), Buffer.from('world')));
    expect(blobId).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const expected = join('blobs', blobId.slice(0, 2), blobId.slice(2, 4), blobId);
    expect(await filesUnder(root)).toEqual([expected]);
    expect(await readFile(join(root, expected), 'utf8')).toBe('hello world');
    expect(await readdir(join(root, 'staging'))).toEqual([]);
  });

  it('serves a blob file that was placed by hand under the layout (e.g. restored from backup)', async () => {
    const blobId = 'Restored_blob-0001';
    await mkdir(join(root, 'blobs', 'Re', 'st'), { recursive: true });
    await writeFile(join(root, 'blobs', 'Re', 'st', blobId), 'restored');
    expect(await store.stat(blobId)).toEqual({ size: 8 });
    expect((await readAll((await store.open(blobId, { start: 2 }))!)).toString()).toBe('stored');
  });

  describe('failures leave no files behind', () => {
    const failures: ReadonlyArray<[string, (s: FsBlobStore) => Promise<unknown>]> = [
      ['too large', (s) => s.put(chunks(bytesOf(600), bytesOf(600)), { maxBytes: 1000 })],
      [
        'source error',
        (s) =>
          s.put(
            (async function* () {
              yield bytesOf(1000);
              throw new Error('boom');
            })(),
          ),
      ],
      [
        'abort',
        (s) => {
          const controller = new AbortController();
          return s.put(
            (async function* () {
              yield bytesOf(1000);
              controller.abort();
              yield bytesOf(1000);
              await new Promise((r) => setTimeout(r, 10));
              yield bytesOf(1000);
            })(),
            { signal: controller.signal },
          );
        },
      ],
      ['non-bytes chunk', (s) => s.put(chunks(bytesOf(10), 'text' as unknown as Uint8Array))],
    ];
    for (const [label, fail] of failures) {
      it(label, async () => {
        await store.put(chunks(bytesOf(1))); // the tree exists, so a leftover would be visible
        const before = await filesUnder(root);
        await expect(fail(store)).rejects.toBeDefined();
        expect(await filesUnder(root)).toEqual(before);
        expect(await readdir(join(root, 'staging'))).toEqual([]);
      });
    }

    it('too large rejects with the limit', async () => {
      await expect(store.put(chunks(bytesOf(11)), { maxBytes: 10 })).rejects.toMatchObject({ limit: 10 });
      await expect(store.put(chunks(bytesOf(11)), { maxBytes: 10 })).rejects.toBeInstanceOf(ContentTooLargeError);
    });
  });

  describe('the source is released when put cannot start', () => {
    function trackedStream(): { stream: ReadableStream<Uint8Array>; cancelled: () => boolean } {
      let wasCancelled = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(bytesOf(10));
        },
        cancel() {
          wasCancelled = true;
        },
      });
      return { stream, cancelled: () => wasCancelled };
    }

    it('on an already-aborted signal', async () => {
      const { stream, cancelled } = trackedStream();
      await expect(store.put(stream, { signal: AbortSignal.abort() })).rejects.toBeDefined();
      expect(cancelled()).toBe(true);
    });

    it('on a bad maxBytes', async () => {
      const { stream, cancelled } = trackedStream();
      await expect(store.put(stream, { maxBytes: -5 })).rejects.toBeInstanceOf(RangeError);
      expect(cancelled()).toBe(true);
    });

    it('when the root cannot be created (a file is in the way)', async () => {
      await writeFile(root, 'not a directory');
      const { stream, cancelled } = trackedStream();
      await expect(store.put(stream)).rejects.toMatchObject({ code: expect.stringMatching(/^(ENOTDIR|EEXIST)$/) });
      expect(cancelled()).toBe(true);
    });
  });

  describe('jail', () => {
    it('never reaches a file outside the root', async () => {
      await store.put(chunks(bytesOf(1)));
      const outside = join(parent, 'outside-secret');
      await writeFile(outside, 'secret');
      for (const id of [
        '../outside-secret',
        '../../outside-secret',
        '../../../../outside-secret',
        outside,
        `..${'/..'.repeat(10)}${outside}`,
        'outside-secret',
      ]) {
        expect(await store.open(id)).toBeNull();
        expect(await store.stat(id)).toBeNull();
        expect(await store.delete(id)).toBe(false);
      }
      expect(await readFile(outside, 'utf8')).toBe('secret');
    });

    it('never serves or deletes a staging file through a blob ID', async () => {
      await mkdir(join(root, 'staging'), { recursive: true });
      await writeFile(join(root, 'staging', 'Leftover_upload_1.tmp'), 'partial');
      for (const id of ['Leftover_upload_1', 'Leftover_upload_1.tmp', '../staging/Leftover_upload_1.tmp']) {
        expect(await store.open(id)).toBeNull();
        expect(await store.delete(id)).toBe(false);
      }
      expect(await readdir(join(root, 'staging'))).toEqual(['Leftover_upload_1.tmp']);
    });
  });

  describe('crash recovery', () => {
    it('cleanupStaging removes leftovers of an interrupted write, which never show up as blobs', async () => {
      const kept = await store.put(chunks(bytesOf(5)));
      // What a killed process leaves: a half-written temp file (and, from older layouts, maybe a directory).
      await writeFile(join(root, 'staging', 'Crashed_write_000001.tmp'), bytesOf(4096));
      await writeFile(join(root, 'staging', 'Crashed_write_000002.tmp'), '');
      await mkdir(join(root, 'staging', 'odd-dir'));
      expect(await store.stat('Crashed_write_000001')).toBeNull();

      const fresh = new FsBlobStore({ root }); // what the restarted server does
      expect(await fresh.cleanupStaging()).toBe(3);
      expect(await readdir(join(root, 'staging'))).toEqual([]);
      expect(await fresh.cleanupStaging()).toBe(0);
      expect(await fresh.stat(kept.blobId)).toEqual({ size: 5 });
      expect(await filesUnder(root)).toEqual([
        join('blobs', kept.blobId.slice(0, 2), kept.blobId.slice(2, 4), kept.blobId),
      ]);
    });

    it('cleanupStaging spares the writes this instance has in progress', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let firstPulled!: () => void;
      const pulled = new Promise<void>((r) => {
        firstPulled = r;
      });
      const pending = store.put(
        (async function* () {
          yield bytesOf(100);
          firstPulled();
          await gate;
          yield bytesOf(100);
        })(),
      );
      await pulled;
      await writeFile(join(root, 'staging', 'Stale_write_00001.tmp'), 'stale');
      expect(await store.cleanupStaging()).toBe(1);
      expect(await readdir(join(root, 'staging'))).toHaveLength(1);
      release();
      const done = await pending;
      expect(await store.stat(done.blobId)).toEqual({ size: 200 });
      expect(await readdir(join(root, 'staging'))).toEqual([]);
    });
  });

  describe('argument validation', () => {
    it('rejects bad ranges with RangeError before touching the disk', async () => {
      const { blobId } = await store.put(chunks(bytesOf(10)));
      for (const range of [{ start: -1 }, { end: -1 }, { start: 1.5 }, { start: 5, end: 4 }, { start: Number.NaN }]) {
        await expect(store.open(blobId, range)).rejects.toBeInstanceOf(RangeError);
      }
    });

    it('clamps an end past the last byte and gives an empty stream for a start past it', async () => {
      const { blobId } = await store.put(chunks(Buffer.from('0123456789')));
      expect((await readAll((await store.open(blobId, { start: 8, end: 1000 }))!)).toString()).toBe('89');
      expect((await readAll((await store.open(blobId, { start: 50 }))!)).byteLength).toBe(0);
    });

    it('rejects a bad maxBytes with RangeError', async () => {
      for (const maxBytes of [-1, 1.5, Number.NaN]) {
        await expect(store.put(chunks(bytesOf(1)), { maxBytes })).rejects.toBeInstanceOf(RangeError);
      }
      expect(await filesUnder(root)).toEqual([]);
    });

    it('refuses bad constructor options', () => {
      expect(() => new FsBlobStore({ root: '' })).toThrow(TypeError);
      expect(() => new FsBlobStore({ root: 'a\0b' })).toThrow(TypeError);
      expect(() => new FsBlobStore({ root, fsync: 'yes' as unknown as boolean })).toThrow(TypeError);
      expect(() => new FsBlobStore(undefined as unknown as { root: string })).toThrow(TypeError);
    });

    it('resolves a relative root to an absolute one', () => {
      expect(new FsBlobStore({ root: 'relative/dir' }).root).toMatch(/^\/.*relative\/dir$/);
    });
  });
});

describe('FsBlobStore sha256', () => {
  it('reports the SHA-256 of small and large (worker-hashed) blobs', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hsmedia-store-fs-'));
    try {
      const store = new FsBlobStore({ root, fsync: false });
      const { createHash, randomBytes } = await import('node:crypto');
      for (const size of [10, 4 * 1024 * 1024 + 3]) {
        const data = randomBytes(size);
        const pieces = Array.from({ length: Math.ceil(size / 65_536) }, (_, i) => data.subarray(i * 65_536, (i + 1) * 65_536));
        const stored = await store.put(chunks(...pieces));
        expect(stored.size).toBe(size);
        expect(stored.sha256).toBe(createHash('sha256').update(data).digest('hex'));
        expect(Buffer.compare(await readFile(join(root, 'blobs', stored.blobId.slice(0, 2), stored.blobId.slice(2, 4), stored.blobId)), data)).toBe(0);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
