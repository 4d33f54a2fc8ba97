import { errors } from '@hsmedia/errors';
import type { Clock, Logger, Requester, SignalSource } from '@hsmedia/runtime';
import { normaliseServerName } from './access-policies.js';
import { generateId, isValidMediaId, isValidServerName } from './ids.js';
import { LiveMediaHandle } from './live-media-handle.js';
import { consultLocalFallback } from './local-media-fallback.js';
import { MediaAccessRules, type AccessRequest } from './media-access.js';
import { MediaCatalog, type MediaCacheOptions } from './media-catalog.js';
import type { MediaHandle } from './media-handle.js';
import {
  MediaUploads,
  type AsyncUploadOptions,
  type CreatedMedia,
  type PendingUploadRequest,
  type UploadRequest,
  type UploadResult,
} from './media-uploads.js';
import {
  hasBlockedHashes,
  type BlobStore,
  type BlockedHashes,
  type LocalMediaFallback,
  type MediaAccessPolicy,
  type MediaAdmission,
  type MediaChangeFeed,
  type MediaQueries,
  type MediaRecord,
  type MediaRecordStore,
  type RemoteMediaSource,
  type ThumbnailIndex,
} from './ports/index.js';
import type { MediaScanStage } from './media-scan-stage.js';
import type { JobLeases } from './job-leases.js';
import { DeploymentFetchLock } from './remote-fetch-lock.js';
import { RemoteMediaFetcher } from './remote-media-fetcher.js';
import { setUpScanning, type MediaServiceScanningOptions } from './scanning-setup.js';
import type { SignatureWatch } from './signature-watch.js';
import { TimeoutPolicy } from './timeout-policy.js';
import type { UploadQuotaOptions } from './upload-quota.js';

/** Options for {@link MediaService}. */
export interface MediaServiceOptions {
  /** This server's name: the authority of the `mxc://` URIs it mints. */
  readonly serverName: string;
  readonly blobs: BlobStore;
  /** Media rows, thumbnail rows, and (for quotas) usage queries: a `MediaMetadataStore` has them all. */
  readonly metadata: MediaRecordStore & ThumbnailIndex & Pick<MediaQueries, 'getUserUsage'>;
  /** Largest accepted upload in bytes (also advertised as `m.upload.size`). */
  readonly maxUploadBytes: number;
  /**
   * Freeze the deprecated unauthenticated endpoints (spec v1.11, "Content
   * repository"): media stored while true is flagged `authenticated` and is
   * never served with `legacy: true`. Media from before stays served.
   */
  readonly freezeLegacy?: boolean;
  /**
   * `mxc://` URIs served on legacy requests even when stored while frozen: the
   * spec asks servers to exempt SSO identity-provider icons, which clients
   * fetch before they have a token.
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
  /** `timeout_ms` when the client gives none, in ms: for pending uploads and remote fetches. Default 20 000. */
  readonly defaultTimeoutMs?: number;
  /** Cap on `timeout_ms`, in ms: for pending uploads and remote fetches. Default 60 000. */
  readonly maxTimeoutMs?: number;
  /** Async uploads (`/create`, spec v1.7). */
  readonly asyncUploads?: AsyncUploadOptions;
  /** Per-user upload quotas; none when absent. */
  readonly quotas?: UploadQuotaOptions;
  /** Asked before any byte is served, after quarantine and the freeze; none allows everything else. */
  readonly accessPolicy?: MediaAccessPolicy;
  /** The stage between "bytes stored" and "media visible" (e.g. a virus scanner); none admits everything. */
  readonly admission?: MediaAdmission;
  /**
   * Servers whose media is never fetched (Synapse's
   * `prevent_media_downloads_from`): an uncached item of theirs is 404
   * without contacting them, media already cached is still served.
   */
  readonly preventDownloadsFrom?: readonly string[];
  /**
   * The blocked-hash list (quarantine by content: refused at upload and
   * remote fetch, never served). Default: the metadata store, when it
   * implements `BlockedHashes` (the SQL and in-memory stores do).
   */
  readonly blockedHashes?: BlockedHashes;
  /** How long an answer of the blocked-hash list is trusted, in ms: another instance's block bites within it. Default 10 000. */
  readonly blockedHashTtlMs?: number;
  /**
   * The virus-scan stage: new uploads, async uploads and remote media are
   * stored `pending`, scanned, and served only once clean (readers wait as
   * for an async upload). None: no scanning.
   */
  readonly scanning?: MediaServiceScanningOptions;
  /**
   * Leases in the store the processes of a deployment share: with them, one
   * uncached remote item is fetched once per deployment, not once per
   * process (the others wait up to `timeout_ms` and serve the stored blob).
   */
  readonly remoteFetchLeases?: JobLeases;
  /**
   * Leases in the store the processes of a deployment share: with them, the
   * upload quota and pending-ID checks hold across processes (the check and
   * the write of one user run one at a time in the whole deployment).
   */
  readonly userLeases?: JobLeases;
  /** Changes shared with the other processes of a deployment (see `MediaCatalogOptions.changes`). */
  readonly changes?: MediaChangeFeed;
  /**
   * Asked for a local media ID the catalog has no record of, before answering
   * 404 (read-through from the media repository being replaced): when it
   * brings the item in, the item is served as if it had always been here.
   */
  readonly localFallback?: LocalMediaFallback;
}

/** Options for {@link MediaService.getMedia}. */
export interface GetMediaOptions {
  /** The request came through a deprecated unauthenticated endpoint (freeze applies). */
  readonly legacy?: boolean | undefined;
  /** Legacy `allow_remote` (default true): when false, no remote fetch is started. */
  readonly allowRemote?: boolean | undefined;
  /** How long to wait for a pending async upload or a remote server (see `defaultTimeoutMs`, `maxTimeoutMs`). */
  readonly timeoutMs?: number | undefined;
  /**
   * Only this server's own media: no remote lookup or fetch, 404 for
   * anything else (the federation endpoints serve local media only).
   */
  readonly localOnly?: boolean | undefined;
  /**
   * Accept a live handle for remote media that is being fetched right now
   * (default true): the first caller streams the bytes as they arrive. Pass
   * false to wait until the media is stored (e.g. to thumbnail it).
   */
  readonly allowLive?: boolean | undefined;
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
  /** What the media is read for, as the access policy sees it. Default `download`. */
  readonly purpose?: 'download' | 'thumbnail' | undefined;
}

function requireInteger(name: string, value: number, allowZero: boolean): number {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new TypeError(`MediaService: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${value}`);
  }
  return value;
}

/**
 * The framework-free media repository, as a homeserver uses it: uploads,
 * lookups for serving, remote media, deletion. A façade over the parts
 * that do the work and that other services share:
 *
 * - {@link MediaCatalog} (`catalog`): records, caches, invalidation, the one
 *   deletion path; the thumbnail and admin services take it from here.
 * - `MediaUploads`: plain and async uploads, quotas, waits for pending uploads.
 * - `RemoteMediaFetcher`: single-flight remote fetches with a live first reader.
 * - `MediaAccessRules`: quarantine, the legacy freeze and the access policy.
 * - `TimeoutPolicy`: one `timeout_ms` default and cap for every wait.
 *
 * Every failure it reports is a `MatrixError` ready for the client. The
 * service does not own the stores: `close()` flushes its own state, the
 * caller closes the stores it created.
 *
 * The file is past 450 lines for the documented options of the public API
 * above this class; the class itself only wires and delegates.
 *
 * @example
 * ```ts
 * const media = new MediaService({ serverName: 'example.org', blobs, metadata, maxUploadBytes: 50 << 20 });
 * const { mediaId } = await media.upload({ body: req, contentType: 'image/png', requester });
 * const handle = await media.getMedia('example.org', mediaId);
 * const body = (await handle.readSmall()) ?? (await handle.open());
 * ```
 */
export class MediaService {
  readonly serverName: string;
  /** Records, caches and invalidation, shared with the thumbnail and admin services. */
  readonly catalog: MediaCatalog;
  readonly #uploads: MediaUploads;
  readonly #remote: RemoteMediaFetcher | undefined;
  readonly #access: MediaAccessRules;
  readonly #timeouts: TimeoutPolicy;
  readonly #noFetchFrom: ReadonlySet<string>;
  readonly #localFallback: LocalMediaFallback | undefined;
  /** The virus-scan stage; undefined when scanning is off. */
  readonly scanning: MediaScanStage | undefined;
  readonly #signatureWatch: SignatureWatch | undefined;
  #closed = false;

  constructor(options: MediaServiceOptions) {
    if (!isValidServerName(options.serverName)) {
      throw new TypeError(`MediaService: invalid serverName ${JSON.stringify(options.serverName)}`);
    }
    if (!options.blobs || !options.metadata) throw new TypeError('MediaService: blobs and metadata are required');
    this.serverName = options.serverName;
    const freezeLegacy = options.freezeLegacy ?? false;
    this.#noFetchFrom = new Set((options.preventDownloadsFrom ?? []).map(normaliseServerName));
    this.#localFallback = options.localFallback;
    this.#timeouts = new TimeoutPolicy({
      maxMs: requireInteger('maxTimeoutMs', options.maxTimeoutMs ?? 60_000, true),
      defaultMs: requireInteger('defaultTimeoutMs', options.defaultTimeoutMs ?? 20_000, true),
    });
    const maxUploadBytes = requireInteger('maxUploadBytes', options.maxUploadBytes, false);
    const maxRemoteBytes = requireInteger('maxRemoteBytes', options.maxRemoteBytes ?? maxUploadBytes, false);
    const remoteFailureTtlMs = requireInteger('remoteFailureTtlMs', options.remoteFailureTtlMs ?? 30_000, true);
    // With scanning, thumbnails a remote server made are scanned before they are recorded (they have no
    // scan state to wait on); the stage exists only after the catalog, hence the late binding.
    let scanStage: MediaScanStage | undefined;
    const admission: MediaAdmission | undefined =
      options.scanning === undefined
        ? options.admission
        : {
            async admit(candidate, signal) {
              await options.admission?.admit(candidate, signal);
              if (candidate.kind === 'remote_thumbnail') await scanStage?.admitRemoteThumbnail(candidate);
            },
          };
    this.catalog = new MediaCatalog({
      serverName: options.serverName,
      blobs: options.blobs,
      records: options.metadata,
      thumbnails: options.metadata,
      cache: options.cache,
      admission,
      blockedHashes: options.blockedHashes ?? (hasBlockedHashes(options.metadata) ? options.metadata : undefined),
      blockedHashTtlMs: options.blockedHashTtlMs,
      touchIntervalMs: options.touchIntervalMs,
      onCacheLookup: options.onCacheLookup,
      scanNewMedia: options.scanning !== undefined,
      changes: options.changes,
      logger: options.logger,
      clock: options.clock,
    });
    const scan = options.scanning === undefined ? undefined : setUpScanning(this.catalog, options.metadata, options.scanning, options.pendingPollMs ?? 500);
    this.scanning = scanStage = scan?.stage;
    this.#signatureWatch = scan?.watch;
    const gate = this.catalog.blockedHashes;
    this.#access = new MediaAccessRules({
      freezeLegacy,
      freezeExemptions: options.freezeExemptions,
      policy: options.accessPolicy,
      isHashBlocked: gate === undefined ? undefined : (sha256) => gate.isBlocked(sha256),
    });
    this.#uploads = new MediaUploads({
      catalog: this.catalog,
      queries: options.metadata,
      maxUploadBytes,
      freezeLegacy,
      asyncUploads: options.asyncUploads,
      quotas: options.quotas,
      userLeases: options.userLeases,
      timeouts: this.#timeouts,
      pendingPollMs: options.pendingPollMs ?? 500,
    });
    this.#remote =
      options.remote === undefined
        ? undefined
        : new RemoteMediaFetcher({
            catalog: this.catalog,
            remote: options.remote,
            maxBytes: maxRemoteBytes,
            failureTtlMs: remoteFailureTtlMs,
            freezeLegacy,
            timeouts: this.#timeouts,
            deploymentLock:
              options.remoteFetchLeases === undefined
                ? undefined
                : new DeploymentFetchLock({
                    leases: options.remoteFetchLeases,
                    holder: `remote-fetcher-${generateId(16)}`,
                    clock: this.catalog.clock,
                    logger: this.catalog.logger,
                  }),
          });
  }

  /** Signature-update rescans, when scanning and `rescanOnUpdate` are on (tests and the server's admin use it). */
  get signatureWatch(): SignatureWatch | undefined {
    return this.#signatureWatch;
  }

  /** The `timeout_ms` policy every wait follows (the thumbnail service uses it for remote thumbnails). */
  get timeouts(): TimeoutPolicy {
    return this.#timeouts;
  }

  /** The client-visible media config (`GET /_matrix/client/v1/media/config`). */
  uploadConfig(): { 'm.upload.size': number } {
    return { 'm.upload.size': this.#uploads.maxUploadBytes };
  }

  /**
   * Calls `listener` with every record whose bytes were just stored; see
   * `MediaCatalog.onStored`. With scanning on, media is announced once it is
   * clean, so nothing (thumbnailing included) reads bytes the scanner has not vouched for.
   */
  onMediaStored(listener: (record: MediaRecord) => void): () => void {
    const scanning = this.scanning;
    if (scanning === undefined) return this.catalog.onStored(listener);
    const offStored = this.catalog.onStored((record) => {
      if (record.scanState !== 'pending') listener(record);
    });
    const offClean = scanning.onClean(listener);
    return () => {
      offStored();
      offClean();
    };
  }

  /** True when `serverName` is this server. */
  isLocal(serverName: string): boolean {
    return serverName === this.serverName;
  }

  /** False when `serverName` is one whose media is never fetched (`preventDownloadsFrom`). */
  mayFetchFrom(serverName: string): boolean {
    return !this.#noFetchFrom.has(normaliseServerName(serverName));
  }

  /** Downloads and thumbnail requests in this process now waiting for a pending async upload (metrics). */
  get uploadWaiters(): number {
    return this.#uploads.waiting;
  }

  /** Stores an upload under a new media ID; see `MediaUploads.upload`. */
  upload(request: UploadRequest): Promise<UploadResult> {
    return this.#uploads.upload(request);
  }

  /** Reserves a media ID for a later upload (`POST /_matrix/media/v1/create`); see `MediaUploads.createMedia`. */
  createMedia(requester: Requester): Promise<CreatedMedia> {
    return this.#uploads.createMedia(requester);
  }

  /** Uploads into a reserved ID (`PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`); see `MediaUploads.uploadPending`. */
  async uploadPending(request: PendingUploadRequest): Promise<void> {
    // An ID reserved on the repository being replaced is filled here once that repository's record is brought in.
    if (this.#localFallback !== undefined && this.isLocal(request.serverName) && isValidMediaId(request.mediaId) && (await this.catalog.records.getMedia(request.serverName, request.mediaId)) === null) {
      await this.#localFallback.bring(request.mediaId, request.signal);
    }
    return this.#uploads.uploadPending(request);
  }

  /**
   * Looks up a media item for serving.
   *
   * Errors: 400 `M_INVALID_PARAM` for a malformed server name; 404
   * `M_NOT_FOUND` for a malformed or unknown media ID, quarantined media,
   * frozen media on a legacy request, expired async IDs and remote media
   * when no remote source is configured (or `allowRemote` is false);
   * 504 `M_NOT_YET_UPLOADED` when an async upload does not arrive in time;
   * 502/504 for remote failures; whatever the access policy throws.
   */
  async getMedia(serverName: string, mediaId: string, options: GetMediaOptions = {}): Promise<MediaHandle> {
    if (!isValidServerName(serverName)) throw errors.invalidParam('Invalid server name');
    // The spec's media ID grammar is checked before any lookup: hostile IDs never reach a store.
    if (!isValidMediaId(mediaId)) throw errors.notFound('Media not found');
    const catalog = this.catalog;
    let record = catalog.cached(serverName, mediaId) ?? (await catalog.load(serverName, mediaId));
    if (this.#localFallback !== undefined && this.isLocal(serverName) && (record === null || record.blobId === null)) {
      record = await consultLocalFallback(this.#localFallback, catalog, record, serverName, mediaId, options.signal);
    }
    if (record === null) {
      if (this.isLocal(serverName) || options.localOnly === true) throw errors.notFound('Media not found');
      if (this.#remote === undefined || options.allowRemote === false) throw errors.notFound('Media not found');
      // Synapse answers 404 for a server in prevent_media_downloads_from, and contacts nothing.
      if (!this.mayFetchFrom(serverName)) throw errors.notFound('Media not found');
      // Cached while frozen means authenticated-only: no point fetching for a legacy request.
      if (options.legacy === true && this.#access.freezeLegacy) throw errors.notFound('Media not found');
      // Scanned media is never streamed live: the first reader waits for the verdict like the rest.
      const fetched = await this.#remote.fetch(serverName, mediaId, this.scanning === undefined ? options : { ...options, allowLive: false });
      if (fetched instanceof LiveMediaHandle) {
        try {
          await this.#access.check(fetched.record, options, options.purpose ?? 'download');
        } catch (err) {
          fetched.discard();
          throw err;
        }
        catalog.noteAccess(serverName, mediaId);
        return fetched;
      }
      record = fetched;
    } else if (options.localOnly === true && !this.isLocal(serverName)) {
      throw errors.notFound('Media not found');
    }
    if (record.blobId === null) record = await this.#uploads.waitUntilUploaded(record, options);
    if (this.scanning !== undefined && record.scanState !== undefined && record.scanState !== 'clean') {
      record = await this.scanning.waitForVerdict(record, { timeoutMs: this.#timeouts.waitMs(options.timeoutMs), signal: options.signal });
    }
    const verdict = this.#access.check(record, options, options.purpose ?? 'download');
    if (verdict !== undefined) await verdict;
    catalog.noteRecordAccess(record);
    return catalog.handleFor(record);
  }

  /**
   * {@link getMedia}'s answer when it is in memory, without a promise: the
   * record is cached and needs no wait (no scan verdict pending). Undefined
   * when it is not; then nothing was done or counted, and `getMedia` gives
   * the answer. A promise only when the access rules have to ask (the
   * blocked-hash list, an asynchronous policy). For client and legacy
   * lookups: `request` carries who asks, as `GetMediaOptions` does.
   */
  cachedMedia(serverName: string, mediaId: string, request: AccessRequest, purpose: 'download' | 'thumbnail' = 'download'): MediaHandle | Promise<MediaHandle> | undefined {
    const record = this.servableCached(serverName, mediaId);
    if (record === undefined) return undefined;
    const admitted = this.admitCached(record, request, purpose);
    const handle = this.catalog.handleFor(record);
    return admitted === undefined ? handle : admitted.then(() => handle);
  }

  /**
   * The cached record of a media item when {@link getMedia} would serve it
   * without waiting (uncounted: see `MediaCatalog.peek`), else undefined.
   * Whoever answers from it calls {@link admitCached}.
   */
  servableCached(serverName: string, mediaId: string): MediaRecord | undefined {
    const record = this.catalog.peek(serverName, mediaId);
    // Cached records are complete; one still waiting for its scan verdict is getMedia's work.
    if (record === undefined || (this.scanning !== undefined && record.scanState !== undefined && record.scanState !== 'clean')) return undefined;
    return record;
  }

  /**
   * What {@link getMedia} does with a cached record before handing it out:
   * counts the cache hit, runs the access rules (throws their refusal) and
   * notes the access. A promise only when the rules have to ask.
   */
  admitCached(record: MediaRecord, request: AccessRequest, purpose: 'download' | 'thumbnail'): void | Promise<void> {
    this.catalog.countRecordHit();
    const verdict = this.#access.check(record, request, purpose);
    if (verdict === undefined) {
      this.catalog.noteRecordAccess(record);
      return;
    }
    return verdict.then(() => this.catalog.noteRecordAccess(record));
  }

  /** Runs the access rules on a record this service did not look up (a thumbnail a remote server made). */
  checkAccess(record: MediaRecord, request: AccessRequest, purpose: 'download' | 'thumbnail'): void | Promise<void> {
    return this.#access.check(record, request, purpose);
  }

  /**
   * Deletes a media item (record, thumbnails, then its blob when no other
   * record uses it) and drops it from every cache. True when it existed.
   */
  async deleteMedia(serverName: string, mediaId: string): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    return this.catalog.delete(serverName, mediaId);
  }

  /** Writes the batched access times now. Failures are logged, not thrown. */
  flushAccessTimes(): Promise<void> {
    return this.catalog.flushAccessTimes();
  }

  /** Stops timers, aborts remote fetches and flushes batched access times. Does not close the stores. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#signatureWatch?.close();
    this.scanning?.close();
    await this.catalog.flushAccessTimes();
    await this.#remote?.close();
    await this.catalog.close();
  }
}
