import type { Readable } from 'node:stream';
import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import {
  DEFAULT_CONTENT_TYPE,
  normaliseUploadContentType,
  normaliseUploadFilename,
  parseContentDisposition,
} from './content-headers.js';
import { ContentTooLargeError, RemoteMediaError } from './errors.js';
import { formatMxcUri, generateId, isValidMediaId, isValidServerName } from './ids.js';
import { WeightedLru } from './media-service-lru.js';
import {
  noopLogger,
  systemClock,
  type BlobStore,
  type ByteSource,
  type Clock,
  type Logger,
  type MediaMetadataStore,
  type MediaRecord,
  type RemoteMediaSource,
  type Requester,
} from './ports.js';

/** In-memory cache sizes of {@link MediaService}. */
export interface MediaCacheOptions {
  /** Metadata records kept in memory. Default 10 000; 0 disables the record cache. */
  readonly maxRecords?: number;
  /** Largest blob kept in memory, in bytes. Default 64 KiB; 0 disables the blob cache. */
  readonly maxBlobBytes?: number;
  /** Total bytes of cached blobs. Default 64 MiB. */
  readonly maxTotalBytes?: number;
  /**
   * How long a cached record is trusted, in ms. Media is write-once, so this
   * only bounds how long another instance's delete or quarantine can go
   * unnoticed here. Default 60 000.
   */
  readonly recordTtlMs?: number;
}

/** Options for {@link MediaService}. */
export interface MediaServiceOptions {
  /** This server's name: the authority of the `mxc://` URIs it mints. */
  readonly serverName: string;
  readonly blobs: BlobStore;
  readonly metadata: MediaMetadataStore;
  /** Largest accepted upload in bytes (also advertised as `m.upload.size`). */
  readonly maxUploadBytes: number;
  /**
   * Freeze the deprecated unauthenticated endpoints (spec v1.11 §"freeze",
   * digest §1.12): media stored while true is flagged `authenticated` and is
   * never served with `legacy: true`. Media from before stays served.
   */
  readonly freezeLegacy?: boolean;
  /** Where other servers' media comes from; without it, remote media is 404. */
  readonly remote?: RemoteMediaSource;
  /** Largest remote media fetched and cached. Default `maxUploadBytes`. */
  readonly maxRemoteBytes?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly cache?: MediaCacheOptions;
  /**
   * Access times are batched in memory and written at most this often (ms),
   * so hot downloads cost no database write. Default 60 000; 0 disables
   * access-time tracking.
   */
  readonly touchIntervalMs?: number;
  /** Poll interval while waiting for an async upload (`timeout_ms`). Default 500 ms. */
  readonly pendingPollMs?: number;
}

/** An upload as the HTTP edge hands it over. */
export interface UploadRequest {
  /** The raw request body; a Node `IncomingMessage` is fine. */
  readonly body: ByteSource;
  /** The request's Content-Type, verbatim (missing or blank → `application/octet-stream`). */
  readonly contentType?: string;
  /** The `filename` query parameter, already decoded (empty → none). */
  readonly filename?: string;
  readonly requester: Requester;
  /** The declared Content-Length, to refuse an oversized upload before reading it. */
  readonly contentLength?: number;
  /** Aborts the upload (the client went away); nothing is stored. */
  readonly signal?: AbortSignal;
}

/** What an upload produced. */
export interface UploadResult {
  readonly contentUri: string;
  readonly mediaId: string;
}

/** Options for {@link MediaService.getMedia}. */
export interface GetMediaOptions {
  /** The request came through a deprecated unauthenticated endpoint (freeze applies). */
  readonly legacy?: boolean;
  /** Legacy `allow_remote` (default true): when false, no remote fetch is started. */
  readonly allowRemote?: boolean;
  /** How long to wait for a pending async upload (default 20 000, capped at 60 000). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** A servable media item. Reading it never touches the metadata store again. */
export interface MediaHandle {
  readonly record: MediaRecord;
  /** The Content-Type to serve: as stored, or `application/octet-stream` when none is known. */
  readonly contentType: string;
  readonly uploadName: string | null;
  readonly size: number;
  /** Strong entity tag (quoted), derived from the SHA-256 of the bytes. */
  readonly etag: string;
  /**
   * The whole content when it is small enough for the in-memory cache (read
   * and cached on first call, answered from memory afterwards); null for
   * larger media, which callers stream with {@link MediaHandle.open}.
   */
  readSmall(signal?: AbortSignal): Promise<Uint8Array | null>;
  /** A stream of the content, or of the inclusive range. */
  open(range?: ByteRange, signal?: AbortSignal): Promise<ReadableStream<Uint8Array> | Readable>;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const MAX_TIMEOUT_MS = 60_000;
const INSERT_ATTEMPTS = 5;

function requirePositiveInteger(name: string, value: number, allowZero = false): number {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new TypeError(`MediaService: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${value}`);
  }
  return value;
}

function mediaNotFound(): MatrixError {
  return errors.notFound('Media not found');
}

/**
 * The framework-free media repository: uploads, lookups and reads over the
 * {@link BlobStore} and {@link MediaMetadataStore} ports. Every rule that is
 * not HTTP syntax lives here (IDs, limits, freeze, quarantine, remote media),
 * and every failure it reports is a `MatrixError` ready for the client.
 *
 * Hot paths are served from memory: a bounded LRU of metadata records and
 * one of small blobs, so a popular avatar costs neither a query nor a read.
 * Access times are batched.
 *
 * The service does not own the stores: `close()` flushes its own state, the
 * caller closes the stores it created.
 *
 * @example
 * ```ts
 * const media = new MediaService({ serverName: 'example.org', blobs, metadata, maxUploadBytes: 50 << 20 });
 * const { contentUri } = await media.upload({ body: req, contentType: 'image/png', requester });
 * const handle = await media.getMedia('example.org', mediaId);
 * const body = (await handle.readSmall()) ?? (await handle.open());
 * ```
 */
export class MediaService {
  readonly serverName: string;
  readonly #blobs: BlobStore;
  readonly #metadata: MediaMetadataStore;
  readonly #maxUploadBytes: number;
  readonly #freezeLegacy: boolean;
  readonly #remote: RemoteMediaSource | undefined;
  readonly #maxRemoteBytes: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #records: WeightedLru<string, MediaRecord>;
  readonly #recordTtlMs: number;
  readonly #smallBlobs: WeightedLru<string, Uint8Array>;
  readonly #maxBlobBytes: number;
  readonly #pendingPollMs: number;
  readonly #remoteFetches = new Map<string, Promise<MediaRecord>>();
  readonly #touches = new Map<string, { serverName: string; mediaId: string; at: number }>();
  readonly #touchTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(options: MediaServiceOptions) {
    if (!isValidServerName(options.serverName)) {
      throw new TypeError(`MediaService: invalid serverName ${JSON.stringify(options.serverName)}`);
    }
    if (!options.blobs || !options.metadata) throw new TypeError('MediaService: blobs and metadata are required');
    this.serverName = options.serverName;
    this.#blobs = options.blobs;
    this.#metadata = options.metadata;
    this.#maxUploadBytes = requirePositiveInteger('maxUploadBytes', options.maxUploadBytes);
    this.#freezeLegacy = options.freezeLegacy ?? false;
    this.#remote = options.remote;
    this.#maxRemoteBytes = requirePositiveInteger('maxRemoteBytes', options.maxRemoteBytes ?? options.maxUploadBytes);
    this.#logger = options.logger ?? noopLogger;
    this.#clock = options.clock ?? systemClock;
    const cache = options.cache ?? {};
    this.#records = new WeightedLru(requirePositiveInteger('cache.maxRecords', cache.maxRecords ?? 10_000, true));
    this.#recordTtlMs = requirePositiveInteger('cache.recordTtlMs', cache.recordTtlMs ?? 60_000, true);
    this.#maxBlobBytes = requirePositiveInteger('cache.maxBlobBytes', cache.maxBlobBytes ?? 64 * 1024, true);
    const maxTotalBytes = requirePositiveInteger('cache.maxTotalBytes', cache.maxTotalBytes ?? 64 * 1024 * 1024, true);
    this.#smallBlobs = new WeightedLru(Number.MAX_SAFE_INTEGER, maxTotalBytes);
    this.#pendingPollMs = requirePositiveInteger('pendingPollMs', options.pendingPollMs ?? 500);
    const touchIntervalMs = requirePositiveInteger('touchIntervalMs', options.touchIntervalMs ?? 60_000, true);
    if (touchIntervalMs > 0) {
      this.#touchTimer = setInterval(() => void this.flushAccessTimes(), touchIntervalMs);
      this.#touchTimer.unref();
    }
  }

  /** The client-visible media config (`GET /_matrix/client/v1/media/config`). */
  uploadConfig(): { 'm.upload.size': number } {
    return { 'm.upload.size': this.#maxUploadBytes };
  }

  /** True when `serverName` is this server. */
  isLocal(serverName: string): boolean {
    return serverName === this.serverName;
  }

  /**
   * Stores an upload: streams it into a staging blob while enforcing the size
   * limit, then commits the blob and its metadata record. Nothing is stored
   * when it fails, is too large or is aborted.
   *
   * Errors: 403 `M_GUEST_ACCESS_FORBIDDEN` (guest), 400 `M_INVALID_PARAM`
   * (unusable Content-Type or filename), 413 `M_TOO_LARGE`.
   */
  async upload(request: UploadRequest): Promise<UploadResult> {
    const { requester, signal } = request;
    if (requester.isGuest) {
      throw new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guests cannot upload media');
    }
    const contentType = normaliseUploadContentType(request.contentType);
    if (contentType === null) throw errors.invalidParam('Invalid Content-Type');
    const filename = normaliseUploadFilename(request.filename);
    if (filename === null) throw errors.invalidParam('Invalid filename');
    if (request.contentLength !== undefined && request.contentLength > this.#maxUploadBytes) {
      throw this.#uploadTooLarge();
    }
    signal?.throwIfAborted();

    let stored;
    try {
      stored = await this.#blobs.put(request.body, {
        maxBytes: this.#maxUploadBytes,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (err) {
      if (err instanceof ContentTooLargeError) throw this.#uploadTooLarge();
      throw err;
    }
    try {
      // The client left after the last byte but before we answered: it never learns the URI.
      signal?.throwIfAborted();
      const now = this.#clock.now();
      for (let attempt = 0; attempt < INSERT_ATTEMPTS; attempt++) {
        const record: MediaRecord = {
          serverName: this.serverName,
          mediaId: generateId(),
          blobId: stored.blobId,
          contentType,
          uploadName: filename ?? null,
          size: stored.size,
          sha256: stored.sha256,
          userId: requester.userId,
          createdAt: now,
          uploadedAt: now,
          expiresAt: null,
          authenticated: this.#freezeLegacy,
          quarantined: false,
          lastAccessAt: null,
        };
        if (await this.#metadata.insertMedia(record)) {
          this.#cacheRecord(record);
          this.#logger.debug(
            { mediaId: record.mediaId, size: record.size, userId: requester.userId },
            'media uploaded',
          );
          return { contentUri: formatMxcUri(this.serverName, record.mediaId), mediaId: record.mediaId };
        }
      }
      throw new Error('MediaService: could not allocate a unique media ID');
    } catch (err) {
      await this.#deleteBlobQuietly(stored.blobId);
      throw err;
    }
  }

  /**
   * Looks up a media item for serving.
   *
   * Errors: 400 `M_INVALID_PARAM` for a malformed server name; 404
   * `M_NOT_FOUND` for a malformed or unknown media ID, quarantined media,
   * frozen media on a legacy request, expired async IDs and remote media
   * when no remote source is configured (or `allowRemote` is false);
   * 504 `M_NOT_YET_UPLOADED` when an async upload does not arrive in time;
   * 502/504 for remote failures.
   */
  async getMedia(serverName: string, mediaId: string, options: GetMediaOptions = {}): Promise<MediaHandle> {
    if (!isValidServerName(serverName)) throw errors.invalidParam('Invalid server name');
    // Spec grammar check before any lookup: hostile IDs never reach a store (digest §1.0).
    if (!isValidMediaId(mediaId)) throw mediaNotFound();
    const key = `${serverName}/${mediaId}`;
    let record = this.#records.get(key, this.#clock.now()) ?? null;
    if (record === null) {
      record = await this.#metadata.getMedia(serverName, mediaId);
      if (record !== null && record.blobId !== null) this.#cacheRecord(record);
    }
    if (record === null) {
      if (this.isLocal(serverName)) throw mediaNotFound();
      if (this.#remote === undefined || options.allowRemote === false) throw mediaNotFound();
      record = await this.#fetchRemote(serverName, mediaId, options);
    }
    if (record.blobId === null) record = await this.#waitForUpload(record, options);
    if (record.quarantined) throw mediaNotFound();
    if (options.legacy === true && record.authenticated) throw mediaNotFound();
    this.#noteAccess(key, serverName, mediaId);
    return this.#handleFor(record);
  }

  /**
   * Deletes a media item (record first, then its blob when no other record
   * uses it) and drops it from the caches. True when it existed.
   */
  async deleteMedia(serverName: string, mediaId: string): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const record = await this.#metadata.getMedia(serverName, mediaId);
    this.invalidate(serverName, mediaId);
    if (record === null) return false;
    const deleted = await this.#metadata.deleteMedia(serverName, mediaId);
    if (record.blobId !== null) {
      this.#smallBlobs.delete(record.blobId);
      if (!(await this.#metadata.isBlobReferenced(record.blobId))) await this.#deleteBlobQuietly(record.blobId);
    }
    return deleted;
  }

  /** Forgets any cached state of a media item (call after changing it behind the service's back). */
  invalidate(serverName: string, mediaId: string): void {
    const key = `${serverName}/${mediaId}`;
    const record = this.#records.get(key, Number.NEGATIVE_INFINITY);
    if (record?.blobId) this.#smallBlobs.delete(record.blobId);
    this.#records.delete(key);
  }

  /** Writes the batched access times now. Failures are logged, not thrown. */
  async flushAccessTimes(): Promise<void> {
    if (this.#touches.size === 0) return;
    const batch = [...this.#touches.values()];
    this.#touches.clear();
    for (const { serverName, mediaId, at } of batch) {
      try {
        await this.#metadata.touchMedia(serverName, mediaId, at);
      } catch (err) {
        this.#logger.warn({ err, serverName, mediaId }, 'could not record media access time');
      }
    }
  }

  /** Stops timers and flushes batched access times. Does not close the stores. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#touchTimer !== undefined) clearInterval(this.#touchTimer);
    await this.flushAccessTimes();
    await Promise.allSettled(this.#remoteFetches.values());
    this.#records.clear();
    this.#smallBlobs.clear();
  }

  #uploadTooLarge(): MatrixError {
    return errors.tooLarge(`Cannot upload files larger than ${this.#maxUploadBytes} bytes`);
  }

  #cacheRecord(record: MediaRecord): void {
    // Only complete records: a pending one changes when its upload lands.
    if (record.blobId === null) return;
    this.#records.set(`${record.serverName}/${record.mediaId}`, record, 1, this.#clock.now() + this.#recordTtlMs);
  }

  #noteAccess(key: string, serverName: string, mediaId: string): void {
    if (this.#touchTimer === undefined) return;
    this.#touches.set(key, { serverName, mediaId, at: this.#clock.now() });
  }

  async #deleteBlobQuietly(blobId: string): Promise<void> {
    try {
      await this.#blobs.delete(blobId);
    } catch (err) {
      this.#logger.error({ err, blobId }, 'could not delete blob; it is now an orphan');
    }
  }

  /** Waits for an async (`/create`) upload to arrive, polling the metadata store. */
  async #waitForUpload(initial: MediaRecord, options: GetMediaOptions): Promise<MediaRecord> {
    const timeoutMs = Math.min(Math.max(0, options.timeoutMs ?? DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS);
    const deadline = this.#clock.now() + timeoutMs;
    let record: MediaRecord | null = initial;
    for (;;) {
      if (record === null) throw mediaNotFound();
      if (record.blobId !== null) {
        this.#cacheRecord(record);
        return record;
      }
      const now = this.#clock.now();
      if (record.expiresAt !== null && record.expiresAt <= now) throw mediaNotFound();
      if (now >= deadline) throw errors.notYetUploaded();
      await sleep(Math.min(this.#pendingPollMs, deadline - now), options.signal);
      record = await this.#metadata.getMedia(initial.serverName, initial.mediaId);
    }
  }

  /**
   * Fetches remote media once however many callers ask, stores it as a blob
   * and caches its record. A failed or oversized fetch leaves nothing behind.
   */
  #fetchRemote(serverName: string, mediaId: string, options: GetMediaOptions): Promise<MediaRecord> {
    const key = `${serverName}/${mediaId}`;
    let pending = this.#remoteFetches.get(key);
    if (!pending) {
      const timeoutMs = Math.min(Math.max(1, options.timeoutMs ?? DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS);
      pending = this.#fetchRemoteOnce(serverName, mediaId, timeoutMs);
      this.#remoteFetches.set(key, pending);
      const forget = (): void => void this.#remoteFetches.delete(key);
      pending.then(forget, forget);
    }
    const { signal } = options;
    if (!signal) return pending;
    // The fetch is shared, so one caller leaving must not cancel it for the others.
    return raceAbort(pending, signal);
  }

  async #fetchRemoteOnce(serverName: string, mediaId: string, timeoutMs: number): Promise<MediaRecord> {
    const remote = this.#remote!;
    const maxBytes = this.#maxRemoteBytes;
    let stored;
    let contentType: string;
    let uploadName: string | null;
    try {
      const media = await remote.fetchMedia({ serverName, mediaId, maxBytes, timeoutMs });
      if (media.contentLength !== null && media.contentLength > maxBytes) {
        await media.body.cancel().catch(() => undefined);
        throw new ContentTooLargeError(maxBytes);
      }
      contentType = normaliseUploadContentType(media.contentType ?? undefined) ?? DEFAULT_CONTENT_TYPE;
      const disposition = media.contentDisposition ? parseContentDisposition(media.contentDisposition) : null;
      uploadName = normaliseUploadFilename(disposition?.filename ?? undefined) ?? null;
      stored = await this.#blobs.put(media.body, { maxBytes });
    } catch (err) {
      throw this.#remoteError(err, serverName, mediaId);
    }
    const now = this.#clock.now();
    const record: MediaRecord = {
      serverName,
      mediaId,
      blobId: stored.blobId,
      contentType,
      uploadName,
      size: stored.size,
      sha256: stored.sha256,
      userId: null,
      createdAt: now,
      uploadedAt: now,
      expiresAt: null,
      // Spec §1.12: remote media cached while frozen counts as new.
      authenticated: this.#freezeLegacy,
      quarantined: false,
      lastAccessAt: now,
    };
    try {
      if (await this.#metadata.insertMedia(record)) {
        this.#cacheRecord(record);
        return record;
      }
      // Another instance cached it first: use theirs.
      await this.#deleteBlobQuietly(stored.blobId);
      const theirs = await this.#metadata.getMedia(serverName, mediaId);
      if (theirs === null) throw mediaNotFound();
      this.#cacheRecord(theirs);
      return theirs;
    } catch (err) {
      await this.#deleteBlobQuietly(stored.blobId);
      throw err;
    }
  }

  #remoteError(err: unknown, serverName: string, mediaId: string): MatrixError {
    if (err instanceof MatrixError) return err;
    if (err instanceof ContentTooLargeError) {
      return errors.tooLarge('Remote content is too large', 502);
    }
    if (err instanceof RemoteMediaError) {
      this.#logger.info({ serverName, mediaId, failure: err.failure, err }, 'remote media fetch failed');
      switch (err.failure) {
        case 'not_found':
          return mediaNotFound();
        case 'too_large':
          return errors.tooLarge('Remote content is too large', 502);
        case 'timeout':
          return errors.unknown('Timed out fetching remote media', 504);
        default:
          return errors.unknown('Failed to fetch remote media', 502);
      }
    }
    this.#logger.error({ serverName, mediaId, err }, 'remote media fetch failed unexpectedly');
    return errors.unknown('Failed to fetch remote media', 502);
  }

  #handleFor(record: MediaRecord): MediaHandle {
    const blobId = record.blobId!;
    const size = record.size ?? 0;
    const blobs = this.#blobs;
    const smallBlobs = this.#smallBlobs;
    const maxBlobBytes = this.#maxBlobBytes;
    const onMissing = (): MatrixError => {
      this.#logger.error({ serverName: record.serverName, mediaId: record.mediaId, blobId }, 'blob of a media record is missing');
      this.invalidate(record.serverName, record.mediaId);
      return mediaNotFound();
    };
    const storedType = record.contentType === null ? null : normaliseUploadContentType(record.contentType);
    return {
      record,
      contentType: storedType ?? DEFAULT_CONTENT_TYPE,
      uploadName: record.uploadName,
      size,
      etag: `"${record.sha256 ?? `${blobId}-${size}`}"`,
      async readSmall(signal?: AbortSignal): Promise<Uint8Array | null> {
        if (size > maxBlobBytes) return null;
        const cached = smallBlobs.get(blobId, 0);
        if (cached !== undefined) return cached;
        const stream = await blobs.open(blobId, signal === undefined ? {} : { signal });
        if (stream === null) throw onMissing();
        const bytes = await readExactly(stream, size);
        if (bytes === null) {
          throw errors.unknown('Stored media is damaged');
        }
        smallBlobs.set(blobId, bytes, bytes.byteLength);
        return bytes;
      },
      async open(range?: ByteRange, signal?: AbortSignal): Promise<ReadableStream<Uint8Array> | Readable> {
        const cached = range === undefined || size <= maxBlobBytes ? smallBlobs.get(blobId, 0) : undefined;
        if (cached !== undefined) {
          const slice = range === undefined ? cached : cached.subarray(range.start, range.end + 1);
          return new ReadableStream<Uint8Array>({
            start(controller) {
              if (slice.byteLength > 0) controller.enqueue(slice);
              controller.close();
            },
          });
        }
        const stream = await blobs.open(blobId, {
          ...(range === undefined ? {} : { start: range.start, end: range.end }),
          ...(signal === undefined ? {} : { signal }),
        });
        if (stream === null) throw onMissing();
        return stream;
      },
    };
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

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
