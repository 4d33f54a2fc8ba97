/**
 * The shared conformance suite of `BlobStore` adapters (past 450 lines: one
 * `describe` per behaviour of the port, kept together so an adapter runs the
 * whole contract with one call).
 */
import { Readable } from 'node:stream';
import { type BlobStore, type ByteSource } from '@hsmedia/media-core';
import { ContentTooLargeError } from '@hsmedia/errors';
import { describe, expect, it } from 'vitest';
import { describeWithSubject } from './internal/subject-lifecycle.js';
import {
  asyncIterableOf,
  chunksOf,
  collect,
  deferred,
  patternedBytes,
  sha256Hex,
  tick,
  webStreamOf,
} from './internal/bytes.js';

/** What a {@link BlobStoreFactory} hands to each test: a fresh, empty store and how to dispose of it. */
export interface BlobStoreSubject {
  readonly store: BlobStore;
  /** Releases everything the factory created (temp dirs, buckets, connections). */
  cleanup(): Promise<void>;
}

/** Creates a fresh, empty store; called once per test. */
export type BlobStoreFactory = () => Promise<BlobStoreSubject>;

const MiB = 1024 * 1024;
const BLOB_ID_RE = /^[A-Za-z0-9_-]+$/;

/**
 * Blob IDs no store may resolve: traversal, separators, encodings, NUL,
 * empty and over-long. Each must read as "not found", never throw.
 */
const HOSTILE_BLOB_IDS: readonly string[] = [
  '../x',
  '..',
  '.',
  'a/b',
  'a\\b',
  '/etc/passwd',
  '..\\..\\x',
  'C:\\Windows',
  '%2F',
  '%2e%2e%2fx',
  '',
  ' ',
  'a\0b',
  'abcdefgh\n',
  'ünïcödé-id',
  'a'.repeat(300),
];

/** A source that yields `chunkSize` chunks forever (up to a safety cap) and reports what happened. */
function endlessSource(chunkSize: number, capBytes: number, onChunk?: (pulledBytes: number) => void) {
  const state = { pulledBytes: 0, closed: false };
  const chunk = patternedBytes(chunkSize, 7);
  async function* generate(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        await tick();
        if (state.pulledBytes >= capBytes) {
          throw new Error(`conformance: the store kept reading past ${capBytes} bytes`);
        }
        state.pulledBytes += chunk.byteLength;
        onChunk?.(state.pulledBytes);
        yield chunk;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, source: generate() };
}

/**
 * The shared conformance suite for {@link BlobStore} adapters, in the style of
 * undici's `cacheStoreTests`. Call it once per adapter from a vitest file;
 * `factory` runs before every test and `cleanup` after it.
 *
 * @example
 * ```ts
 * describeBlobStore('FsBlobStore', async () => {
 *   const root = await mkdtemp(join(tmpdir(), 'blobs-'));
 *   return { store: new FsBlobStore({ root }), cleanup: () => rm(root, { recursive: true, force: true }) };
 * });
 * ```
 */
export function describeBlobStore(name: string, factory: BlobStoreFactory): void {
  describeWithSubject<BlobStore>(`BlobStore conformance: ${name}`, factory, (store) => {
    async function roundTrip(bytes: Uint8Array, source: ByteSource): Promise<string> {
      const stored = await store().put(source);
      expect(stored.blobId).toMatch(BLOB_ID_RE);
      expect(stored.size).toBe(bytes.byteLength);
      expect(stored.sha256).toBe(sha256Hex(bytes));
      expect(await store().stat(stored.blobId)).toEqual({ size: bytes.byteLength });
      const stream = await store().open(stored.blobId);
      expect(stream).not.toBeNull();
      const read = await collect(stream!);
      expect(read.byteLength).toBe(bytes.byteLength);
      expect(Buffer.from(read).equals(Buffer.from(bytes))).toBe(true);
      return stored.blobId;
    }

    describe('put / open / stat round trips', () => {
      it('stores an empty source', async () => {
        await roundTrip(new Uint8Array(0), webStreamOf([]));
        await roundTrip(new Uint8Array(0), asyncIterableOf([]));
      });

      it('stores a single byte', async () => {
        const bytes = Uint8Array.of(0x2a);
        await roundTrip(bytes, webStreamOf([bytes]));
      });

      it('stores 1 MiB given as one chunk', async () => {
        const bytes = patternedBytes(MiB, 2);
        await roundTrip(bytes, webStreamOf([bytes]));
      });

      it('stores a multi-chunk Web ReadableStream with uneven chunk sizes', async () => {
        const bytes = patternedBytes(3 * MiB + 17, 3);
        await roundTrip(bytes, webStreamOf(chunksOf(bytes, 65_537)));
      });

      it('stores a multi-chunk async iterable', async () => {
        const bytes = patternedBytes(2 * MiB + 5, 4);
        await roundTrip(bytes, asyncIterableOf(chunksOf(bytes, 16_384)));
      });

      it('stores a Node Readable (Node streams are async iterables)', async () => {
        const bytes = patternedBytes(MiB + 3, 8);
        await roundTrip(bytes, Readable.from(chunksOf(bytes, 100_000)));
      });

      it('stores empty chunks in the middle of a source', async () => {
        const bytes = patternedBytes(1000, 5);
        const chunks = [bytes.subarray(0, 10), new Uint8Array(0), bytes.subarray(10), new Uint8Array(0)];
        await roundTrip(bytes, asyncIterableOf(chunks));
      });

      it('keeps the bytes even when the caller reuses its chunk buffer after put resolves', async () => {
        const bytes = patternedBytes(4096, 6);
        const copy = bytes.slice();
        const { blobId } = await store().put(webStreamOf([copy]));
        copy.fill(0);
        expect(Buffer.from(await collect((await store().open(blobId))!)).equals(Buffer.from(bytes))).toBe(true);
      });

      it('gives each blob its own ID and content', async () => {
        const a = patternedBytes(100, 10);
        const b = patternedBytes(100, 11);
        const idA = await roundTrip(a, webStreamOf([a]));
        const idB = await roundTrip(b, webStreamOf([b]));
        expect(idA).not.toBe(idB);
        expect(Buffer.from(await collect((await store().open(idA))!)).equals(Buffer.from(a))).toBe(true);
      });

      it('can read the same blob twice, and concurrently', async () => {
        const bytes = patternedBytes(MiB, 12);
        const { blobId } = await store().put(webStreamOf(chunksOf(bytes, 65_536)));
        const [one, two] = await Promise.all([store().open(blobId), store().open(blobId)]);
        const [readOne, readTwo] = await Promise.all([collect(one!), collect(two!)]);
        expect(Buffer.from(readOne).equals(Buffer.from(bytes))).toBe(true);
        expect(Buffer.from(readTwo).equals(Buffer.from(bytes))).toBe(true);
      });
    });

    describe('ranges (inclusive, like HTTP)', () => {
      const size = 200_000;
      const bytes = patternedBytes(size, 20);
      const cases: ReadonlyArray<[string, { start?: number; end?: number }, number, number]> = [
        ['start and end', { start: 10, end: 19 }, 10, 20],
        ['first byte only', { start: 0, end: 0 }, 0, 1],
        ['a single byte in the middle', { start: 12_345, end: 12_345 }, 12_345, 12_346],
        ['the last byte', { start: size - 1, end: size - 1 }, size - 1, size],
        ['across a 64 KiB boundary', { start: 65_530, end: 65_545 }, 65_530, 65_546],
        ['start only', { start: 100 }, 100, size],
        ['start only, from the last byte', { start: size - 1 }, size - 1, size],
        ['end = last byte', { start: 5, end: size - 1 }, 5, size],
        ['end only', { end: 99 }, 0, 100],
        ['start 0 (the whole blob)', { start: 0 }, 0, size],
      ];
      for (const [label, range, from, to] of cases) {
        it(label, async () => {
          const { blobId } = await store().put(webStreamOf(chunksOf(bytes, 50_000)));
          const stream = await store().open(blobId, range);
          expect(stream).not.toBeNull();
          const read = await collect(stream!);
          expect(read.byteLength).toBe(to - from);
          expect(Buffer.from(read).equals(Buffer.from(bytes.subarray(from, to)))).toBe(true);
        });
      }
    });

    describe('missing blobs', () => {
      it('open, stat and delete of an unknown ID answer null / false', async () => {
        const unknown = 'AAAAAAAAAAAAAAAAAAAAAAAA';
        expect(await store().open(unknown)).toBeNull();
        expect(await store().open(unknown, { start: 0, end: 0 })).toBeNull();
        expect(await store().stat(unknown)).toBeNull();
        expect(await store().delete(unknown)).toBe(false);
      });
    });

    describe('limits', () => {
      it('accepts exactly maxBytes', async () => {
        const bytes = patternedBytes(1000, 30);
        const stored = await store().put(webStreamOf(chunksOf(bytes, 300)), { maxBytes: 1000 });
        expect(stored.size).toBe(1000);
        expect(await store().stat(stored.blobId)).toEqual({ size: 1000 });
      });

      it('accepts an empty source with maxBytes 0', async () => {
        const stored = await store().put(webStreamOf([]), { maxBytes: 0 });
        expect(stored.size).toBe(0);
      });

      it('rejects maxBytes + 1 with ContentTooLargeError and leaves nothing behind', async () => {
        const existing = await store().put(webStreamOf([Uint8Array.of(1, 2, 3)]));
        const bytes = patternedBytes(1001, 31);
        const error = await store()
          .put(webStreamOf(chunksOf(bytes, 300)), { maxBytes: 1000 })
          .then(
            () => null,
            (e: unknown) => e,
          );
        expect(error).toBeInstanceOf(ContentTooLargeError);
        expect((error as ContentTooLargeError).limit).toBe(1000);
        // Nothing of the failed write is left to clean up, and clean-up touches no finished blob.
        expect(await store().cleanupStaging()).toBe(0);
        expect(await store().stat(existing.blobId)).toEqual({ size: 3 });
      });

      it('stops reading an endless source once maxBytes is exceeded, and closes it', async () => {
        const { state, source } = endlessSource(65_536, 64 * MiB);
        await expect(store().put(source, { maxBytes: 256 * 1024 })).rejects.toBeInstanceOf(ContentTooLargeError);
        expect(state.closed).toBe(true);
        // Some read-ahead is fine; reading on to the safety cap is not.
        expect(state.pulledBytes).toBeLessThan(256 * 1024 + 4 * MiB);
        expect(await store().cleanupStaging()).toBe(0);
      });

      it('rejects a single chunk larger than maxBytes', async () => {
        await expect(store().put(webStreamOf([patternedBytes(MiB, 32)]), { maxBytes: 10 })).rejects.toBeInstanceOf(
          ContentTooLargeError,
        );
        expect(await store().cleanupStaging()).toBe(0);
      });
    });

    describe('failed writes leave nothing', () => {
      it('a Web stream that errors midway rejects put with that error', async () => {
        const failure = new Error('conformance: source failed');
        let pulls = 0;
        const source = new ReadableStream<Uint8Array>({
          pull(controller) {
            pulls++;
            if (pulls <= 3) controller.enqueue(patternedBytes(65_536, pulls));
            else controller.error(failure);
          },
        });
        await expect(store().put(source)).rejects.toBe(failure);
        expect(await store().cleanupStaging()).toBe(0);
      });

      it('an async iterable that throws midway rejects put with that error', async () => {
        const failure = new Error('conformance: iterable failed');
        async function* source(): AsyncGenerator<Uint8Array> {
          yield patternedBytes(65_536, 40);
          await tick();
          yield patternedBytes(65_536, 41);
          throw failure;
        }
        await expect(store().put(source())).rejects.toBe(failure);
        expect(await store().cleanupStaging()).toBe(0);
      });

      it('an AbortSignal aborted midway rejects put and closes the source', async () => {
        const controller = new AbortController();
        const { state, source } = endlessSource(65_536, 64 * MiB, (pulled) => {
          if (pulled >= 3 * 65_536) controller.abort(new Error('conformance: client went away'));
        });
        await expect(store().put(source, { signal: controller.signal })).rejects.toBeDefined();
        expect(state.closed).toBe(true);
        expect(await store().cleanupStaging()).toBe(0);
      });

      it('an AbortSignal aborted before put starts rejects without reading', async () => {
        const { state, source } = endlessSource(1024, MiB);
        await expect(store().put(source, { signal: AbortSignal.abort() })).rejects.toBeDefined();
        expect(state.pulledBytes).toBe(0);
        expect(await store().cleanupStaging()).toBe(0);
      });

      it('a chunk that is not a Uint8Array rejects put', async () => {
        async function* source(): AsyncGenerator<unknown> {
          yield Uint8Array.of(1);
          yield 'not bytes';
        }
        await expect(store().put(source() as AsyncIterable<Uint8Array>)).rejects.toBeDefined();
        expect(await store().cleanupStaging()).toBe(0);
      });
    });

    describe('delete', () => {
      it('answers true, then false, and the blob is gone', async () => {
        const { blobId } = await store().put(webStreamOf([patternedBytes(10, 50)]));
        expect(await store().delete(blobId)).toBe(true);
        expect(await store().delete(blobId)).toBe(false);
        expect(await store().stat(blobId)).toBeNull();
        expect(await store().open(blobId)).toBeNull();
      });

      it('deletes only the blob it names', async () => {
        const a = await store().put(webStreamOf([patternedBytes(10, 51)]));
        const b = await store().put(webStreamOf([patternedBytes(20, 52)]));
        expect(await store().delete(a.blobId)).toBe(true);
        expect(await store().stat(b.blobId)).toEqual({ size: 20 });
      });

      it('a delete while a reader is open does not break the store', async () => {
        const bytes = patternedBytes(MiB, 53);
        const { blobId } = await store().put(webStreamOf([bytes]));
        const stream = await store().open(blobId);
        expect(await store().delete(blobId)).toBe(true);
        // Some backends still serve the open reader, others end it with an error; neither may crash.
        await collect(stream!).catch(() => undefined);
        expect(await store().stat(blobId)).toBeNull();
      });
    });

    describe('readers', () => {
      it('a reader cancelled after the first chunk releases the blob', async () => {
        const bytes = patternedBytes(4 * MiB, 60);
        const { blobId } = await store().put(webStreamOf(chunksOf(bytes, MiB)));
        const reader = (await store().open(blobId))!.getReader();
        const first = await reader.read();
        expect(first.done).toBe(false);
        await reader.cancel();
        expect(await store().delete(blobId)).toBe(true);
      });

      it('aborting the open signal ends the stream with an error', async () => {
        const bytes = patternedBytes(8 * MiB, 61);
        const { blobId } = await store().put(webStreamOf(chunksOf(bytes, MiB)));
        const controller = new AbortController();
        const reader = (await store().open(blobId, { signal: controller.signal }))!.getReader();
        await reader.read();
        controller.abort(new Error('conformance: reader aborted'));
        let received = 0;
        const outcome = await (async () => {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return 'ended';
            received += value.byteLength;
          }
        })().catch(() => 'errored');
        expect(outcome).toBe('errored');
        expect(received).toBeLessThan(bytes.byteLength);
      });

      it('open with an already-aborted signal rejects or yields an errored stream', async () => {
        const { blobId } = await store().put(webStreamOf([patternedBytes(100, 62)]));
        const outcome = await store()
          .open(blobId, { signal: AbortSignal.abort() })
          .then(
            (stream) => (stream ? collect(stream).then(() => 'read', () => 'errored') : 'null'),
            () => 'rejected',
          );
        expect(['rejected', 'errored']).toContain(outcome);
      });
    });

    describe('hostile blob IDs', () => {
      for (const hostile of HOSTILE_BLOB_IDS) {
        it(`open/stat/delete(${JSON.stringify(hostile.length > 40 ? `${hostile.slice(0, 12)}…(${hostile.length})` : hostile)}) answer not found`, async () => {
          const existing = await store().put(webStreamOf([patternedBytes(10, 70)]));
          expect(await store().open(hostile)).toBeNull();
          expect(await store().open(hostile, { start: 0, end: 0 })).toBeNull();
          expect(await store().stat(hostile)).toBeNull();
          expect(await store().delete(hostile)).toBe(false);
          expect(await store().stat(existing.blobId)).toEqual({ size: 10 });
        });
      }

      it('decorated forms of a real ID never reach that blob', async () => {
        const { blobId } = await store().put(webStreamOf([patternedBytes(10, 71)]));
        const variants = [
          `./${blobId}`,
          `../${blobId}`,
          `${blobId}/`,
          `${blobId}/.`,
          `x/../${blobId}`,
          `${blobId}\0`,
          `${blobId}%00`,
          ` ${blobId}`,
          `${blobId}\n`,
          `${blobId}.tmp`,
        ];
        for (const variant of variants) {
          expect(await store().open(variant), variant).toBeNull();
          expect(await store().stat(variant), variant).toBeNull();
          expect(await store().delete(variant), variant).toBe(false);
        }
        expect(await store().stat(blobId)).toEqual({ size: 10 });
      });
    });

    describe('concurrency', () => {
      it('concurrent puts get distinct IDs and keep their own bytes', async () => {
        const inputs = Array.from({ length: 12 }, (_, i) => patternedBytes(50_000 + i * 997, 100 + i));
        const stored = await Promise.all(
          inputs.map((bytes, i) =>
            store().put(i % 2 === 0 ? webStreamOf(chunksOf(bytes, 8192)) : asyncIterableOf(chunksOf(bytes, 8192))),
          ),
        );
        expect(new Set(stored.map((s) => s.blobId)).size).toBe(inputs.length);
        for (const [i, s] of stored.entries()) {
          const bytes = inputs[i]!;
          expect(s.sha256).toBe(sha256Hex(bytes));
          expect(Buffer.from(await collect((await store().open(s.blobId))!)).equals(Buffer.from(bytes))).toBe(true);
        }
      });

      it('reads and deletes other blobs while a put is in progress', async () => {
        const existingBytes = patternedBytes(300_000, 80);
        const existing = await store().put(webStreamOf([existingBytes]));
        const other = await store().put(webStreamOf([patternedBytes(5, 81)]));

        const firstChunkPulled = deferred<void>();
        const gate = deferred<void>();
        const slowBytes = patternedBytes(200_000, 82);
        async function* slowSource(): AsyncGenerator<Uint8Array> {
          yield slowBytes.subarray(0, 100_000);
          firstChunkPulled.resolve();
          await gate.promise;
          yield slowBytes.subarray(100_000);
        }
        const pending = store().put(slowSource());
        await firstChunkPulled.promise;

        const read = await collect((await store().open(existing.blobId))!);
        expect(Buffer.from(read).equals(Buffer.from(existingBytes))).toBe(true);
        expect(await store().stat(existing.blobId)).toEqual({ size: existingBytes.byteLength });
        expect(await store().delete(other.blobId)).toBe(true);

        gate.resolve();
        const slow = await pending;
        expect(slow.size).toBe(slowBytes.byteLength);
        expect(slow.sha256).toBe(sha256Hex(slowBytes));
        expect(Buffer.from(await collect((await store().open(slow.blobId))!)).equals(Buffer.from(slowBytes))).toBe(
          true,
        );
      });
    });

    describe('cleanupStaging', () => {
      it('answers 0 on a fresh store and keeps finished blobs', async () => {
        expect(await store().cleanupStaging()).toBe(0);
        const { blobId } = await store().put(webStreamOf([patternedBytes(10, 90)]));
        expect(await store().cleanupStaging()).toBe(0);
        expect(await store().stat(blobId)).toEqual({ size: 10 });
      });
    });
  });
}
