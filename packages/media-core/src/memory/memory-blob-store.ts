import { createHash, randomBytes } from 'node:crypto';
import { ContentTooLargeError } from '@hsmedia/errors';
import type { BlobPutOptions, BlobReadOptions, BlobStaging, BlobStore, ByteSource, ListedBlob, StagedBlob, StoredBlob } from '../ports/index.js';
import { pullerOf, releaseUnread } from './byte-puller.js';

/** Size of the chunks `open` streams, pulled one at a time as the reader asks (like a file's). */
const READ_CHUNK_BYTES = 64 * 1024;

function checkOffset(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * A {@link BlobStore} in process memory, for tests, demos and examples.
 * It keeps the contract of the real stores (and passes the same
 * `@hsmedia/conformance` suite): `put` counts, hashes (SHA-256) and enforces
 * `maxBytes` while it reads, rejecting with {@link ContentTooLargeError} as
 * soon as the limit is passed; an error, an abort or an exceeded limit
 * closes the source and stores nothing. Blob IDs are random (24 characters
 * of `[A-Za-z0-9_-]`); any other ID is simply not found. Bytes are copied in
 * and out, so neither the writer's nor the reader's buffers alias the store.
 *
 * @example
 * ```ts
 * const blobs = new MemoryBlobStore();
 * const { blobId, sha256 } = await blobs.put(request.body, { maxBytes: 1024 * 1024, signal });
 * const first = await blobs.open(blobId, { start: 0, end: 99 });
 * ```
 */
export class MemoryBlobStore implements BlobStore, BlobStaging {
  readonly #blobs = new Map<string, Uint8Array>();
  readonly #modifiedAt = new Map<string, number>();

  /** How many blobs the store holds (handy for "nothing leaked" checks in tests). */
  get blobCount(): number {
    return this.#blobs.size;
  }

  /**
   * Reads `source` to the end while counting and hashing, then stores it
   * under a new ID. Rejects with {@link ContentTooLargeError} once more than
   * `maxBytes` arrive, with the abort reason when `signal` fires, with the
   * source's own error when it fails, and with a `TypeError` for a chunk that
   * is not a `Uint8Array`; in each case the source is closed and nothing is kept.
   */
  async put(source: ByteSource, options: BlobPutOptions = {}): Promise<StoredBlob> {
    const staged = await this.stageBlob(source, options);
    const blobId = randomBytes(18).toString('base64url');
    await staged.publishAs(blobId);
    return { blobId, size: staged.size, sha256: staged.sha256 };
  }

  /** Like {@link put}, but the bytes stay staged until `publishAs` names them. */
  async stageBlob(source: ByteSource, options: BlobPutOptions = {}): Promise<StagedBlob> {
    const { maxBytes = Number.POSITIVE_INFINITY, signal } = options;
    try {
      if (!(maxBytes === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxBytes) && maxBytes >= 0))) {
        throw new RangeError(`maxBytes must be a non-negative safe integer, got ${maxBytes}`);
      }
      signal?.throwIfAborted();
    } catch (error) {
      await releaseUnread(source, error);
      throw error;
    }

    const puller = pullerOf(source);
    const hash = createHash('sha256');
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for (;;) {
        const step = await puller.next(signal);
        if (step.done === true) break;
        const chunk: unknown = step.value;
        if (!(chunk instanceof Uint8Array)) throw new TypeError('MemoryBlobStore: the source yielded a chunk that is not a Uint8Array');
        size += chunk.byteLength;
        if (size > maxBytes) throw new ContentTooLargeError(maxBytes);
        if (chunk.byteLength === 0) continue;
        // A copy: the writer may reuse its buffer once it has handed the chunk over.
        const copy = chunk.slice();
        hash.update(copy);
        chunks.push(copy);
      }
      signal?.throwIfAborted();
    } catch (error) {
      await puller.release(error);
      throw error;
    }
    puller.finish();
    let bytes: Uint8Array | null = concat(chunks, size);
    const blobs = this.#blobs;
    const modifiedAt = this.#modifiedAt;
    return {
      size,
      sha256: hash.digest('hex'),
      async publishAs(blobId: string): Promise<void> {
        if (bytes === null) throw new Error('MemoryBlobStore: the staged bytes were already published or discarded');
        blobs.set(blobId, bytes);
        modifiedAt.set(blobId, Date.now());
        bytes = null;
      },
      async discard(): Promise<void> {
        bytes = null;
      },
    };
  }

  /** Every blob and when it was stored. */
  async *listBlobs(): AsyncIterable<ListedBlob> {
    for (const blobId of [...this.#blobs.keys()]) yield { blobId, modifiedAt: this.#modifiedAt.get(blobId) ?? 0 };
  }

  /**
   * A stream of the blob, or of the inclusive range `[start, end]` (an `end`
   * past the last byte is clamped), or null when the blob does not exist.
   * Throws `RangeError` for negative, fractional or inverted offsets, and
   * rejects when `signal` is already aborted; aborting it later errors the
   * stream. A blob deleted while a reader is open is still read to the end.
   */
  async open(blobId: string, options: BlobReadOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const { start = 0, end, signal } = options;
    checkOffset('start', start);
    checkOffset('end', end);
    if (end !== undefined && end < start) throw new RangeError(`end (${end}) is before start (${start})`);
    signal?.throwIfAborted();
    const bytes = this.#blobs.get(blobId);
    if (bytes === undefined) return null;
    const stop = Math.min(end ?? Number.POSITIVE_INFINITY, bytes.byteLength - 1) + 1;
    let offset = start;
    let onAbort: (() => void) | undefined;
    const detach = (): void => {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      onAbort = undefined;
    };
    return new ReadableStream<Uint8Array>({
      start(controller) {
        if (signal === undefined) return;
        onAbort = () => controller.error(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
      },
      pull(controller) {
        if (offset < stop) {
          const next = Math.min(offset + READ_CHUNK_BYTES, stop);
          // A copy: a reader that writes into its chunk must not change the blob.
          controller.enqueue(bytes.slice(offset, next));
          offset = next;
        }
        if (offset >= stop) {
          detach();
          controller.close();
        }
      },
      cancel() {
        detach();
      },
    });
  }

  /** The blob's size, or null when it does not exist. */
  async stat(blobId: string): Promise<{ readonly size: number } | null> {
    const bytes = this.#blobs.get(blobId);
    return bytes === undefined ? null : { size: bytes.byteLength };
  }

  /** Removes the blob; true when it existed. */
  async delete(blobId: string): Promise<boolean> {
    this.#modifiedAt.delete(blobId);
    return this.#blobs.delete(blobId);
  }

  /** Always 0: a write in progress lives only inside its `put` call, and a failed one leaves nothing. */
  async cleanupStaging(): Promise<number> {
    return 0;
  }
}
