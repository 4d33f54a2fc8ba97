import { errors, type MatrixError } from '@hsmedia/errors';
import { noopLogger, systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import { BlobCache } from './blob-cache.js';
import { BlockedHashGate } from './blocked-hash-gate.js';
import { DEFAULT_CONTENT_TYPE, normaliseUploadContentType } from './content-headers.js';
import { WeightedLru } from './internal/weighted-lru.js';
import { followMediaChanges } from './media-change-sync.js';
import type { ThumbnailHandle } from './media-handle.js';
import { hasMediaRecordBatches, type MediaChange, type MediaChangeFeed } from './ports/index.js';
import type { BlobStore, BlockedHashes, MediaAdmission, MediaCandidate, MediaRecord, MediaRecordStore, StoredBlob, StoredThumbnail, ThumbnailIndex } from './ports/index.js';
import { StoredMediaHandle, type BlobReader } from './stored-media-handle.js';

/** In-memory cache sizes of the {@link MediaCatalog}. */
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
  /** Bytes of thumbnails kept in memory. Default 32 MiB; 0 disables. */
  readonly thumbnailBytes?: number;
}

/** Options of a {@link MediaCatalog}. */
export interface MediaCatalogOptions {
  readonly serverName: string;
  readonly blobs: BlobStore;
  readonly records: MediaRecordStore;
  readonly thumbnails: ThumbnailIndex;
  readonly cache?: MediaCacheOptions | undefined;
  /** The stage between "bytes stored" and "media visible"; none admits everything. */
  readonly admission?: MediaAdmission | undefined;
  /**
   * The blocked-hash list: blocked bytes are refused at admission (before
   * `admission`) and records with a blocked hash are not served. None: no list.
   */
  readonly blockedHashes?: BlockedHashes | undefined;
  /** How long an answer of the list is trusted, in ms (another instance's block bites within it). Default 10 000. */
  readonly blockedHashTtlMs?: number | undefined;
  /** Access times are batched and written at most this often (ms). Default 60 000; 0 disables tracking. */
  readonly touchIntervalMs?: number | undefined;
  /**
   * Where changes that other processes must see are announced (quarantine,
   * protection, deletion, async completion, blocked hashes), and whose
   * changes this catalog applies to its caches. None: this process only,
   * other instances notice within `recordTtlMs` / `blockedHashTtlMs`.
   */
  readonly changes?: MediaChangeFeed | undefined;
  /** Called on every in-memory cache lookup (metrics). Must not throw. */
  readonly onCacheLookup?: ((cache: 'record' | 'blob', hit: boolean) => void) | undefined;
  /** New media is stored `pending` a virus scan and served only once `clean` (see `MediaScanStage`). Default false. */
  readonly scanNewMedia?: boolean | undefined;
  readonly logger?: Logger | undefined;
  readonly clock?: Clock | undefined;
}

/** Largest thumbnail kept in memory. */
const MAX_CACHED_THUMBNAIL_BYTES = 1024 * 1024;

function nonNegative(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`MediaCatalog: ${name} must be a non-negative integer, got ${value}`);
  return value;
}

/**
 * (Past 300 lines, and its file past 450, with its doc comments: the caches,
 * the writes that must invalidate them and the announcements of those writes
 * to other processes belong in one class, which is the point of it; applying
 * other processes' changes lives in `media-change-sync.ts`.)
 *
 * The media records and what is cached of them: the only object that knows
 * both the stores and the caches, so every change to a record (publish,
 * complete, quarantine, protect, delete) goes through here and every cache
 * (records, small blobs, handles, thumbnail rows of the thumbnail service)
 * stays in step. The upload, remote-fetch, thumbnail and admin services share
 * one catalog.
 *
 * - Records: a bounded LRU of complete records (pending ones change when
 *   their upload lands), trusted for `recordTtlMs`.
 * - Handles: one {@link StoredMediaHandle} per cached record object.
 * - Blobs: small media and thumbnails in memory ({@link BlobCache}).
 * - Access times: batched in memory, written every `touchIntervalMs`.
 * - Publishing: {@link admit} runs the admission stage; {@link publish}
 *   writes the record and tells the `onStored` listeners.
 * - Deleting: {@link delete} is the one path (record, thumbnails and their
 *   blobs, the media blob when no other record uses it, every cache).
 */
export class MediaCatalog {
  readonly serverName: string;
  readonly blobs: BlobStore;
  readonly records: MediaRecordStore;
  readonly thumbnails: ThumbnailIndex;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The blocked-hash list and its cached answers; undefined when the store has none. */
  readonly blockedHashes: BlockedHashGate | undefined;
  /** The scan state new media is stored with: `pending` when scanning is on, else none. */
  readonly newScanState: 'pending' | undefined;
  readonly #recordCache: WeightedLru<string, MediaRecord>;
  readonly #recordTtlMs: number;
  readonly #handles = new WeakMap<MediaRecord, StoredMediaHandle>();
  readonly #thumbnailHandles = new WeakMap<StoredThumbnail, StoredMediaHandle>();
  readonly #mediaReader: BlobReader;
  readonly #thumbnailReader: BlobReader;
  readonly #admission: MediaAdmission | undefined;
  readonly #onCacheLookup: ((cache: 'record' | 'blob', hit: boolean) => void) | undefined;
  readonly #touches = new Map<string, { serverName: string; mediaId: string; at: number }>();
  /** Reads of cached records ({@link noteRecordAccess}), merged into `#touches` when written. */
  readonly #recordTouches = new Map<MediaRecord, number>();
  readonly #touchTimer: ReturnType<typeof setInterval> | undefined;
  readonly #storedListeners = new Set<(record: MediaRecord) => void>();
  readonly #invalidationListeners = new Set<(serverName: string, mediaId: string) => void>();
  readonly #resyncListeners = new Set<() => void>();
  readonly #changes: MediaChangeFeed | undefined;
  readonly #unfollowChanges: (() => void) | undefined;

  constructor(options: MediaCatalogOptions) {
    this.serverName = options.serverName;
    this.blobs = options.blobs;
    this.records = options.records;
    this.thumbnails = options.thumbnails;
    this.logger = options.logger ?? noopLogger;
    this.clock = options.clock ?? systemClock;
    this.#admission = options.admission;
    this.newScanState = options.scanNewMedia === true ? 'pending' : undefined;
    this.blockedHashes =
      options.blockedHashes === undefined
        ? undefined
        : new BlockedHashGate(options.blockedHashes, this.clock, nonNegative('blockedHashTtlMs', options.blockedHashTtlMs ?? 10_000), (sha256) =>
            this.#announce({ kind: 'blocked-hashes', sha256 }),
          );
    this.#changes = options.changes;
    this.#onCacheLookup = options.onCacheLookup;
    const cache = options.cache ?? {};
    this.#recordCache = new WeightedLru(nonNegative('cache.maxRecords', cache.maxRecords ?? 10_000));
    this.#recordTtlMs = nonNegative('cache.recordTtlMs', cache.recordTtlMs ?? 60_000);
    const onCacheLookup = this.#onCacheLookup;
    const mediaCache = new BlobCache({
      maxItemBytes: nonNegative('cache.maxBlobBytes', cache.maxBlobBytes ?? 64 * 1024),
      maxTotalBytes: nonNegative('cache.maxTotalBytes', cache.maxTotalBytes ?? 64 * 1024 * 1024),
      onLookup: onCacheLookup === undefined ? undefined : (hit) => onCacheLookup('blob', hit),
    });
    const thumbnailBytes = nonNegative('cache.thumbnailBytes', cache.thumbnailBytes ?? 32 * 1024 * 1024);
    const thumbnailCache = new BlobCache({
      maxItemBytes: thumbnailBytes === 0 ? 0 : MAX_CACHED_THUMBNAIL_BYTES,
      maxTotalBytes: thumbnailBytes,
    });
    this.#mediaReader = { blobs: this.blobs, cache: mediaCache, missing: (handle) => this.#missing(handle, 'Media not found') };
    this.#thumbnailReader = { blobs: this.blobs, cache: thumbnailCache, missing: (handle) => this.#missing(handle, 'Thumbnail not found') };
    const touchIntervalMs = nonNegative('touchIntervalMs', options.touchIntervalMs ?? 60_000);
    if (touchIntervalMs > 0) {
      this.#touchTimer = setInterval(() => void this.flushAccessTimes(), touchIntervalMs);
      this.#touchTimer.unref();
    }
    this.#unfollowChanges = this.#changes === undefined ? undefined : followMediaChanges(this.#changes, this);
  }

  /** True when `serverName` is this server. */
  isLocal(serverName: string): boolean {
    return serverName === this.serverName;
  }

  /** The cached record, without I/O (counts the lookup). */
  cached(serverName: string, mediaId: string): MediaRecord | undefined {
    const record = this.#recordCache.get(`${serverName}/${mediaId}`, this.clock.now());
    this.#onCacheLookup?.('record', record !== undefined);
    return record;
  }

  /**
   * The cached record without counting the lookup: for an answer from memory
   * that may still give up (and then look up through {@link cached}, which
   * counts). Whoever answers from it counts it with {@link countRecordHit}.
   */
  peek(serverName: string, mediaId: string): MediaRecord | undefined {
    return this.#recordCache.get(`${serverName}/${mediaId}`, this.clock.now());
  }

  /** Counts a record lookup answered from {@link peek}. */
  countRecordHit(): void {
    this.#onCacheLookup?.('record', true);
  }

  /** The record from the store (a complete one is cached), or null. */
  async load(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    const record = await this.records.getMedia(serverName, mediaId);
    if (record !== null) this.remember(record);
    return record;
  }

  /** Caches a record read elsewhere. Only complete records: a pending one changes when its upload lands. */
  remember(record: MediaRecord): void {
    if (record.blobId === null) return;
    this.#recordCache.set(`${record.serverName}/${record.mediaId}`, record, 1, this.clock.now() + this.#recordTtlMs);
  }

  /**
   * Runs the admission stage on stored bytes that are about to become
   * visible: the blocked-hash list first, then the configured stage. Throws
   * (a `MatrixError`) when they are refused; the caller then deletes the
   * blob and writes no record. `protectedMedia` skips the blocked-hash list
   * (protected media is exempt from quarantine by hash): an imported
   * protected item.
   */
  async admit(candidate: MediaCandidate, signal?: AbortSignal, protectedMedia = false): Promise<void> {
    if (!protectedMedia) await this.blockedHashes?.admit(candidate);
    await this.#admission?.admit(candidate, signal);
  }

  /**
   * Writes a new, complete record and makes it visible: cached, and every
   * `onStored` listener told. False (nothing changed) when the ID exists.
   */
  async publish(record: MediaRecord): Promise<boolean> {
    if (!(await this.records.insertMedia(record))) return false;
    this.remember(record);
    this.#emitStored(record);
    return true;
  }

  /**
   * {@link publish} for many records in one transaction (a bulk import's
   * group commit): per record whether it was inserted. Only for a record
   * store with `MediaRecordBatches` (a `TypeError` otherwise).
   */
  async publishMany(records: readonly MediaRecord[]): Promise<boolean[]> {
    const store = this.records;
    if (!hasMediaRecordBatches(store)) throw new TypeError('publishMany: the record store has no MediaRecordBatches');
    const inserted = await store.insertMediaBatch(records);
    records.forEach((record, index) => {
      if (inserted[index] !== true) return;
      this.remember(record);
      this.#emitStored(record);
    });
    return inserted;
  }

  /**
   * Writes a new pending record (an async upload's reserved ID): not cached,
   * not announced. False when the ID exists.
   */
  reserve(record: MediaRecord): Promise<boolean> {
    return this.records.insertMedia(record);
  }

  /**
   * Completes a pending record with its bytes (`completed` is the record as
   * it now is) and makes it visible. False when it was not pending any more.
   */
  async publishCompletion(completed: MediaRecord): Promise<boolean> {
    const { serverName, mediaId } = completed;
    const done = await this.records.completeMedia(serverName, mediaId, {
      blobId: completed.blobId!,
      contentType: completed.contentType!,
      uploadName: completed.uploadName,
      size: completed.size!,
      sha256: completed.sha256!,
      uploadedAt: completed.uploadedAt!,
      ...(completed.scanState === undefined ? {} : { scanState: completed.scanState }),
    });
    if (!done) return false;
    this.invalidate(serverName, mediaId);
    this.#emitStored(completed);
    await this.#announce({ kind: 'media', serverName, mediaId, cause: 'completed' });
    return true;
  }

  /**
   * Calls `listener` with every record whose bytes were just stored (a local
   * upload, an async upload completed, a remote item cached), e.g. to
   * pre-generate thumbnails off the request path. Listeners must not throw or
   * block. Returns an unsubscribe function.
   */
  onStored(listener: (record: MediaRecord) => void): () => void {
    this.#storedListeners.add(listener);
    return () => void this.#storedListeners.delete(listener);
  }

  /** Calls `listener` whenever cached state of a media item is dropped (other caches follow). */
  onInvalidate(listener: (serverName: string, mediaId: string) => void): () => void {
    this.#invalidationListeners.add(listener);
    return () => void this.#invalidationListeners.delete(listener);
  }

  /** The handle of a complete record; one per cached record object, not one per request. */
  handleFor(record: MediaRecord): StoredMediaHandle {
    let handle = this.#handles.get(record);
    if (handle === undefined) {
      const blobId = record.blobId!;
      const size = record.size ?? 0;
      const storedType = record.contentType === null ? null : normaliseUploadContentType(record.contentType);
      handle = new StoredMediaHandle(
        {
          record,
          blobId,
          size,
          contentType: storedType ?? DEFAULT_CONTENT_TYPE,
          uploadName: record.uploadName,
          etag: `"${record.sha256 ?? `${blobId}-${size}`}"`,
        },
        this.#mediaReader,
      );
      this.#handles.set(record, handle);
    }
    return handle;
  }

  /** The handle of a thumbnail row of `record` (named `name`); reused while the row and record are the same objects. */
  thumbnailHandleFor(record: MediaRecord, thumbnail: StoredThumbnail, name: string, fromRemote: boolean): ThumbnailHandle {
    const reusable = this.#thumbnailHandles.get(thumbnail);
    if (reusable !== undefined && reusable.record === record && reusable.fromRemote === fromRemote) return reusable as ThumbnailHandle;
    const handle = new StoredMediaHandle(
      {
        record,
        blobId: thumbnail.blobId,
        size: thumbnail.size,
        contentType: thumbnail.contentType,
        uploadName: name,
        // The blob is immutable and never shared, so its ID names these bytes.
        etag: `"thumb-${thumbnail.blobId}"`,
        thumbnail,
        fromRemote,
      },
      this.#thumbnailReader,
    );
    this.#thumbnailHandles.set(thumbnail, handle);
    return handle as ThumbnailHandle;
  }

  /** Keeps freshly generated thumbnail bytes in memory, so the first request needs no read. */
  cacheThumbnailBytes(blobId: string, bytes: Uint8Array): void {
    this.#thumbnailReader.cache.set(blobId, bytes);
  }

  /** Notes a read of a media item, written in the next batch (for retention). */
  noteAccess(serverName: string, mediaId: string): void {
    if (this.#touchTimer === undefined) return;
    this.#touches.set(`${serverName}/${mediaId}`, { serverName, mediaId, at: this.clock.now() });
  }

  /**
   * {@link noteAccess} for a record served from the cache: keyed by the
   * record object, so a hot item's read builds no key and no entry (the
   * record stays referenced until the next batch is written).
   */
  noteRecordAccess(record: MediaRecord): void {
    if (this.#touchTimer === undefined) return;
    this.#recordTouches.set(record, this.clock.now());
  }

  /**
   * Drops every cached state of a media item in this process: its record,
   * its small blob, and (through `onInvalidate`) other services' caches such
   * as thumbnail rows. The only place caches are invalidated.
   */
  invalidate(serverName: string, mediaId: string): void {
    const key = `${serverName}/${mediaId}`;
    const record = this.#recordCache.get(key, Number.NEGATIVE_INFINITY);
    if (record?.blobId) this.#mediaReader.cache.delete(record.blobId);
    this.#recordCache.delete(key);
    for (const listener of this.#invalidationListeners) listener(serverName, mediaId);
  }

  /**
   * Announces that the cached state of a media item changed in a way this
   * catalog does not write itself (a scan verdict): every process, this one
   * included, drops it.
   */
  async mediaChanged(serverName: string, mediaId: string, cause: 'verdict' | 'changed' = 'changed'): Promise<void> {
    this.invalidate(serverName, mediaId);
    await this.#announce({ kind: 'media', serverName, mediaId, cause });
  }

  /** Drops cached blocked-hash answers (of `sha256`, or all): the list changed elsewhere. */
  forgetBlockedHashes(sha256?: string): void {
    this.blockedHashes?.forget(sha256);
  }

  /**
   * Drops every cache of this process that another process's change may
   * have made stale (records, blobs, blocked-hash answers, and through
   * `onResync` other services' caches): the change feed may have missed
   * changes. Stored bytes are immutable, so nothing else is at risk.
   */
  dropCaches(): void {
    this.#recordCache.clear();
    this.#mediaReader.cache.clear();
    this.#thumbnailReader.cache.clear();
    this.blockedHashes?.forget();
    for (const listener of this.#resyncListeners) listener();
  }

  /** Calls `listener` whenever {@link dropCaches} runs (other caches follow). */
  onResync(listener: () => void): () => void {
    this.#resyncListeners.add(listener);
    return () => void this.#resyncListeners.delete(listener);
  }

  /** Sets or clears quarantine; true when the record exists. */
  async setQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean> {
    const changed = await this.records.setMediaQuarantined(serverName, mediaId, quarantined);
    this.invalidate(serverName, mediaId);
    await this.#announce({ kind: 'media', serverName, mediaId, cause: quarantined ? 'quarantine' : 'unquarantine' });
    return changed;
  }

  /** Sets or clears protection; true when the record exists. */
  async setProtected(serverName: string, mediaId: string, isProtected: boolean): Promise<boolean> {
    const changed = await this.records.setMediaProtected(serverName, mediaId, isProtected);
    this.invalidate(serverName, mediaId);
    await this.#announce({ kind: 'media', serverName, mediaId, cause: isProtected ? 'protect' : 'unprotect' });
    return changed;
  }

  /** Sets or clears the profile-media flag; true when the record exists. */
  async setProfile(serverName: string, mediaId: string, isProfile: boolean): Promise<boolean> {
    const changed = await this.records.setMediaProfile(serverName, mediaId, isProfile);
    this.invalidate(serverName, mediaId);
    return changed;
  }

  /**
   * Deletes a media item: the record first, then its thumbnails (rows and
   * blobs), then its blob when no other record uses it, and every cached
   * state. True when the record existed. Blob failures are logged (the blob
   * becomes an orphan), never thrown: the record is gone either way.
   */
  async delete(serverName: string, mediaId: string): Promise<boolean> {
    const record = await this.records.getMedia(serverName, mediaId);
    this.invalidate(serverName, mediaId);
    if (record === null) return false;
    const deleted = await this.records.deleteMedia(serverName, mediaId);
    await this.#announce({ kind: 'media', serverName, mediaId, cause: 'delete' });
    await this.deleteThumbnails(serverName, mediaId);
    if (record.blobId !== null) {
      this.#mediaReader.cache.delete(record.blobId);
      if (!(await this.records.isBlobReferenced(record.blobId))) await this.deleteBlobQuietly(record.blobId);
    }
    return deleted;
  }

  /** Deletes every thumbnail of a media item (rows, then blobs; a content-addressed store keeps a blob still shared). */
  async deleteThumbnails(serverName: string, mediaId: string): Promise<void> {
    for (const blobId of await this.thumbnails.deleteThumbnails(serverName, mediaId)) {
      this.#thumbnailReader.cache.delete(blobId);
      await this.deleteBlobQuietly(blobId);
    }
    for (const listener of this.#invalidationListeners) listener(serverName, mediaId);
  }

  /** Stores bytes already in memory (a generated or fetched thumbnail) as a new blob. */
  putBytes(bytes: Uint8Array, signal?: AbortSignal): Promise<StoredBlob> {
    return this.blobs.put(
      (async function* single() {
        yield bytes;
      })(),
      signal === undefined ? {} : { signal },
    );
  }

  /**
   * Drops a blob that was stored but will not be published (refused, lost a
   * race, failed). A content-addressed store may have answered with a blob
   * that a record already uses: that one is kept.
   */
  async discardBlob(blobId: string): Promise<void> {
    if (this.blobs.release !== undefined) {
      try {
        await this.blobs.release(blobId);
      } catch (err) {
        this.logger.error({ err, blobId }, 'could not release blob; the orphan sweep will remove it');
      }
      return;
    }
    if (this.blobs.contentAddressed === true && (await this.records.isBlobReferenced(blobId))) return;
    await this.deleteBlobQuietly(blobId);
  }

  /** Deletes a blob; a failure is logged (it becomes an orphan), not thrown. */
  async deleteBlobQuietly(blobId: string): Promise<void> {
    try {
      await this.blobs.delete(blobId);
    } catch (err) {
      this.logger.error({ err, blobId }, 'could not delete blob; it is now an orphan');
    }
  }

  /** Writes the batched access times now. Failures are logged, not thrown. */
  async flushAccessTimes(): Promise<void> {
    for (const [record, at] of this.#recordTouches) {
      const { serverName, mediaId } = record;
      const key = `${serverName}/${mediaId}`;
      if ((this.#touches.get(key)?.at ?? Number.NEGATIVE_INFINITY) < at) this.#touches.set(key, { serverName, mediaId, at });
    }
    this.#recordTouches.clear();
    if (this.#touches.size === 0) return;
    const batch = [...this.#touches.values()];
    this.#touches.clear();
    for (const { serverName, mediaId, at } of batch) {
      try {
        await this.records.touchMedia(serverName, mediaId, at);
      } catch (err) {
        this.logger.warn({ err, serverName, mediaId }, 'could not record media access time');
      }
    }
  }

  /** Stops the access-time timer, writes the last batch and empties the caches. Does not close the stores. */
  async close(): Promise<void> {
    if (this.#touchTimer !== undefined) clearInterval(this.#touchTimer);
    this.#unfollowChanges?.();
    await this.flushAccessTimes();
    this.#recordCache.clear();
    this.#mediaReader.cache.clear();
    this.#thumbnailReader.cache.clear();
  }

  /** Publishes a change for other processes; a failure is logged (they notice at their cache expiry), never thrown. */
  async #announce(change: MediaChange): Promise<void> {
    if (this.#changes === undefined) return;
    try {
      await this.#changes.publish(change);
    } catch (err) {
      this.logger.warn({ err, change }, 'could not announce a media change to other processes');
    }
  }

  #emitStored(record: MediaRecord): void {
    for (const listener of this.#storedListeners) {
      try {
        listener(record);
      } catch (err) {
        this.logger.error({ err, mediaId: record.mediaId }, 'media-stored listener failed');
      }
    }
  }

  #missing(handle: StoredMediaHandle, message: string): MatrixError {
    const { serverName, mediaId } = handle.record;
    this.logger.error({ serverName, mediaId, blobId: handle.blobId }, handle.thumbnail === undefined ? 'blob of a media record is missing' : 'blob of a thumbnail is missing');
    this.invalidate(serverName, mediaId);
    return errors.notFound(message);
  }
}
