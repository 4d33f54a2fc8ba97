import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import { raceAbort, type Logger, type SignalSource } from '@hsmedia/runtime';
import { isValidMediaId } from './ids.js';
import type { MediaCatalog } from './media-catalog.js';
import { newMediaRecord } from './media-record.js';
import type { MediaHandle, ThumbnailHandle } from './media-handle.js';
import type { AccessRequest } from './media-access.js';
import type { GetMediaOptions, MediaService } from './media-service.js';
import type { ImageProbe, MediaRecord, RemoteMediaSource, StoredThumbnail, ThumbnailGenerator, ThumbnailSpec } from './ports/index.js';
import { RemoteThumbnails } from './remote-thumbnails.js';
import { ANIMATABLE_TYPES, ThumbnailGeneration, typeOf } from './thumbnail-generation.js';
import { ThumbnailRows } from './thumbnail-rows.js';

/**
 * The thumbnail rules a generator package supplies (`@hsmedia/thumbnailer`:
 * `thumbnailSpecForRequest`, `selectThumbnail`, `thumbnailErrorToMatrixError`).
 * Injected so media-core depends on no image code.
 */
export interface ThumbnailRules {
  /** Validates `width`, `height`, `method`, `animated`; throws a `MatrixError` (400) when they are bad. */
  parseRequest(query: URLSearchParams): ThumbnailSpec;
  /** The stored thumbnail that best answers `request` (spec v1.11, "Thumbnails"), or undefined. */
  select(stored: readonly StoredThumbnail[], request: ThumbnailSpec): StoredThumbnail | undefined;
  /** The `MatrixError` for a generator failure, or null when `error` is not the generator's (it is rethrown). */
  errorFor(error: unknown, options: { readonly remote: boolean }): MatrixError | null;
}

/** Options for {@link ThumbnailService}. */
export interface ThumbnailServiceOptions {
  /** The media service: its catalog holds the stores, caches and handles thumbnails use. */
  readonly media: MediaService;
  readonly generator: ThumbnailGenerator;
  readonly rules: ThumbnailRules;
  /**
   * Sizes generated once per media item, off the request path: at upload for
   * local media, after the fetch for remote media (the spec recommends
   * 32×32 crop, 96×96 crop, 320×240, 640×480, 800×600 scale).
   */
  readonly sizes: readonly ThumbnailSpec[];
  /** Generate (and store) the exact requested size on demand. When false, requests get the best of `sizes`. */
  readonly dynamic: boolean;
  /** Background generation jobs running at once. Default 1. */
  readonly maxBackgroundJobs?: number;
  /** Background jobs waiting; more are dropped (requests then generate on demand). Default 10 000. */
  readonly maxQueuedJobs?: number;
  /**
   * Where remote thumbnails come from (normally the `remote` of the
   * `MediaService`). Used only when it has `fetchThumbnail` and
   * `remoteThumbnailFirst` is on; see {@link ThumbnailService}.
   */
  readonly remote?: RemoteMediaSource;
  /**
   * For remote media that is not cached, ask the remote's thumbnail endpoint
   * first instead of fetching the original (the spec allows both). The
   * original's size is unknown before fetching it, so this is the whole
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
  /** Default: the media service's logger. */
  readonly logger?: Logger;
}

/** Options for {@link ThumbnailService.getThumbnail}: those of `MediaService.getMedia` that a thumbnail request has. */
export type GetThumbnailOptions = Pick<GetMediaOptions, 'legacy' | 'allowRemote' | 'timeoutMs' | 'signal' | 'requester' | 'origin'>;

const DEFAULT_MAX_REMOTE_THUMBNAIL_BYTES = 4 * 1024 * 1024;
const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'avif',
  'image/apng': 'png',
};
/** `thumbnail.<ext>` per type, built once. */
const THUMBNAIL_NAMES: ReadonlyMap<string, string> = new Map(Object.entries(EXTENSIONS).map(([type, ext]) => [type, `thumbnail.${ext}`]));

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`ThumbnailService: ${name} must be a positive integer`);
  return value;
}

/**
 * Thumbnails of the media repository (spec v1.11, "Thumbnails"): stored in
 * the blob store and the thumbnail index, made by a {@link ThumbnailGenerator}.
 *
 * - The configured `sizes` are made once per media item in a background
 *   queue when the media is stored; the upload does not wait.
 * - A request is answered with the best stored thumbnail (`rules.select`); in
 *   `dynamic` mode with the exact requested size, made once and stored.
 *   When nothing is stored yet (right after an upload, after a restart), the
 *   request generates on demand exactly as the queue would.
 * - Uncached remote media, with a `remote` that has `fetchThumbnail` and
 *   `remoteThumbnailFirst` on: the remote's own thumbnail is asked for
 *   first (see `RemoteThumbnails`); legacy requests never take this path,
 *   so the freeze keeps working from the media rows.
 * - Failures are `MatrixError`s: 400 `M_UNKNOWN` for unsupported or corrupt
 *   content, 413 (502 remote) `M_TOO_LARGE`, and the errors of `MediaService.getMedia`.
 *
 * Deleting media deletes its thumbnails (`MediaCatalog.delete`).
 */
export class ThumbnailService {
  readonly #media: MediaService;
  readonly #catalog: MediaCatalog;
  readonly #generator: ThumbnailGenerator;
  readonly #rules: ThumbnailRules;
  readonly #sizes: readonly ThumbnailSpec[];
  readonly #dynamic: boolean;
  readonly #rows: ThumbnailRows;
  readonly #generation: ThumbnailGeneration;
  readonly #remote: RemoteThumbnails | undefined;
  readonly #unsubscribe: () => void;

  constructor(options: ThumbnailServiceOptions) {
    this.#media = options.media;
    this.#catalog = options.media.catalog;
    this.#generator = options.generator;
    this.#rules = options.rules;
    this.#sizes = [...options.sizes];
    this.#dynamic = options.dynamic;
    this.#rows = new ThumbnailRows(this.#catalog);
    const logger = options.logger ?? this.#catalog.logger;
    this.#generation = new ThumbnailGeneration({
      catalog: this.#catalog,
      rows: this.#rows,
      logger,
      generator: options.generator,
      sizes: this.#sizes,
      errorFor: (error, record) => this.#rules.errorFor(error, { remote: !this.#catalog.isLocal(record.serverName) }),
      maxBackgroundJobs: positive('maxBackgroundJobs', options.maxBackgroundJobs ?? 1),
      maxQueuedJobs: positive('maxQueuedJobs', options.maxQueuedJobs ?? 10_000),
    });
    const remote = options.remote;
    this.#remote =
      options.remoteThumbnailFirst !== false && remote?.fetchThumbnail !== undefined
        ? new RemoteThumbnails({
            catalog: this.#catalog,
            rows: this.#rows,
            logger,
            remote,
            maxBytes: positive('maxRemoteThumbnailBytes', options.maxRemoteThumbnailBytes ?? DEFAULT_MAX_REMOTE_THUMBNAIL_BYTES),
            probe: options.probe,
          })
        : undefined;
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
  async getThumbnail(serverName: string, mediaId: string, spec: ThumbnailSpec, options: GetThumbnailOptions = {}): Promise<ThumbnailHandle> {
    const lookup: GetMediaOptions = { ...options, allowLive: false, purpose: 'thumbnail' };
    let handle: MediaHandle;
    if (this.#remoteFirst(serverName, mediaId, options)) {
      try {
        handle = await this.#media.getMedia(serverName, mediaId, { ...lookup, allowRemote: false });
      } catch (error) {
        // Not found locally may still be a quarantined or otherwise refused row: only a missing row asks the remote.
        if (!(error instanceof MatrixError) || error.errcode !== ErrCode.NOT_FOUND) throw error;
        if ((await this.#catalog.records.getMedia(serverName, mediaId)) !== null) throw error;
        const answer = await this.#remoteThumbnail(serverName, mediaId, spec, options);
        if (answer !== null) return answer;
        handle = await this.#media.getMedia(serverName, mediaId, lookup);
      }
    } else {
      handle = await this.#media.getMedia(serverName, mediaId, lookup);
    }
    handle.discard();
    return this.thumbnailFor(handle.record, spec, options);
  }

  /**
   * {@link getThumbnail}'s answer when it is in memory, without a promise:
   * the media record is cached and servable (`MediaService.servableCached`),
   * and the same `spec` object was answered from the same cached rows before
   * (the routes share one spec object per query string). Undefined when not;
   * then nothing was done or counted, and `getThumbnail` gives the answer. A
   * promise only when the access rules have to ask.
   */
  cachedThumbnail(serverName: string, mediaId: string, spec: ThumbnailSpec, request: AccessRequest): ThumbnailHandle | Promise<ThumbnailHandle> | undefined {
    const record = this.#media.servableCached(serverName, mediaId);
    if (record === undefined) return undefined;
    // thumbnailFor's own checks first: a remembered failure or a generation under way is its work.
    if (this.#generation.failureOf(record) !== undefined || this.#generation.isPending(record)) return undefined;
    const row = this.#rows.knownAnswer(record, spec);
    if (row === undefined) return undefined;
    const admitted = this.#media.admitCached(record, request, 'thumbnail');
    const handle = this.#handleFor(record, row, false);
    return admitted === undefined ? handle : admitted.then(() => handle);
  }

  /** The thumbnail of a stored media record for `spec` (the federation endpoint has the record already). */
  async thumbnailFor(record: MediaRecord, spec: ThumbnailSpec, options: { readonly signal?: SignalSource | undefined } = {}): Promise<ThumbnailHandle> {
    if (record.blobId === null) throw errors.notFound('Media not found');
    const type = typeOf(record);
    if (!this.#generator.supports(type)) throw errors.cannotThumbnail();
    const failed = this.#generation.failureOf(record);
    if (failed !== undefined) throw failed;
    // A source that cannot animate gives the still answer: one stored row serves both.
    const request: ThumbnailSpec = spec.animated && !ANIMATABLE_TYPES.has(type) ? { ...spec, animated: false } : spec;

    let rows = await this.#rows.list(record);
    if ((this.#generation.isPending(record) || rows.length === 0) && this.#sizes.length > 0) {
      // Right after the upload: answer from the same generation the queue would run.
      await raceAbort(this.#generation.pregenerate(record), options.signal);
      rows = await this.#rows.list(record);
    }
    let row: StoredThumbnail | undefined;
    if (this.#dynamic) {
      row = this.#rows.exactAnswer(record, rows, request) ?? (await raceAbort(this.#generation.exact(record, request), options.signal));
    } else {
      row = this.#rules.select(rows, request);
      if (row === undefined && this.#rules.select(this.#configuredRows(record.serverName, record.mediaId), { ...request, animated: false }) !== undefined) {
        // A configured size would answer, so its row is not made yet: another instance may be storing
        // the sizes right now (its rows appear one by one). Make them here too before saying none fits.
        await raceAbort(this.#generation.pregenerate(record), options.signal);
        rows = await this.#rows.list(record);
        row = this.#rules.select(rows, request);
      }
      if (row === undefined) {
        throw this.#generation.failureOf(record) ?? errors.notFound('No thumbnail of the requested method is available');
      }
    }
    // Only a choice among these rows (a row made just now is not in them) can be made again without I/O.
    if (rows.includes(row)) this.#rows.rememberAnswer(rows, spec, row);
    return this.#handleFor(record, row, false);
  }

  /** Queues the generation of the configured sizes for a stored media item (no-op when not an image we thumbnail). */
  schedule(record: MediaRecord): void {
    this.#generation.schedule(record);
  }

  /** Resolves when no background generation is queued or running (for tests and orderly shutdown). */
  idle(): Promise<void> {
    return this.#generation.idle();
  }

  /** Stops the queue and aborts running generations. Does not close the stores. */
  async close(): Promise<void> {
    this.#unsubscribe();
    this.#remote?.close();
    this.#rows.close();
    await this.#generation.close();
  }

  #remoteFirst(serverName: string, mediaId: string, options: GetThumbnailOptions): boolean {
    return (
      this.#remote !== undefined &&
      !this.#catalog.isLocal(serverName) &&
      // A server we never fetch from is not asked for thumbnails either: getMedia answers 404.
      this.#media.mayFetchFrom(serverName) &&
      isValidMediaId(mediaId) &&
      options.legacy !== true &&
      options.allowRemote !== false
    );
  }

  /** The configured sizes as stand-in rows, to ask the selection rules which size would answer a request. */
  #configuredRows(serverName: string, mediaId: string): StoredThumbnail[] {
    return this.#sizes.map((size) => ({ serverName, mediaId, ...size, contentType: '', blobId: '', size: 0, createdAt: 0 }));
  }

  /** The remote's thumbnail of uncached remote media for `spec`, or null to fall back to the original. */
  async #remoteThumbnail(serverName: string, mediaId: string, spec: ThumbnailSpec, options: GetThumbnailOptions): Promise<ThumbnailHandle | null> {
    let wanted = spec;
    if (!this.#dynamic) {
      // The best configured size, so the remote is asked for (and we store) only those sizes.
      const best = this.#rules.select(this.#configuredRows(serverName, mediaId), { ...spec, animated: false });
      if (best === undefined) throw errors.notFound('No thumbnail of the requested method is available');
      wanted = { width: best.width, height: best.height, method: best.method, animated: spec.animated };
    }
    const row = await this.#remote!.rowFor(serverName, mediaId, wanted, this.#media.timeouts.fetchMs(options.timeoutMs), options.signal);
    if (row === null) return null;
    // No media row exists: a stand-in names the media for the handle and the access policy.
    const standIn = newMediaRecord({ serverName, mediaId, createdAt: row.createdAt, authenticated: true });
    await this.#media.checkAccess(standIn, options, 'thumbnail');
    return this.#handleFor(standIn, row, true);
  }

  #handleFor(record: MediaRecord, row: StoredThumbnail, fromRemote: boolean): ThumbnailHandle {
    return this.#catalog.thumbnailHandleFor(record, row, THUMBNAIL_NAMES.get(row.contentType) ?? 'thumbnail.bin', fromRemote);
  }
}
