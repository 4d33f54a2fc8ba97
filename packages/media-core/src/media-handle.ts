import type { MediaRecord, StoredThumbnail } from './ports/index.js';

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * A servable media item. Reading it never touches the metadata store again.
 *
 * A *live* handle (`live: true`) is given to the first caller of uncached
 * remote media: its bytes are still arriving from the remote server, so its
 * size may be unknown, it has no entity tag, it can be opened once and only
 * whole, and its stream errors (never ends short) if the remote fails.
 */
export interface MediaHandle {
  /** The stored record; for a live handle, the record it will be stored as (no blob yet). */
  readonly record: MediaRecord;
  /** True while the bytes are still arriving from a remote server (see above). */
  readonly live: boolean;
  /** The Content-Type to serve: as stored, or `application/octet-stream` when none is known. */
  readonly contentType: string;
  readonly uploadName: string | null;
  /** The `Content-Disposition` for the stored name and type (see `contentDispositionFor`). */
  readonly contentDisposition: string;
  /** Size in bytes; null for a live handle whose remote sent no Content-Length. */
  readonly size: number | null;
  /** Strong entity tag (quoted), derived from the stored bytes; null for a live handle. */
  readonly etag: string | null;
  /**
   * The whole content when it is small enough for the in-memory cache (read
   * and cached on first call, answered from memory afterwards); null for
   * larger media, which callers stream with {@link MediaHandle.open}.
   */
  readSmall(signal?: AbortSignal): Promise<Uint8Array | null>;
  /**
   * The whole content when it is already in the in-memory cache, without
   * I/O; undefined otherwise (then use {@link MediaHandle.readSmall}). Lets a
   * server answer a cache hit without a promise or an abort signal.
   */
  cachedSmall(): Uint8Array | undefined;
  /** A stream of the content, or of the inclusive range (ranges are refused on live handles). */
  open(range?: ByteRange, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>;
  /**
   * Call when the handle will not be opened (HEAD, 304): a live handle then
   * stops holding its remote fetch back. A no-op for stored media.
   */
  discard(): void;
}

/**
 * A servable thumbnail: a {@link MediaHandle} (so the download code serves
 * it, ETag and 304 included) whose type is the thumbnail's real type and
 * whose name is `thumbnail.<ext>`.
 */
export interface ThumbnailHandle extends MediaHandle {
  readonly thumbnail: StoredThumbnail;
  /**
   * The thumbnail was made by the media's own server (remote media whose
   * original is not cached here). `record` is then a stand-in naming the
   * media (`blobId`, `size`, `contentType` null): no media row exists.
   */
  readonly fromRemote: boolean;
}
