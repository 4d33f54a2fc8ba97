import type { MatrixError } from '@hsmedia/errors';
import { errors } from '@hsmedia/errors';
import type { BlobCache } from './blob-cache.js';
import { contentDispositionFor } from './content-headers.js';
import type { ByteRange, MediaHandle, ThumbnailHandle } from './media-handle.js';
import type { BlobStore, MediaRecord, StoredThumbnail } from './ports/index.js';

/** Where a {@link StoredMediaHandle} reads its bytes, and what it does when they are gone. */
export interface BlobReader {
  readonly blobs: BlobStore;
  readonly cache: BlobCache;
  /** The error for a blob that is missing from the store (logs it, drops cached state). */
  missing(handle: StoredMediaHandle): MatrixError;
}

/** What a {@link StoredMediaHandle} serves. */
export interface StoredBytes {
  readonly record: MediaRecord;
  readonly blobId: string;
  readonly size: number;
  readonly contentType: string;
  readonly uploadName: string | null;
  /** Quoted strong entity tag. */
  readonly etag: string;
  /** Set for a thumbnail of `record`. */
  readonly thumbnail?: StoredThumbnail;
  readonly fromRemote?: boolean;
}

/**
 * The one handle of stored bytes: local media, cached remote media and
 * thumbnails alike. Stateless apart from the memoised Content-Disposition,
 * so the catalog keeps one per cached record (or thumbnail row) and every
 * request for it gets the same object. Small blobs come from the
 * {@link BlobCache}; larger ones stream from the {@link BlobStore}.
 */
export class StoredMediaHandle implements MediaHandle {
  readonly record: MediaRecord;
  readonly live: false = false;
  readonly blobId: string;
  readonly size: number;
  readonly contentType: string;
  readonly uploadName: string | null;
  readonly etag: string;
  readonly thumbnail: StoredThumbnail | undefined;
  readonly fromRemote: boolean;
  readonly #reader: BlobReader;
  #disposition: string | undefined;

  constructor(bytes: StoredBytes, reader: BlobReader) {
    this.record = bytes.record;
    this.blobId = bytes.blobId;
    this.size = bytes.size;
    this.contentType = bytes.contentType;
    this.uploadName = bytes.uploadName;
    this.etag = bytes.etag;
    this.thumbnail = bytes.thumbnail;
    this.fromRemote = bytes.fromRemote ?? false;
    this.#reader = reader;
  }

  /** Computed once per handle: headers of a hot item are not rebuilt per request. */
  get contentDisposition(): string {
    return (this.#disposition ??= contentDispositionFor(this.contentType, this.uploadName));
  }

  /** True when this handle serves a thumbnail (then `thumbnail` is set). */
  isThumbnail(): this is ThumbnailHandle {
    return this.thumbnail !== undefined;
  }

  discard(): void {}

  cachedSmall(): Uint8Array | undefined {
    const { cache } = this.#reader;
    if (this.size > cache.maxItemBytes) return undefined;
    // Misses are counted by the readSmall that follows, so each lookup counts once.
    const cached = cache.peek(this.blobId);
    if (cached !== undefined) cache.lookup(this.blobId);
    return cached;
  }

  async readSmall(signal?: AbortSignal): Promise<Uint8Array | null> {
    const { cache, blobs } = this.#reader;
    if (this.size > cache.maxItemBytes) return null;
    const cached = cache.lookup(this.blobId);
    if (cached !== undefined) return cached;
    const stream = await blobs.open(this.blobId, signal === undefined ? {} : { signal });
    if (stream === null) throw this.#reader.missing(this);
    const bytes = await readExactly(stream, this.size);
    if (bytes === null) throw errors.unknown(this.thumbnail === undefined ? 'Stored media is damaged' : 'Stored thumbnail is damaged');
    cache.set(this.blobId, bytes);
    return bytes;
  }

  async open(range?: ByteRange, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const cached = this.size <= this.#reader.cache.maxItemBytes ? this.#reader.cache.peek(this.blobId) : undefined;
    if (cached !== undefined) {
      const slice = range === undefined ? cached : cached.subarray(range.start, range.end + 1);
      return new ReadableStream<Uint8Array>({
        start(controller) {
          if (slice.byteLength > 0) controller.enqueue(slice);
          controller.close();
        },
      });
    }
    const stream = await this.#reader.blobs.open(this.blobId, {
      ...(range === undefined ? {} : { start: range.start, end: range.end }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (stream === null) throw this.#reader.missing(this);
    return stream;
  }
}

/** Reads a stream that must hold exactly `size` bytes; null when it holds another amount. */
async function readExactly(stream: ReadableStream<Uint8Array>, size: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(size);
  let offset = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (offset + value.byteLength > size) {
        await reader.cancel();
        return null;
      }
      out.set(value, offset);
      offset += value.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  return offset === size ? out : null;
}
