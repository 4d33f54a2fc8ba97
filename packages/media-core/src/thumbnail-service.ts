import { ContentTooLargeError, ErrCode, MatrixError, errors } from '@hsmedia/errors';
import { noopLogger, raceAbort, systemClock, type Clock, type Logger, type SignalSource } from '@hsmedia/runtime';
import { contentDispositionFor, essenceOf } from './content-headers.js';
import { RemoteMediaError } from './errors.js';
import { isValidMediaId } from './ids.js';
import type { ByteRange, GetMediaOptions, MediaHandle, MediaService } from './media-service.js';
import { WeightedLru } from './media-service-lru.js';
import {
  REMOTE_THUMBNAIL_CONTENT_TYPES,
  type BlobStore,
  type ImageProbe,
  type MediaMetadataStore,
  type MediaRecord,
  type RemoteMediaSource,
  type StoredThumbnail,
  type ThumbnailGenerator,
  type ThumbnailSpec,
} from './ports/index.js';

/**
 * The thumbnail rules a generator package supplies (`@hsmedia/thumbnailer`:
 * `thumbnailSpecForRequest`, `selectThumbnail`, `thumbnailErrorToMatrixError`).
 * Injected so media-core depends on no image code.
 */
export interface ThumbnailRules {
  /** Validates `width`, `height`, `method`, `animated`; throws a `MatrixError` (400) when they are bad. */
  parseRequest(query: URLSearchParams): ThumbnailSpec;
  /** The stored thumbnail that best answers `request` (spec §2.3), or undefined. */
  select(stored: readonly StoredThumbnail[], request: ThumbnailSpec): StoredThumbnail | undefined;
  /** The `MatrixError` for a generator failure, or null when `error` is not the generator's (it is rethrown). */
  errorFor(error: unknown, options: { readonly remote: boolean }): MatrixError | null;
}

/** Options for {@link ThumbnailService}. */
export interface ThumbnailServiceOptions {
  readonly media: MediaService;
  /** Where thumbnail bytes are stored (normally the media's own blob store). */
  readonly blobs: BlobStore;
  readonly metadata: MediaMetadataStore;
  readonly generator: ThumbnailGenerator;
  readonly rules: ThumbnailRules;
  /**
   * Sizes generated once per media item, off the request path: at upload for
   * local media, after the fetch for remote media (spec §2.3 recommends
   * 32×32 crop, 96×96 crop, 320×240, 640×480, 800×600 scale).
   */
  readonly sizes: readonly ThumbnailSpec[];
  /**
   * Generate (and store) the exact requested size on demand. When false,
   * requests are answered with the best of `sizes` only.
   */
  readonly dynamic: boolean;
  /** Background generation jobs running at once. Default 1. */
  readonly maxBackgroundJobs?: number;
  /** Background jobs waiting; more are dropped (requests then generate on demand). Default 10 000. */
  readonly maxQueuedJobs?: number;
  /** Bytes of thumbnails kept in memory. Default 32 MiB; 0 disables. */
  readonly cacheBytes?: number;
  /**
   * Where remote thumbnails come from (normally the `remote` of the
   * `MediaService`). Used only when it has `fetchThumbnail` and
   * `remoteThumbnailFirst` is on; see {@link ThumbnailService}.
   */
  readonly remote?: RemoteMediaSource;
  /**
   * For remote media that is not cached, ask the remote's thumbnail endpoint
   * first instead of fetching the original (spec §3.4 step 7 allows both).
   * The original's size is unknown before fetching it, so this is the whole
   * rule: uncached remote + thumbnail request → remote thumbnail first;
   * cached originals are always thumbnailed here. Default true.
   */
  readonly remoteThumbnailFirst?: boolean;
  /** Largest remote thumbnail accepted, in bytes (read into memory to probe). Default 4 MiB. */
  readonly maxRemoteThumbnailBytes?: number;
  /**
   * Reads a remote thumbnail's real size, format and animation from its
   * header (`SharpThumbnailer.probe`). Without it the requested size is
   * trusted as the thumbnail's size and the declared type as its format.
   */
  readonly probe?: (bytes: Uint8Array) => Promise<ImageProbe>;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** Options for {@link ThumbnailService.getThumbnail}: as for `MediaService.getMedia`. */
export interface GetThumbnailOptions {
  /** The request came through a deprecated unauthenticated endpoint (freeze applies). */
  readonly legacy?: boolean | undefined;
  readonly allowRemote?: boolean | undefined;
  readonly timeoutMs?: number | undefined;
  /** As for `MediaService.getMedia`: a signal, or a function called only when the lookup has to wait. */
  readonly signal?: SignalSource | undefined;
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

/** A queued or running generation of a media item's pre-generated sizes. */
interface PregenJob {
  readonly record: MediaRecord;
  started: boolean;
  readonly done: Promise<void>;
  run(): Promise<void>;
}

const MAX_CACHED_THUMBNAIL_BYTES = 1024 * 1024;
const DEFAULT_MAX_REMOTE_THUMBNAIL_BYTES = 4 * 1024 * 1024;
/** As `MediaService`'s remote fetches: `timeout_ms` default and cap. */
const DEFAULT_REMOTE_TIMEOUT_MS = 20_000;
const MAX_REMOTE_TIMEOUT_MS = 60_000;
/** A failed remote thumbnail (or a remote 404) is remembered this long per media item. */
const REMOTE_MISS_TTL_MS = 30_000;
/** The decoder format each remote thumbnail type must really be (probe check). */
const FORMAT_OF_TYPE: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpeg',
  'image/png': 'png',
  'image/apng': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
};
const ROWS_TTL_MS = 60_000;
/** Sources are write-once: a failure stays a failure, but time-outs under load deserve a retry. */
const FAILURE_TTL_MS = 5 * 60_000;
/** Only GIF and WebP sources animate (MSC2705); for the others `animated=true` asks for a still. */
const ANIMATABLE_TYPES: ReadonlySet<string> = new Set(['image/gif', 'image/webp']);
const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'avif',
  'image/apng': 'png',
};
/** `thumbnail.<ext>` per type, built once (a fresh string per request is flattened again by every header check). */
const THUMBNAIL_NAMES: ReadonlyMap<string, string> = new Map(Object.entries(EXTENSIONS).map(([type, ext]) => [type, `thumbnail.${ext}`]));

function cannotThumbnail(): MatrixError {
  return errors.unknown('Cannot generate thumbnails for the requested content', 400);
}

function essence(contentType: string | null): string {
  if (contentType === null) return '';
  // indexOf, not split: this runs on every thumbnail request.
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

function rowKey(t: Pick<StoredThumbnail, 'width' | 'height' | 'method' | 'animated' | 'contentType'>): string {
  return `${t.width}x${t.height}/${t.method}/${t.animated ? 'a' : 's'}/${t.contentType}`;
}

function specKey(spec: ThumbnailSpec): string {
  return `${spec.width}x${spec.height}/${spec.method}/${spec.animated ? 'a' : 's'}`;
}

/**
 * Whether a stored thumbnail is what generating `spec` alone gives (dynamic
 * mode serves only exact answers): a crop fills its box; a scale of a larger
 * source touches the box on one side.
 */
function answersExactly(row: StoredThumbnail, spec: ThumbnailSpec): boolean {
  if (row.method !== spec.method || row.animated !== spec.animated) return false;
  if (spec.method === 'crop') return row.width === spec.width && row.height === spec.height;
  return (row.width === spec.width && row.height <= spec.height) || (row.height === spec.height && row.width <= spec.width);
}

async function* single(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/**
 * Thumbnails of the media repository (spec §1.3, §2): stored in the blob
 * store and the metadata store's `thumbnails` rows, generated by a
 * {@link ThumbnailGenerator}.
 *
 * - The configured `sizes` are generated once per media item in a background
 *   queue (bounded concurrency) when the media is stored; the upload does not wait.
 * - A request is answered with the best stored thumbnail (`rules.select`); in
 *   `dynamic` mode with the exact requested size, generated once and stored.
 *   When nothing is stored yet (right after an upload, after a restart), the
 *   request generates on demand, single-flight per media item and spec,
 *   exactly as the queue would: the same parameters always give the same bytes.
 * - Failures are `MatrixError`s: 400 `M_UNKNOWN` for unsupported or corrupt
 *   content, 413 (502 remote) `M_TOO_LARGE`, and the lookup errors of `MediaService.getMedia`.
 *
 * Deleting media (`MediaService.deleteMedia`) deletes its thumbnails.
 *
 * Remote media that is not cached (no media row), with a `remote` that has
 * `fetchThumbnail` and `remoteThumbnailFirst` on: a thumbnail request asks
 * the remote's federation thumbnail endpoint (spec §3.2) for the requested
 * size (dynamic) or the best matching configured size (not dynamic, so at
 * most one row per configured size and animation is stored), single-flight
 * per media item and size. The answer must be a thumbnail type, within
 * `maxRemoteThumbnailBytes` and, with `probe`, really an image of that type;
 * it is stored as a `thumbnails` row of the remote `(server, media ID)`
 * without a media row (the thumbnails table has no foreign key to media),
 * and that row answers the same parameters from then on. A remote 404 is a
 * 404; any other failure or a refused answer falls back to fetching the
 * original and thumbnailing it here. Legacy (unauthenticated) requests
 * never take this path, so the freeze keeps working from the media rows.
 */
export class ThumbnailService {
  readonly #media: MediaService;
  readonly #blobs: BlobStore;
  readonly #metadata: MediaMetadataStore;
  readonly #generator: ThumbnailGenerator;
  readonly #rules: ThumbnailRules;
  readonly #sizes: readonly ThumbnailSpec[];
  readonly #dynamic: boolean;
  readonly #maxBackgroundJobs: number;
  readonly #maxQueuedJobs: number;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #rows = new WeightedLru<string, StoredThumbnail[]>(10_000);
  /** The last handle built for a stored row (rows are cached objects; entries go with them). */
  readonly #handles = new WeakMap<StoredThumbnail, ThumbnailHandle>();
  readonly #bytes: WeightedLru<string, Uint8Array>;
  readonly #failures = new WeightedLru<string, MatrixError>(10_000);
  /** `media/spec` → the row that answered it (dynamic mode), for outputs the exact test cannot recognise. */
  readonly #answered = new WeightedLru<string, string>(50_000);
  readonly #pregen = new Map<string, PregenJob>();
  readonly #queue: PregenJob[] = [];
  readonly #exact = new Map<string, Promise<StoredThumbnail>>();
  readonly #shutdown = new AbortController();
  readonly #unsubscribe: () => void;
  readonly #remote: RemoteMediaSource | undefined;
  readonly #maxRemoteThumbnailBytes: number;
  readonly #probe: ((bytes: Uint8Array) => Promise<ImageProbe>) | undefined;
  /** `media/spec` → the fetch of a remote thumbnail: its stored row, or null (fall back to the original). */
  readonly #remoteFlights = new Map<string, Promise<StoredThumbnail | null>>();
  /** `media` → a recent remote thumbnail failure: the 404 to give, or 'fallback' (go to the original directly). */
  readonly #remoteMisses = new WeightedLru<string, MatrixError | 'fallback'>(10_000);
  #running = 0;

  constructor(options: ThumbnailServiceOptions) {
    this.#media = options.media;
    this.#blobs = options.blobs;
    this.#metadata = options.metadata;
    this.#generator = options.generator;
    this.#rules = options.rules;
    this.#sizes = [...options.sizes];
    this.#dynamic = options.dynamic;
    this.#maxBackgroundJobs = positive('maxBackgroundJobs', options.maxBackgroundJobs ?? 1);
    this.#maxQueuedJobs = positive('maxQueuedJobs', options.maxQueuedJobs ?? 10_000);
    const cacheBytes = options.cacheBytes ?? 32 * 1024 * 1024;
    if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) throw new TypeError('ThumbnailService: cacheBytes must be >= 0');
    this.#bytes = new WeightedLru(cacheBytes === 0 ? 0 : Number.MAX_SAFE_INTEGER, cacheBytes);
    this.#logger = options.logger ?? noopLogger;
    this.#clock = options.clock ?? systemClock;
    this.#remote = options.remoteThumbnailFirst !== false && options.remote?.fetchThumbnail !== undefined ? options.remote : undefined;
    this.#maxRemoteThumbnailBytes = positive('maxRemoteThumbnailBytes', options.maxRemoteThumbnailBytes ?? DEFAULT_MAX_REMOTE_THUMBNAIL_BYTES);
    this.#probe = options.probe;
    this.#unsubscribe = options.media.onMediaStored((record) => this.schedule(record));
  }

  /** Parses the thumbnail query parameters (throws 400 `M_MISSING_PARAM` / `M_INVALID_PARAM`). */
  parseRequest(query: URLSearchParams): ThumbnailSpec {
    return this.#rules.parseRequest(query);
  }

  /**
   * Looks the media up (as `MediaService.getMedia`, waiting for remote
   * media to be stored) and gives its thumbnail for `spec`. Uncached remote
   * media may be answered by the remote's own thumbnail instead (see the class).
   */
  async getThumbnail(
    serverName: string,
    mediaId: string,
    spec: ThumbnailSpec,
    options: GetThumbnailOptions = {},
  ): Promise<ThumbnailHandle> {
    let handle: MediaHandle;
    if (this.#remoteThumbnailFirst(serverName, mediaId, options)) {
      try {
        handle = await this.#media.getMedia(serverName, mediaId, new ThumbnailMediaLookup(options, false));
      } catch (error) {
        // Not found locally may still be a quarantined or otherwise refused row: only a missing row asks the remote.
        if (!(error instanceof MatrixError) || error.errcode !== ErrCode.NOT_FOUND) throw error;
        if ((await this.#metadata.getMedia(serverName, mediaId)) !== null) throw error;
        const answer = await this.#remoteThumbnail(serverName, mediaId, spec, options);
        if (answer !== null) return answer;
        handle = await this.#media.getMedia(serverName, mediaId, new ThumbnailMediaLookup(options));
      }
    } else {
      handle = await this.#media.getMedia(serverName, mediaId, new ThumbnailMediaLookup(options));
    }
    handle.discard();
    // `options` itself, not a copy: its signal may be created on first read (see ThumbnailMediaLookup).
    return this.thumbnailFor(handle.record, spec, options);
  }

  /** The thumbnail of a stored media record for `spec` (the federation endpoint has the record already). */
  async thumbnailFor(record: MediaRecord, spec: ThumbnailSpec, options: { readonly signal?: SignalSource | undefined } = {}): Promise<ThumbnailHandle> {
    if (record.blobId === null) throw errors.notFound('Media not found');
    const type = essence(record.contentType);
    if (!this.#generator.supports(type)) throw cannotThumbnail();
    const key = `${record.serverName}/${record.mediaId}`;
    const failed = this.#failures.get(key, this.#clock.now());
    if (failed !== undefined) throw failed;
    // A source that cannot animate gives the still answer: one stored row serves both.
    const request: ThumbnailSpec = spec.animated && !ANIMATABLE_TYPES.has(type) ? { ...spec, animated: false } : spec;

    let rows = await this.#listRows(record);
    if (this.#pregen.has(key) || rows.length === 0) {
      // Right after the upload: answer from the same generation the queue would run.
      if (this.#sizes.length > 0) {
        await raceAbort(this.#pregenerate(record), options.signal);
        rows = await this.#listRows(record);
      }
    }
    let row: StoredThumbnail | undefined;
    if (this.#dynamic) {
      const known = this.#answered.get(`${key}/${specKey(request)}`, 0);
      row = rows.find((r) => (known === undefined ? answersExactly(r, request) : rowKey(r) === known));
      row ??= await raceAbort(this.#generateExact(record, request), options.signal);
    } else {
      row = this.#rules.select(rows, request);
      if (row === undefined) {
        const failure = this.#failures.get(key, this.#clock.now());
        if (failure !== undefined) throw failure;
        throw errors.notFound('No thumbnail of the requested method is available');
      }
    }
    // Handles are stateless, so the one of a cached row is reused while the record is the same object.
    const reusable = this.#handles.get(row);
    if (reusable !== undefined && reusable.record === record) return reusable;
    const handle = this.#handleFor(record, row, false);
    this.#handles.set(row, handle);
    return handle;
  }

  /** Queues the generation of the configured sizes for a stored media item (no-op when not an image we thumbnail). */
  schedule(record: MediaRecord): void {
    if (this.#shutdown.signal.aborted || this.#sizes.length === 0 || record.blobId === null) return;
    if (!this.#generator.supports(essence(record.contentType))) return;
    const key = `${record.serverName}/${record.mediaId}`;
    if (this.#pregen.has(key)) return;
    if (this.#queue.length >= this.#maxQueuedJobs) {
      this.#logger.warn({ mediaId: record.mediaId }, 'thumbnail queue full; thumbnails will be made on first request');
      return;
    }
    const job = this.#newJob(record);
    this.#queue.push(job);
    this.#pump();
  }

  /** Resolves when no background generation is queued or running (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.#pregen.size > 0) {
      await Promise.allSettled([...this.#pregen.values()].map((job) => job.done));
    }
  }

  /** Stops the queue and aborts running generations. Does not close the stores. */
  async close(): Promise<void> {
    this.#unsubscribe();
    this.#queue.length = 0;
    this.#shutdown.abort(new Error('ThumbnailService closed'));
    await Promise.allSettled([...this.#pregen.values()].filter((job) => job.started).map((job) => job.done));
  }

  #newJob(record: MediaRecord): PregenJob {
    const key = `${record.serverName}/${record.mediaId}`;
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined);
    const job: PregenJob = {
      record,
      started: false,
      done,
      run: async () => {
        job.started = true;
        try {
          await this.#generateSizes(record);
          resolve();
        } catch (error) {
          reject(error);
        } finally {
          this.#pregen.delete(key);
        }
      },
    };
    this.#pregen.set(key, job);
    return job;
  }

  #pump(): void {
    while (this.#running < this.#maxBackgroundJobs && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      if (job.started) continue; // a request ran it already
      this.#running++;
      void job.run().finally(() => {
        this.#running--;
        this.#pump();
      });
    }
  }

  /** The pre-generation of `record`, started now if it is only queued (a request is waiting for it). */
  #pregenerate(record: MediaRecord): Promise<void> {
    const key = `${record.serverName}/${record.mediaId}`;
    const job = this.#pregen.get(key) ?? this.#newJob(record);
    if (!job.started) void job.run();
    return job.done;
  }

  async #generateSizes(record: MediaRecord): Promise<void> {
    const type = essence(record.contentType);
    // Animated variants too for types that can animate, so `animated=true` has an answer without dynamic mode.
    const specs = ANIMATABLE_TYPES.has(type)
      ? [...this.#sizes, ...this.#sizes.filter((s) => !s.animated).map((s) => ({ ...s, animated: true }))]
      : this.#sizes;
    try {
      await this.#generateAndStore(record, specs, this.#shutdown.signal);
      this.#logger.debug({ serverName: record.serverName, mediaId: record.mediaId }, 'thumbnails generated');
    } catch (error) {
      const mapped = this.#mapError(error, record);
      if (!this.#shutdown.signal.aborted && mapped instanceof MatrixError) {
        this.#failures.set(`${record.serverName}/${record.mediaId}`, mapped, 1, this.#clock.now() + FAILURE_TTL_MS);
      }
      this.#logger.info({ err: error, serverName: record.serverName, mediaId: record.mediaId }, 'could not generate thumbnails');
      throw mapped;
    }
  }

  /** Generates exactly `spec`, single-flight per media item and spec, and gives the stored row that answers it. */
  #generateExact(record: MediaRecord, spec: ThumbnailSpec): Promise<StoredThumbnail> {
    const key = `${record.serverName}/${record.mediaId}/${specKey(spec)}`;
    let flight = this.#exact.get(key);
    if (flight === undefined) {
      flight = (async () => {
        try {
          const [row] = await this.#generateAndStore(record, [spec], this.#shutdown.signal);
          this.#answered.set(`${record.serverName}/${record.mediaId}/${specKey(spec)}`, rowKey(row!), 1);
          return row!;
        } catch (error) {
          throw this.#mapError(error, record);
        }
      })();
      this.#exact.set(key, flight);
      const forget = (): void => void this.#exact.delete(key);
      flight.then(forget, forget);
    }
    return flight;
  }

  #remoteThumbnailFirst(serverName: string, mediaId: string, options: GetThumbnailOptions): boolean {
    return (
      this.#remote !== undefined &&
      !this.#media.isLocal(serverName) &&
      isValidMediaId(mediaId) &&
      options.legacy !== true &&
      options.allowRemote !== false
    );
  }

  /**
   * The remote's thumbnail of uncached remote media for `spec`: a stored row
   * that answers it, or one fetched and stored now. Null when the caller
   * should fall back to the original. Throws 404 when the remote has no such media.
   */
  async #remoteThumbnail(
    serverName: string,
    mediaId: string,
    spec: ThumbnailSpec,
    options: GetThumbnailOptions,
  ): Promise<ThumbnailHandle | null> {
    const media = { serverName, mediaId };
    const key = `${serverName}/${mediaId}`;
    let wanted = spec;
    if (!this.#dynamic) {
      // The best configured size, so the remote is asked for (and we store) only those sizes.
      const sizes = this.#sizes.map((size) => ({ ...media, ...size, contentType: '', blobId: '', size: 0, createdAt: 0 }));
      const best = this.#rules.select(sizes, { ...spec, animated: false });
      if (best === undefined) throw errors.notFound('No thumbnail of the requested method is available');
      wanted = { width: best.width, height: best.height, method: best.method, animated: spec.animated };
    }
    const flightKey = `${key}/${specKey(wanted)}`;
    const rows = await this.#listRows(media);
    const known = this.#answered.get(flightKey, 0);
    let row = rows.find((r) => (known === undefined ? answersExactly(r, wanted) : rowKey(r) === known));
    if (row === undefined) {
      const missed = this.#remoteMisses.get(key, this.#clock.now());
      if (missed === 'fallback') return null;
      if (missed !== undefined) throw missed;
      let flight = this.#remoteFlights.get(flightKey);
      if (flight === undefined) {
        const timeoutMs = Math.min(Math.max(1, options.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS), MAX_REMOTE_TIMEOUT_MS);
        flight = this.#fetchRemoteThumbnail(serverName, mediaId, wanted, timeoutMs);
        this.#remoteFlights.set(flightKey, flight);
        const forget = (): void => void this.#remoteFlights.delete(flightKey);
        flight.then(forget, forget);
      }
      const fetched = await raceAbort(flight, options.signal);
      if (fetched === null) return null;
      row = fetched;
    }
    const stand: MediaRecord = {
      serverName,
      mediaId,
      blobId: null,
      contentType: null,
      uploadName: null,
      size: null,
      sha256: null,
      userId: null,
      createdAt: row.createdAt,
      uploadedAt: null,
      expiresAt: null,
      authenticated: true,
      quarantined: false,
      lastAccessAt: null,
    };
    return this.#handleFor(stand, row, true);
  }

  /** Fetches, checks and stores the remote's thumbnail for `spec`; null when the original should be used instead. */
  async #fetchRemoteThumbnail(serverName: string, mediaId: string, spec: ThumbnailSpec, timeoutMs: number): Promise<StoredThumbnail | null> {
    const key = `${serverName}/${mediaId}`;
    const signal = this.#shutdown.signal;
    const maxBytes = this.#maxRemoteThumbnailBytes;
    const log = { serverName, mediaId, width: spec.width, height: spec.height, method: spec.method, animated: spec.animated };
    const fallBack = (reason: string, err?: unknown): null => {
      this.#logger.info({ ...log, err, reason }, 'remote thumbnail unusable; thumbnailing the original instead');
      if (!signal.aborted) this.#remoteMisses.set(key, 'fallback', 1, this.#clock.now() + REMOTE_MISS_TTL_MS);
      return null;
    };
    let bytes: Uint8Array;
    let contentType: string;
    try {
      const answer = await this.#remote!.fetchThumbnail!({ serverName, mediaId, ...spec, maxBytes, timeoutMs, signal });
      contentType = answer.contentType === null ? '' : essenceOf(answer.contentType);
      if (!REMOTE_THUMBNAIL_CONTENT_TYPES.includes(contentType)) {
        await answer.body.cancel().catch(() => undefined);
        return fallBack(`not a thumbnail type: ${JSON.stringify(answer.contentType)}`);
      }
      if (answer.contentLength !== null && answer.contentLength > maxBytes) {
        await answer.body.cancel().catch(() => undefined);
        return fallBack('too large');
      }
      bytes = await readAtMost(answer.body, maxBytes);
    } catch (err) {
      if (signal.aborted) throw err;
      if (err instanceof RemoteMediaError && err.code === 'not_found') {
        const notFound = errors.notFound('Media not found');
        this.#remoteMisses.set(key, notFound, 1, this.#clock.now() + REMOTE_MISS_TTL_MS);
        throw notFound;
      }
      return fallBack(err instanceof ContentTooLargeError ? 'too large' : 'fetch failed', err);
    }
    if (bytes.byteLength === 0) return fallBack('empty');
    let width = spec.width;
    let height = spec.height;
    let animated = spec.animated && (contentType === 'image/gif' || contentType === 'image/webp' || contentType === 'image/apng');
    if (this.#probe !== undefined) {
      let probe: ImageProbe;
      try {
        probe = await this.#probe(bytes);
      } catch (err) {
        return fallBack('not a readable image', err);
      }
      if (probe.format !== FORMAT_OF_TYPE[contentType]) return fallBack(`declared ${contentType} but is ${probe.format}`);
      ({ width, height, animated } = probe);
      // Spec §2.4: animated=false MUST NOT get an animated thumbnail.
      if (animated && !spec.animated) return fallBack('animated answer to a still request');
    }
    const blob = await this.#blobs.put(single(bytes), { signal });
    const row: StoredThumbnail = {
      serverName,
      mediaId,
      width,
      height,
      method: spec.method,
      animated,
      contentType,
      blobId: blob.blobId,
      size: blob.size,
      createdAt: this.#clock.now(),
    };
    const inserted = await this.#metadata.insertThumbnail(row);
    // Another request or instance stored the same thumbnail first: theirs is the answer from now on.
    if (!inserted) await this.#deleteBlob(blob.blobId);
    this.#rows.delete(key);
    const stored = (await this.#listRows({ serverName, mediaId })).find((r) => rowKey(r) === rowKey(row));
    if (stored === undefined) throw new Error('ThumbnailService: a stored thumbnail vanished');
    if (inserted && bytes.byteLength <= MAX_CACHED_THUMBNAIL_BYTES) this.#bytes.set(stored.blobId, bytes, bytes.byteLength);
    this.#answered.set(`${key}/${specKey(spec)}`, rowKey(stored), 1);
    this.#logger.debug(log, 'remote thumbnail stored');
    return stored;
  }

  #mapError(error: unknown, record: MediaRecord): unknown {
    return this.#rules.errorFor(error, { remote: !this.#media.isLocal(record.serverName) }) ?? error;
  }

  /**
   * Generates `specs` from one read of the source and stores each distinct
   * output. Gives, per spec, the stored row (ours, or the one that was there first).
   */
  async #generateAndStore(record: MediaRecord, specs: readonly ThumbnailSpec[], signal: AbortSignal): Promise<StoredThumbnail[]> {
    const source = await this.#blobs.open(record.blobId!, { signal });
    if (source === null) throw errors.notFound('Media not found');
    const outputs = await this.#generator.generate(source, essence(record.contentType), specs, { signal });
    const stored = new Map<string, StoredThumbnail>();
    let inserted = false;
    for (const output of outputs) {
      const candidate = {
        width: output.width,
        height: output.height,
        method: output.spec.method,
        animated: output.animated,
        contentType: output.contentType,
      };
      const key = rowKey(candidate);
      if (stored.has(key)) continue;
      const blob = await this.#blobs.put(single(output.bytes), { signal });
      const row: StoredThumbnail = {
        serverName: record.serverName,
        mediaId: record.mediaId,
        ...candidate,
        blobId: blob.blobId,
        size: blob.size,
        createdAt: this.#clock.now(),
      };
      if (await this.#metadata.insertThumbnail(row)) {
        inserted = true;
        stored.set(key, row);
        if (output.bytes.byteLength <= MAX_CACHED_THUMBNAIL_BYTES) this.#bytes.set(row.blobId, output.bytes, output.bytes.byteLength);
      } else {
        // Another request or instance stored it first: theirs is the answer from now on.
        await this.#deleteBlob(blob.blobId);
      }
    }
    this.#rows.delete(`${record.serverName}/${record.mediaId}`);
    if (inserted && (await this.#metadata.getMedia(record.serverName, record.mediaId)) === null) {
      // The media was deleted while we worked: do not leave its thumbnails behind.
      for (const blobId of await this.#metadata.deleteThumbnails(record.serverName, record.mediaId)) await this.#deleteBlob(blobId);
      throw errors.notFound('Media not found');
    }
    const rows = await this.#listRows(record);
    const byKey = new Map(rows.map((r) => [rowKey(r), r] as const));
    return outputs.map((output) => {
      const row = byKey.get(
        rowKey({ width: output.width, height: output.height, method: output.spec.method, animated: output.animated, contentType: output.contentType }),
      );
      if (row === undefined) throw new Error('ThumbnailService: a stored thumbnail vanished');
      return row;
    });
  }

  async #listRows(record: Pick<MediaRecord, 'serverName' | 'mediaId'>): Promise<StoredThumbnail[]> {
    const key = `${record.serverName}/${record.mediaId}`;
    const now = this.#clock.now();
    const cached = this.#rows.get(key, now);
    if (cached !== undefined) return cached;
    const rows = await this.#metadata.listThumbnails(record.serverName, record.mediaId);
    // Sorted so that selection ties always break the same way, whatever order the store gives.
    rows.sort((a, b) => (rowKey(a) < rowKey(b) ? -1 : rowKey(a) > rowKey(b) ? 1 : 0));
    if (rows.length > 0) this.#rows.set(key, rows, 1, now + ROWS_TTL_MS);
    return rows;
  }

  async #deleteBlob(blobId: string): Promise<void> {
    try {
      await this.#blobs.delete(blobId);
    } catch (err) {
      this.#logger.error({ err, blobId }, 'could not delete thumbnail blob; it is now an orphan');
    }
  }

  #handleFor(record: MediaRecord, thumbnail: StoredThumbnail, fromRemote: boolean): ThumbnailHandle {
    const { blobId, size } = thumbnail;
    const blobs = this.#blobs;
    const cache = this.#bytes;
    const rows = this.#rows;
    const logger = this.#logger;
    const missing = (): MatrixError => {
      logger.error({ serverName: record.serverName, mediaId: record.mediaId, blobId }, 'blob of a thumbnail is missing');
      rows.delete(`${record.serverName}/${record.mediaId}`);
      return errors.notFound('Thumbnail not found');
    };
    return {
      record,
      thumbnail,
      fromRemote,
      live: false,
      contentType: thumbnail.contentType,
      uploadName: THUMBNAIL_NAMES.get(thumbnail.contentType) ?? 'thumbnail.bin',
      contentDisposition: contentDispositionFor(thumbnail.contentType, THUMBNAIL_NAMES.get(thumbnail.contentType) ?? 'thumbnail.bin'),
      size,
      // The blob is immutable and never shared, so its ID names these bytes.
      etag: `"thumb-${blobId}"`,
      discard(): void {},
      cachedSmall(): Uint8Array | undefined {
        return size > MAX_CACHED_THUMBNAIL_BYTES ? undefined : cache.get(blobId, 0);
      },
      async readSmall(signal?: AbortSignal): Promise<Uint8Array | null> {
        if (size > MAX_CACHED_THUMBNAIL_BYTES) return null;
        const cached = cache.get(blobId, 0);
        if (cached !== undefined) return cached;
        const stream = await blobs.open(blobId, signal === undefined ? {} : { signal });
        if (stream === null) throw missing();
        const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
        if (bytes.byteLength !== size) throw errors.unknown('Stored thumbnail is damaged');
        cache.set(blobId, bytes, bytes.byteLength);
        return bytes;
      },
      async open(range?: ByteRange, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
        const stream = await blobs.open(blobId, {
          ...(range === undefined ? {} : { start: range.start, end: range.end }),
          ...(signal === undefined ? {} : { signal }),
        });
        if (stream === null) throw missing();
        return stream;
      },
    };
  }
}

/**
 * The `getMedia` options of a thumbnail lookup (never live; `allowRemote`
 * overridden when given). The signal is read through, not copied: callers
 * may create it on first read, and a cache hit never reads it. A class (the
 * getter on the prototype) because a literal with a getter is slow in V8.
 */
class ThumbnailMediaLookup implements GetMediaOptions {
  readonly #options: GetThumbnailOptions;
  readonly legacy: boolean | undefined;
  readonly allowRemote: boolean | undefined;
  readonly timeoutMs: number | undefined;
  readonly allowLive: boolean = false;

  constructor(options: GetThumbnailOptions, allowRemote?: boolean) {
    this.#options = options;
    this.legacy = options.legacy;
    this.allowRemote = allowRemote ?? options.allowRemote;
    this.timeoutMs = options.timeoutMs;
  }

  get signal(): SignalSource | undefined {
    return this.#options.signal;
  }
}

/** Reads a (small) body whole, refusing it once more than `maxBytes` arrive. */
async function readAtMost(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    // Leaving the loop cancels the stream.
    if (total > maxBytes) throw new ContentTooLargeError(maxBytes);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`ThumbnailService: ${name} must be a positive integer`);
  return value;
}
