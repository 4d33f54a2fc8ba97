import { ContentTooLargeError, ErrCode, MatrixError, errors } from '@hsmedia/errors';
import { noopLogger, raceAbort, signalOf, systemClock, type Clock, type Logger, type Requester, type SignalSource } from '@hsmedia/runtime';
import {
  contentDispositionFor,
  DEFAULT_CONTENT_TYPE,
  normaliseUploadContentType,
  normaliseUploadFilename,
  parseContentDisposition,
} from './content-headers.js';
import { RemoteMediaError } from './errors.js';
import { formatMxcUri, generateId, isValidMediaId, isValidServerName, parseMxcUri } from './ids.js';
import { KeyedMutex } from './internal/keyed-mutex.js';
import { WeightedLru } from './media-service-lru.js';
import { RemoteTee } from './media-service-remote.js';
import type { BlobStore, ByteSource, MediaMetadataStore, MediaRecord, RemoteMediaSource, StoredBlob } from './ports/index.js';
import { UploadQuotas, type UploadQuotaOptions } from './upload-quota.js';
import { UploadWaiters } from './upload-waiters.js';

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
  /**
   * `mxc://` URIs served on legacy requests even when stored while frozen: the
   * spec asks servers to exempt SSO identity-provider icons, which clients fetch
   * before they have a token (digest §1.12).
   */
  readonly freezeExemptions?: readonly string[];
  /** Where other servers' media comes from; without it, remote media is 404. */
  readonly remote?: RemoteMediaSource;
  /** Largest remote media fetched and cached. Default `maxUploadBytes`. */
  readonly maxRemoteBytes?: number;
  /**
   * How long a failed remote fetch is remembered per `(server, media ID)`,
   * in ms: requests in that time get the same error without a new fetch.
   * Default 30 000; 0 disables.
   */
  readonly remoteFailureTtlMs?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly cache?: MediaCacheOptions;
  /**
   * Access times are batched in memory and written at most this often (ms),
   * so hot downloads cost no database write. Default 60 000; 0 disables
   * access-time tracking.
   */
  readonly touchIntervalMs?: number;
  /**
   * Poll interval of the metadata store while waiting for an async upload
   * (`timeout_ms`). Uploads completed by this process wake waiters at once;
   * the poll is how an upload that lands on another instance is seen.
   * Default 500 ms.
   */
  readonly pendingPollMs?: number;
  /** Called on every in-memory cache lookup (metrics): which cache and whether it hit. Must not throw. */
  readonly onCacheLookup?: (cache: 'record' | 'blob', hit: boolean) => void;
  /** `timeout_ms` when the client gives none, in ms. Default 20 000. */
  readonly defaultTimeoutMs?: number;
  /** Cap on `timeout_ms`, in ms. Default 60 000. */
  readonly maxTimeoutMs?: number;
  /** Async uploads (`/create`, spec v1.7, MSC2246). */
  readonly asyncUploads?: AsyncUploadOptions;
  /** Per-user upload quotas; none when absent. */
  readonly quotas?: UploadQuotaOptions;
}

/** Options of async uploads (`POST /_matrix/media/v1/create`). */
export interface AsyncUploadOptions {
  /** Pending (created, not uploaded, not expired) IDs a user may hold; more is 429. Default 5 (Synapse's). */
  readonly maxPending?: number;
  /** How long a created ID may wait for its upload, in ms. Default 24 h (the spec's recommendation). */
  readonly unusedExpirationMs?: number;
}

/** What {@link MediaService.createMedia} reserved. */
export interface CreatedMedia {
  readonly contentUri: string;
  readonly mediaId: string;
  /** When the ID expires unless uploaded to (ms since the epoch). */
  readonly unusedExpiresAt: number;
}

/** An upload into an ID reserved with {@link MediaService.createMedia}. */
export interface PendingUploadRequest extends UploadRequest {
  readonly serverName: string;
  readonly mediaId: string;
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
  readonly legacy?: boolean | undefined;
  /** Legacy `allow_remote` (default true): when false, no remote fetch is started. */
  readonly allowRemote?: boolean | undefined;
  /** How long to wait for a pending async upload (default 20 000, capped at 60 000). */
  readonly timeoutMs?: number | undefined;
  /**
   * Only this server's own media: no remote lookup or fetch, 404 for
   * anything else (the federation endpoints serve local media only).
   */
  readonly localOnly?: boolean;
  /**
   * Accept a live handle for remote media that is being fetched right now
   * (default true): the first caller streams the bytes as they arrive. Pass
   * false to wait until the media is stored (e.g. to thumbnail it).
   */
  readonly allowLive?: boolean;
  /**
   * Aborts the caller's wait (the client went away). A function is called
   * only when the lookup has to wait (a cache hit never does), so a server
   * can avoid creating a signal per request. Undefined: not abortable.
   */
  readonly signal?: SignalSource | undefined;
  /** The client asking (for the access policy); absent for federation and legacy requests. */
  readonly requester?: Requester | undefined;
  /** The verified origin of a federation request (for the access policy). */
  readonly origin?: string | undefined;
}

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
  /** The `Content-Disposition` for the stored name and type (spec v1.12 rules; see `contentDispositionFor`). */
  readonly contentDisposition: string;
  /** Size in bytes; null for a live handle whose remote sent no Content-Length. */
  readonly size: number | null;
  /** Strong entity tag (quoted), derived from the SHA-256 of the bytes; null for a live handle. */
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
  cachedSmall?(): Uint8Array | undefined;
  /** A stream of the content, or of the inclusive range (ranges are refused on live handles). */
  open(range?: ByteRange, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>;
  /**
   * Call when the handle will not be opened (HEAD, 304): a live handle then
   * stops holding its remote fetch back. A no-op for stored media.
   */
  discard(): void;
}

/** An in-flight fetch of one remote media item, shared by every caller. */
interface RemoteFetch {
  /** The stored record; rejects with the `MatrixError` callers get. */
  readonly committed: Promise<MediaRecord>;
  /** The first caller's live view once enough bytes arrived; null when the body was complete (or failed) sooner. */
  readonly started: Promise<LiveRemote | null>;
  claimed: boolean;
}

/** The live side of a remote fetch. */
interface LiveRemote {
  readonly record: MediaRecord;
  readonly contentLength: number | null;
  readonly tee: RemoteTee;
}

const DEFAULT_TIMEOUT_MS = 20_000;
/** A remote body goes live for its first caller only after this many bytes: shorter ones fail or succeed cleanly. */
const LIVE_WINDOW_BYTES = 64 * 1024;
/** Unread bytes queued for the live reader before the remote read waits for it. */
const LIVE_BUFFER_BYTES = 8 * 1024 * 1024;
/** Bytes read ahead of the blob writer, so the disk and the network work at the same time. */
const STORE_BUFFER_BYTES = 16 * 1024 * 1024;
/** A live handle nobody opens within this time stops holding its fetch back. */
const LIVE_OPEN_DEADLINE_MS = 30_000;
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
  /** The handle of each stored record object (records are cached objects; entries go with them). */
  readonly #handles = new WeakMap<MediaRecord, MediaHandle>();
  readonly #maxUploadBytes: number;
  readonly #freezeLegacy: boolean;
  readonly #freezeExemptions: ReadonlySet<string>;
  readonly #remote: RemoteMediaSource | undefined;
  readonly #maxRemoteBytes: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #records: WeightedLru<string, MediaRecord>;
  readonly #recordTtlMs: number;
  readonly #smallBlobs: WeightedLru<string, Uint8Array>;
  readonly #maxBlobBytes: number;
  readonly #pendingPollMs: number;
  readonly #onCacheLookup: ((cache: 'record' | 'blob', hit: boolean) => void) | undefined;
  readonly #defaultTimeoutMs: number;
  readonly #maxTimeoutMs: number;
  readonly #maxPending: number;
  readonly #unusedExpirationMs: number;
  readonly #quotas: UploadQuotas | undefined;
  readonly #uploadWaiters = new UploadWaiters();
  /** Serialises per-user check-then-write steps (quota, pending cap) in this process. */
  readonly #userLocks = new KeyedMutex();
  readonly #remoteFetches = new Map<string, RemoteFetch>();
  readonly #remoteFailures: WeightedLru<string, MatrixError>;
  readonly #remoteFailureTtlMs: number;
  /** Aborts every remote fetch on close. */
  readonly #shutdown = new AbortController();
  readonly #touches = new Map<string, { serverName: string; mediaId: string; at: number }>();
  readonly #touchTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #storedListeners = new Set<(record: MediaRecord) => void>();

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
    const exemptions = new Set<string>();
    for (const uri of options.freezeExemptions ?? []) {
      const mxc = parseMxcUri(uri);
      if (mxc === null) throw new TypeError(`MediaService: freezeExemptions holds an invalid mxc URI ${JSON.stringify(uri)}`);
      exemptions.add(`${mxc.serverName}/${mxc.mediaId}`);
    }
    this.#freezeExemptions = exemptions;
    this.#remote = options.remote;
    this.#maxRemoteBytes = requirePositiveInteger('maxRemoteBytes', options.maxRemoteBytes ?? options.maxUploadBytes);
    this.#remoteFailureTtlMs = requirePositiveInteger('remoteFailureTtlMs', options.remoteFailureTtlMs ?? 30_000, true);
    this.#remoteFailures = new WeightedLru(this.#remoteFailureTtlMs === 0 ? 0 : 10_000);
    this.#logger = options.logger ?? noopLogger;
    this.#clock = options.clock ?? systemClock;
    const cache = options.cache ?? {};
    this.#records = new WeightedLru(requirePositiveInteger('cache.maxRecords', cache.maxRecords ?? 10_000, true));
    this.#recordTtlMs = requirePositiveInteger('cache.recordTtlMs', cache.recordTtlMs ?? 60_000, true);
    this.#maxBlobBytes = requirePositiveInteger('cache.maxBlobBytes', cache.maxBlobBytes ?? 64 * 1024, true);
    const maxTotalBytes = requirePositiveInteger('cache.maxTotalBytes', cache.maxTotalBytes ?? 64 * 1024 * 1024, true);
    this.#smallBlobs = new WeightedLru(Number.MAX_SAFE_INTEGER, maxTotalBytes);
    this.#pendingPollMs = requirePositiveInteger('pendingPollMs', options.pendingPollMs ?? 500);
    this.#onCacheLookup = options.onCacheLookup;
    this.#maxTimeoutMs = requirePositiveInteger('maxTimeoutMs', options.maxTimeoutMs ?? MAX_TIMEOUT_MS, true);
    this.#defaultTimeoutMs = Math.min(
      requirePositiveInteger('defaultTimeoutMs', options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS, true),
      this.#maxTimeoutMs,
    );
    const asyncUploads = options.asyncUploads ?? {};
    this.#maxPending = requirePositiveInteger('asyncUploads.maxPending', asyncUploads.maxPending ?? 5, true);
    this.#unusedExpirationMs = requirePositiveInteger(
      'asyncUploads.unusedExpirationMs',
      asyncUploads.unusedExpirationMs ?? 24 * 60 * 60 * 1000,
    );
    this.#quotas = options.quotas === undefined ? undefined : new UploadQuotas(options.quotas);
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

  /**
   * Calls `listener` with every record whose bytes were just stored (a local
   * upload, a remote media cached): e.g. to pre-generate thumbnails off the
   * request path. Listeners must not throw or block. Returns an unsubscribe function.
   */
  onMediaStored(listener: (record: MediaRecord) => void): () => void {
    this.#storedListeners.add(listener);
    return () => void this.#storedListeners.delete(listener);
  }

  #emitStored(record: MediaRecord): void {
    for (const listener of this.#storedListeners) {
      try {
        listener(record);
      } catch (err) {
        this.#logger.error({ err, mediaId: record.mediaId }, 'media-stored listener failed');
      }
    }
  }

  /** True when `serverName` is this server. */
  isLocal(serverName: string): boolean {
    return serverName === this.serverName;
  }

  /**
   * Downloads and thumbnail requests in this process now waiting for a
   * pending async upload (`/create` without its `PUT` yet), for metrics.
   */
  get uploadWaiters(): number {
    return this.#uploadWaiters.size;
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
    // Quota before the first byte is read: the declared size and one more file.
    await this.#quotas?.check(this.#metadata, requester.userId, request.contentLength ?? 0, this.#clock.now());
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
      return await this.#underQuota(requester.userId, stored.size, () =>
        this.#insertUploaded(stored, contentType, filename, requester),
      );
    } catch (err) {
      await this.#deleteBlobQuietly(stored.blobId);
      throw err;
    }
  }

  /** Writes the record of a fresh upload under a new media ID. */
  async #insertUploaded(
    stored: StoredBlob,
    contentType: string,
    filename: string | undefined,
    requester: Requester,
  ): Promise<UploadResult> {
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
        this.#emitStored(record);
        return { contentUri: formatMxcUri(this.serverName, record.mediaId), mediaId: record.mediaId };
      }
    }
    throw new Error('MediaService: could not allocate a unique media ID');
  }

  /**
   * Runs `commit` when storing `size` more bytes keeps `userId` within its
   * quota. The check and the write run one at a time per user (in this
   * process), so two concurrent uploads cannot both pass on the same room.
   */
  async #underQuota<T>(userId: string, size: number, commit: () => Promise<T>): Promise<T> {
    const quotas = this.#quotas;
    if (quotas === undefined) return commit();
    return this.#userLocks.run(`quota:${userId}`, async () => {
      await quotas.check(this.#metadata, userId, size, this.#clock.now());
      return commit();
    });
  }

  /**
   * Reserves a media ID for a later upload (`POST /_matrix/media/v1/create`,
   * spec v1.7). The ID expires after `asyncUploads.unusedExpirationMs`.
   *
   * Errors: 403 `M_GUEST_ACCESS_FORBIDDEN` (guest); 429 `M_LIMIT_EXCEEDED`
   * when the user already holds `asyncUploads.maxPending` pending IDs (no
   * `retry_after_ms`: a slot frees when an upload completes or an ID expires).
   */
  async createMedia(requester: Requester): Promise<CreatedMedia> {
    if (requester.isGuest) {
      throw new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guests cannot upload media');
    }
    // Count and insert one at a time per user, so concurrent creates cannot all slip under the cap.
    return this.#userLocks.run(`pending:${requester.userId}`, async () => {
      const now = this.#clock.now();
      const pending = await this.#metadata.countPendingMedia(requester.userId, now);
      if (pending >= this.#maxPending) {
        throw new MatrixError(ErrCode.LIMIT_EXCEEDED, `You may have at most ${this.#maxPending} pending uploads`);
      }
      const expiresAt = now + this.#unusedExpirationMs;
      for (let attempt = 0; attempt < INSERT_ATTEMPTS; attempt++) {
        const record: MediaRecord = {
          serverName: this.serverName,
          mediaId: generateId(),
          blobId: null,
          contentType: null,
          uploadName: null,
          size: null,
          sha256: null,
          userId: requester.userId,
          createdAt: now,
          uploadedAt: null,
          expiresAt,
          authenticated: this.#freezeLegacy,
          quarantined: false,
          lastAccessAt: null,
        };
        if (await this.#metadata.insertMedia(record)) {
          this.#logger.debug({ mediaId: record.mediaId, userId: requester.userId }, 'media ID created');
          return {
            contentUri: formatMxcUri(this.serverName, record.mediaId),
            mediaId: record.mediaId,
            unusedExpiresAt: expiresAt,
          };
        }
      }
      throw new Error('MediaService: could not allocate a unique media ID');
    });
  }

  /**
   * Uploads into an ID reserved with {@link createMedia}
   * (`PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`, spec v1.7).
   * Every check that needs no body runs before the first byte is read.
   * Readers waiting for the ID in this process are woken at once.
   *
   * Errors: 404 `M_NOT_FOUND` (not ours, unknown, not from `/create`, or
   * expired); 403 `M_FORBIDDEN` (another user created it, or over quota);
   * 409 `M_CANNOT_OVERWRITE_MEDIA` (already uploaded); otherwise as {@link upload}.
   */
  async uploadPending(request: PendingUploadRequest): Promise<void> {
    const { requester, signal, serverName, mediaId } = request;
    if (!this.isLocal(serverName) || !isValidMediaId(mediaId)) throw mediaNotFound();
    const record = await this.#metadata.getMedia(serverName, mediaId);
    // A record without expiry was never pending (a plain upload or remote media).
    if (record === null || (record.blobId === null && record.expiresAt === null)) throw mediaNotFound();
    if (record.userId !== requester.userId) throw errors.forbidden('Only the creator of this media ID may upload to it');
    if (record.blobId !== null) throw errors.cannotOverwrite();
    if (record.expiresAt !== null && record.expiresAt <= this.#clock.now()) throw mediaNotFound();
    const contentType = normaliseUploadContentType(request.contentType);
    if (contentType === null) throw errors.invalidParam('Invalid Content-Type');
    const filename = normaliseUploadFilename(request.filename);
    if (filename === null) throw errors.invalidParam('Invalid filename');
    if (request.contentLength !== undefined && request.contentLength > this.#maxUploadBytes) {
      throw this.#uploadTooLarge();
    }
    await this.#quotas?.check(this.#metadata, requester.userId, request.contentLength ?? 0, this.#clock.now());
    signal?.throwIfAborted();

    let stored: StoredBlob;
    try {
      stored = await this.#blobs.put(request.body, {
        maxBytes: this.#maxUploadBytes,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (err) {
      if (err instanceof ContentTooLargeError) throw this.#uploadTooLarge();
      throw err;
    }
    let completedRecord: MediaRecord;
    try {
      signal?.throwIfAborted();
      const uploadedAt = this.#clock.now();
      // MSC2246 lets an upload that started before the expiry finish: no second expiry check.
      const completed = await this.#underQuota(requester.userId, stored.size, () =>
        this.#metadata.completeMedia(serverName, mediaId, {
          blobId: stored.blobId,
          contentType,
          uploadName: filename ?? null,
          size: stored.size,
          sha256: stored.sha256,
          uploadedAt,
        }),
      );
      if (!completed) {
        // Lost a race: another PUT filled it (409), or it was deleted meanwhile (404).
        const now = await this.#metadata.getMedia(serverName, mediaId);
        throw now === null ? mediaNotFound() : errors.cannotOverwrite();
      }
      completedRecord = {
        ...record,
        blobId: stored.blobId,
        contentType,
        uploadName: filename ?? null,
        size: stored.size,
        sha256: stored.sha256,
        uploadedAt,
      };
    } catch (err) {
      await this.#deleteBlobQuietly(stored.blobId);
      throw err;
    }
    this.invalidate(serverName, mediaId);
    this.#uploadWaiters.notify(`${serverName}/${mediaId}`);
    this.#emitStored(completedRecord);
    this.#logger.debug({ mediaId, userId: requester.userId }, 'async media uploaded');
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
    this.#onCacheLookup?.('record', record !== null);
    if (record === null) {
      record = await this.#metadata.getMedia(serverName, mediaId);
      if (record !== null && record.blobId !== null) this.#cacheRecord(record);
    }
    if (record === null) {
      if (this.isLocal(serverName) || options.localOnly === true) throw mediaNotFound();
      if (this.#remote === undefined || options.allowRemote === false) throw mediaNotFound();
      // Cached while frozen means authenticated-only (spec §1.12): no point fetching for a legacy request.
      if (options.legacy === true && this.#freezeLegacy) throw mediaNotFound();
      const fetched = await this.#fetchRemote(serverName, mediaId, options);
      if ('tee' in fetched) {
        this.#noteAccess(key, serverName, mediaId);
        return this.#liveHandleFor(fetched, signalOf(options.signal));
      }
      record = fetched;
    } else if (options.localOnly === true && !this.isLocal(serverName)) {
      throw mediaNotFound();
    }
    if (record.blobId === null) record = await this.#waitForUpload(record, options);
    if (record.quarantined) throw mediaNotFound();
    if (options.legacy === true && record.authenticated && !this.#freezeExemptions.has(key)) throw mediaNotFound();
    this.#noteAccess(key, serverName, mediaId);
    // Handles of stored media are stateless: one per cached record object, not one per request.
    let handle = this.#handles.get(record);
    if (handle === undefined) {
      handle = this.#handleFor(record);
      this.#handles.set(record, handle);
    }
    return handle;
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
    // Thumbnail blobs are never shared: each row owns its blob.
    for (const blobId of await this.#metadata.deleteThumbnails(serverName, mediaId)) {
      await this.#deleteBlobQuietly(blobId);
    }
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
    this.#shutdown.abort(new Error('MediaService closed'));
    await Promise.allSettled([...this.#remoteFetches.values()].map((fetch) => fetch.committed));
    this.#remoteFailures.clear();
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
    const timeoutMs = Math.min(Math.max(0, options.timeoutMs ?? this.#defaultTimeoutMs), this.#maxTimeoutMs);
    const waitKey = `${initial.serverName}/${initial.mediaId}`;
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
      // Woken at once by a local upload (#uploadWaiters); the poll catches uploads on other instances.
      await this.#uploadWaiters.wait(waitKey, Math.min(this.#pendingPollMs, deadline - now), signalOf(options.signal));
      record = await this.#metadata.getMedia(initial.serverName, initial.mediaId);
    }
  }

  /**
   * Fetches remote media once however many callers ask (single flight per
   * `(server, media ID)`). The first caller gets the live stream as soon as
   * the first bytes arrived (see {@link RemoteTee}); the others wait for the
   * blob to be stored and read it. A failure is remembered for
   * `remoteFailureTtlMs`.
   */
  async #fetchRemote(serverName: string, mediaId: string, options: GetMediaOptions): Promise<MediaRecord | LiveRemote> {
    const key = `${serverName}/${mediaId}`;
    let fetch = this.#remoteFetches.get(key);
    if (!fetch) {
      const remembered = this.#remoteFailures.get(key, this.#clock.now());
      if (remembered !== undefined) throw remembered;
      const timeoutMs = Math.min(Math.max(1, options.timeoutMs ?? DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS);
      fetch = this.#startRemoteFetch(serverName, mediaId, timeoutMs, options.legacy === true);
      this.#remoteFetches.set(key, fetch);
      const forget = (): void => void this.#remoteFetches.delete(key);
      fetch.committed.then(forget, forget);
    }
    const signal = signalOf(options.signal);
    if (!fetch.claimed && options.allowLive !== false) {
      fetch.claimed = true;
      const started = fetch.started;
      if (signal !== undefined) {
        // This caller left before it could read: the live reader must not hold the fetch back.
        signal.addEventListener('abort', () => void started.then((live) => live?.tee.detach(signal.reason), () => undefined), {
          once: true,
        });
      }
      const live = await raceAbort(started, signal);
      if (live !== null) return live;
    }
    // The fetch is shared, so one caller leaving must not cancel it for the others.
    return raceAbort(fetch.committed, signal);
  }

  #startRemoteFetch(serverName: string, mediaId: string, timeoutMs: number, legacyOnly: boolean): RemoteFetch {
    let settleStarted!: (live: LiveRemote | null) => void;
    let failStarted!: (error: unknown) => void;
    const started = new Promise<LiveRemote | null>((resolve, reject) => {
      settleStarted = resolve;
      failStarted = reject;
    });
    started.catch(() => undefined);
    const committed = (async (): Promise<MediaRecord> => {
      try {
        return await this.#runRemoteFetch(serverName, mediaId, timeoutMs, legacyOnly, settleStarted);
      } catch (err) {
        const mapped = this.#remoteError(err, serverName, mediaId);
        failStarted(mapped);
        if (!this.#shutdown.signal.aborted && this.#remoteFailureTtlMs > 0) {
          this.#remoteFailures.set(`${serverName}/${mediaId}`, mapped, 1, this.#clock.now() + this.#remoteFailureTtlMs);
        }
        throw mapped;
      } finally {
        // The body ended before going live: the first caller reads the stored blob like everyone else.
        settleStarted(null);
      }
    })();
    // The first caller may be streaming live and never await this.
    committed.catch(() => undefined);
    return { committed, started, claimed: false };
  }

  async #runRemoteFetch(
    serverName: string,
    mediaId: string,
    timeoutMs: number,
    legacyOnly: boolean,
    goLive: (live: LiveRemote) => void,
  ): Promise<MediaRecord> {
    const remote = this.#remote!;
    const maxBytes = this.#maxRemoteBytes;
    const signal = this.#shutdown.signal;
    const media = await remote.fetchMedia({
      serverName,
      mediaId,
      maxBytes,
      timeoutMs,
      signal,
      ...(legacyOnly ? { legacyOnly: true } : {}),
    });
    if (media.contentLength !== null && media.contentLength > maxBytes) {
      await media.body.cancel().catch(() => undefined);
      throw new ContentTooLargeError(maxBytes);
    }
    const contentType = normaliseUploadContentType(media.contentType ?? undefined) ?? DEFAULT_CONTENT_TYPE;
    const disposition = media.contentDisposition ? parseContentDisposition(media.contentDisposition) : null;
    const uploadName = normaliseUploadFilename(disposition?.filename ?? undefined) ?? null;
    const now = this.#clock.now();
    const pendingRecord: MediaRecord = {
      serverName,
      mediaId,
      blobId: null,
      contentType,
      uploadName,
      size: media.contentLength,
      sha256: null,
      userId: null,
      createdAt: now,
      uploadedAt: null,
      expiresAt: null,
      // Spec §1.12: remote media cached while frozen counts as new.
      authenticated: this.#freezeLegacy,
      quarantined: false,
      lastAccessAt: now,
    };
    const tee: RemoteTee = new RemoteTee(media.body, {
      maxBytes,
      liveBufferBytes: LIVE_BUFFER_BYTES,
      storeBufferBytes: STORE_BUFFER_BYTES,
      windowBytes: LIVE_WINDOW_BYTES,
      onWindow: () => goLive({ record: pendingRecord, contentLength: media.contentLength, tee }),
    });
    let stored;
    try {
      stored = await this.#blobs.put(tee.source(), { maxBytes, signal });
    } catch (err) {
      // The live reader must see a failure, not a clean end: its response is aborted. The
      // remote body is cancelled even when the store failed before reading any of it.
      tee.cancel(this.#remoteError(err, serverName, mediaId));
      throw err;
    }
    tee.close();
    const record: MediaRecord = {
      ...pendingRecord,
      blobId: stored.blobId,
      size: stored.size,
      sha256: stored.sha256,
      uploadedAt: this.#clock.now(),
    };
    try {
      if (await this.#metadata.insertMedia(record)) {
        this.#cacheRecord(record);
        this.#emitStored(record);
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

  /** The handle of the first caller of an uncached remote item: its bytes as they arrive. */
  #liveHandleFor(live: LiveRemote, signal: AbortSignal | undefined): MediaHandle {
    const { record, tee } = live;
    let opened = false;
    // A handle nobody opens (a bug, a HEAD without discard) must not stall the fetch for everyone.
    const deadline = setTimeout(() => {
      if (!opened) tee.detach(new Error('live media handle was never opened'));
    }, LIVE_OPEN_DEADLINE_MS);
    deadline.unref();
    const storedType = record.contentType === null ? null : normaliseUploadContentType(record.contentType);
    return {
      record,
      live: true,
      contentType: storedType ?? DEFAULT_CONTENT_TYPE,
      uploadName: record.uploadName,
      contentDisposition: contentDispositionFor(storedType ?? DEFAULT_CONTENT_TYPE, record.uploadName),
      size: live.contentLength,
      etag: null,
      readSmall(): Promise<Uint8Array | null> {
        return Promise.resolve(null);
      },
      open(range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
        if (opened) return Promise.reject(new Error('a live media handle can be opened only once'));
        if (range !== undefined) return Promise.reject(new Error('a live media handle has no ranges'));
        opened = true;
        clearTimeout(deadline);
        if (signal?.aborted === true) tee.detach(signal.reason);
        return Promise.resolve(tee.live);
      },
      discard(): void {
        opened = true;
        clearTimeout(deadline);
        tee.detach(new Error('live media handle discarded'));
      },
    };
  }

  #remoteError(err: unknown, serverName: string, mediaId: string): MatrixError {
    if (err instanceof MatrixError) return err;
    if (err instanceof ContentTooLargeError) {
      return errors.tooLarge('Remote content is too large', 502);
    }
    if (err instanceof RemoteMediaError) {
      this.#logger.info({ serverName, mediaId, failure: err.code, err }, 'remote media fetch failed');
      switch (err.code) {
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
    const onCacheLookup = this.#onCacheLookup;
    const maxBlobBytes = this.#maxBlobBytes;
    const onMissing = (): MatrixError => {
      this.#logger.error({ serverName: record.serverName, mediaId: record.mediaId, blobId }, 'blob of a media record is missing');
      this.invalidate(record.serverName, record.mediaId);
      return mediaNotFound();
    };
    const storedType = record.contentType === null ? null : normaliseUploadContentType(record.contentType);
    return {
      record,
      live: false,
      contentType: storedType ?? DEFAULT_CONTENT_TYPE,
      uploadName: record.uploadName,
      contentDisposition: contentDispositionFor(storedType ?? DEFAULT_CONTENT_TYPE, record.uploadName),
      size,
      etag: `"${record.sha256 ?? `${blobId}-${size}`}"`,
      discard(): void {},
      cachedSmall(): Uint8Array | undefined {
        if (size > maxBlobBytes) return undefined;
        const cached = smallBlobs.get(blobId, 0);
        // Misses are counted by the readSmall that follows, so each lookup counts once.
        if (cached !== undefined) onCacheLookup?.('blob', true);
        return cached;
      },
      async readSmall(signal?: AbortSignal): Promise<Uint8Array | null> {
        if (size > maxBlobBytes) return null;
        const cached = smallBlobs.get(blobId, 0);
        onCacheLookup?.('blob', cached !== undefined);
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
      async open(range?: ByteRange, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
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

