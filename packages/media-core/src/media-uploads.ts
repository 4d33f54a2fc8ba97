import { ContentTooLargeError, ErrCode, MatrixError, errors } from '@hsmedia/errors';
import { signalOf, type Requester, type SignalSource } from '@hsmedia/runtime';
import { normaliseUploadContentType, normaliseUploadFilename } from './content-headers.js';
import { formatMxcUri, generateId, isValidMediaId } from './ids.js';
import { DeploymentUserLock } from './deployment-user-lock.js';
import type { JobLeases } from './job-leases.js';
import type { MediaCatalog } from './media-catalog.js';
import { newMediaRecord } from './media-record.js';
import type { ByteSource, MediaQueries, MediaRecord, StoredBlob } from './ports/index.js';
import type { TimeoutPolicy } from './timeout-policy.js';
import { UploadQuotas, type UploadQuotaOptions } from './upload-quota.js';
import { UploadWaiters } from './upload-waiters.js';

/** Options of async uploads (`POST /_matrix/media/v1/create`). */
export interface AsyncUploadOptions {
  /** Pending (created, not uploaded, not expired) IDs a user may hold; more is 429. Default 5 (Synapse's). */
  readonly maxPending?: number;
  /** How long a created ID may wait for its upload, in ms. Default 24 h (the spec's recommendation). */
  readonly unusedExpirationMs?: number;
}

/** What {@link MediaUploads.createMedia} reserved. */
export interface CreatedMedia {
  readonly contentUri: string;
  readonly mediaId: string;
  /** When the ID expires unless uploaded to (ms since the epoch). */
  readonly unusedExpiresAt: number;
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

/** An upload into an ID reserved with {@link MediaUploads.createMedia}. */
export interface PendingUploadRequest extends UploadRequest {
  readonly serverName: string;
  readonly mediaId: string;
}

/** What an upload produced. */
export interface UploadResult {
  readonly contentUri: string;
  readonly mediaId: string;
}

/** Options of {@link MediaUploads}. */
export interface MediaUploadsOptions {
  readonly catalog: MediaCatalog;
  /** For quotas: what a user has stored. */
  readonly queries: Pick<MediaQueries, 'getUserUsage'>;
  readonly maxUploadBytes: number;
  readonly freezeLegacy: boolean;
  readonly asyncUploads?: AsyncUploadOptions | undefined;
  readonly quotas?: UploadQuotaOptions | undefined;
  /**
   * Leases every process of the deployment shares: with them the quota and
   * pending-ID checks hold across processes, not just in this one.
   */
  readonly userLeases?: JobLeases | undefined;
  readonly timeouts: TimeoutPolicy;
  /** Poll interval of the store while waiting for an async upload, in ms. */
  readonly pendingPollMs: number;
}

const INSERT_ATTEMPTS = 5;

function positiveOrZero(name: string, value: number, allowZero: boolean): number {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new TypeError(`MediaService: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${value}`);
  }
  return value;
}

/**
 * Uploads: plain (`POST /_matrix/media/v3/upload`) and async (`/create`,
 * then `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`, spec v1.7),
 * with the size limit enforced while streaming, per-user quotas, the cap on
 * pending IDs, and the wait of readers for a pending upload. Bytes go to a
 * staging blob, through the admission stage, and only then become a record;
 * any failure on the way leaves nothing behind.
 */
export class MediaUploads {
  readonly #catalog: MediaCatalog;
  readonly #queries: Pick<MediaQueries, 'getUserUsage'>;
  readonly #maxUploadBytes: number;
  readonly #freezeLegacy: boolean;
  readonly #maxPending: number;
  readonly #unusedExpirationMs: number;
  readonly #quotas: UploadQuotas | undefined;
  readonly #timeouts: TimeoutPolicy;
  readonly #pendingPollMs: number;
  readonly #waiters = new UploadWaiters();
  /** Serialises per-user check-then-write steps (quota, pending cap) in this process and, with leases, across the deployment. */
  readonly #userLocks: DeploymentUserLock;

  constructor(options: MediaUploadsOptions) {
    this.#catalog = options.catalog;
    this.#queries = options.queries;
    this.#maxUploadBytes = positiveOrZero('maxUploadBytes', options.maxUploadBytes, false);
    this.#freezeLegacy = options.freezeLegacy;
    const asyncUploads = options.asyncUploads ?? {};
    this.#maxPending = positiveOrZero('asyncUploads.maxPending', asyncUploads.maxPending ?? 5, true);
    this.#unusedExpirationMs = positiveOrZero('asyncUploads.unusedExpirationMs', asyncUploads.unusedExpirationMs ?? 24 * 60 * 60 * 1000, false);
    this.#quotas = options.quotas === undefined ? undefined : new UploadQuotas(options.quotas);
    this.#timeouts = options.timeouts;
    this.#pendingPollMs = positiveOrZero('pendingPollMs', options.pendingPollMs, false);
    this.#userLocks = new DeploymentUserLock({ leases: options.userLeases, holder: `uploads-${generateId(16)}`, clock: options.catalog.clock });
    // An upload completed by another process arrives as an invalidation (the catalog's change feed): wake its readers now.
    this.#catalog.onInvalidate((serverName, mediaId) => this.#waiters.notify(`${serverName}/${mediaId}`));
  }

  get maxUploadBytes(): number {
    return this.#maxUploadBytes;
  }

  /** Readers in this process now waiting for a pending async upload (for metrics). */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Stores an upload under a new media ID. Errors: 403
   * `M_GUEST_ACCESS_FORBIDDEN` (guest), 400 `M_INVALID_PARAM` (unusable
   * Content-Type or filename), 413 `M_TOO_LARGE`, 403 over quota.
   */
  async upload(request: UploadRequest): Promise<UploadResult> {
    const { requester } = request;
    if (requester.isGuest) throw new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guests cannot upload media');
    const { contentType, filename } = await this.#checkBeforeBody(request);
    const stored = await this.#store(request);
    try {
      // The client left after the last byte but before we answered: it never learns the URI.
      request.signal?.throwIfAborted();
      const mediaId = generateId();
      await this.#admit(stored, this.#catalog.serverName, mediaId, contentType, requester, request.signal);
      return await this.#underQuota(requester.userId, stored.size, () => this.#publishUploaded(mediaId, stored, contentType, filename, requester));
    } catch (err) {
      await this.#catalog.discardBlob(stored.blobId);
      throw err;
    }
  }

  /**
   * Reserves a media ID for a later upload (spec v1.7). Errors: 403
   * `M_GUEST_ACCESS_FORBIDDEN`; 429 `M_LIMIT_EXCEEDED` when the user already
   * holds `asyncUploads.maxPending` pending IDs (no `retry_after_ms`: a slot
   * frees when an upload completes or an ID expires).
   */
  async createMedia(requester: Requester): Promise<CreatedMedia> {
    if (requester.isGuest) throw new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guests cannot upload media');
    // Count and insert one at a time per user, so concurrent creates cannot all slip under the cap.
    return this.#userLocks.run(`pending:${requester.userId}`, async () => {
      const now = this.#catalog.clock.now();
      const pending = await this.#catalog.records.countPendingMedia(requester.userId, now);
      if (pending >= this.#maxPending) {
        throw new MatrixError(ErrCode.LIMIT_EXCEEDED, `You may have at most ${this.#maxPending} pending uploads`);
      }
      const expiresAt = now + this.#unusedExpirationMs;
      const record = await this.#insertUnderNewId((mediaId) => this.#newRecord(mediaId, requester, now, { expiresAt }), (r) => this.#catalog.reserve(r));
      this.#catalog.logger.debug({ mediaId: record.mediaId, userId: requester.userId }, 'media ID created');
      return { contentUri: formatMxcUri(record.serverName, record.mediaId), mediaId: record.mediaId, unusedExpiresAt: expiresAt };
    });
  }

  /**
   * Uploads into an ID reserved with {@link createMedia}. Every check that
   * needs no body runs before the first byte is read; readers waiting for
   * the ID in this process are woken at once. Errors: 404 `M_NOT_FOUND`
   * (not ours, unknown, not from `/create`, or expired); 403 `M_FORBIDDEN`
   * (another user created it, or over quota); 409 `M_CANNOT_OVERWRITE_MEDIA`
   * (already uploaded); otherwise as {@link upload}.
   */
  async uploadPending(request: PendingUploadRequest): Promise<void> {
    const { requester, serverName, mediaId } = request;
    const catalog = this.#catalog;
    if (!catalog.isLocal(serverName) || !isValidMediaId(mediaId)) throw errors.notFound('Media not found');
    const record = await catalog.records.getMedia(serverName, mediaId);
    // A record without expiry was never pending (a plain upload or remote media).
    if (record === null || (record.blobId === null && record.expiresAt === null)) throw errors.notFound('Media not found');
    if (record.userId !== requester.userId) throw errors.forbidden('Only the creator of this media ID may upload to it');
    if (record.blobId !== null) throw errors.cannotOverwrite();
    if (record.expiresAt !== null && record.expiresAt <= catalog.clock.now()) throw errors.notFound('Media not found');
    const { contentType, filename } = await this.#checkBeforeBody(request);
    const stored = await this.#store(request);
    let completed: MediaRecord;
    try {
      request.signal?.throwIfAborted();
      await this.#admit(stored, serverName, mediaId, contentType, requester, request.signal);
      completed = {
        ...record,
        blobId: stored.blobId,
        contentType,
        uploadName: filename ?? null,
        size: stored.size,
        sha256: stored.sha256,
        uploadedAt: catalog.clock.now(),
        ...this.#scanFields(),
      };
      // MSC2246 lets an upload that started before the expiry finish: no second expiry check.
      if (!(await this.#underQuota(requester.userId, stored.size, () => catalog.publishCompletion(completed)))) {
        // Lost a race: another PUT filled it (409), or it was deleted meanwhile (404).
        const now = await catalog.records.getMedia(serverName, mediaId);
        throw now === null ? errors.notFound('Media not found') : errors.cannotOverwrite();
      }
    } catch (err) {
      await catalog.discardBlob(stored.blobId);
      throw err;
    }
    this.#waiters.notify(`${serverName}/${mediaId}`);
    catalog.logger.debug({ mediaId, userId: requester.userId }, 'async media uploaded');
  }

  /**
   * Waits for a pending async upload to arrive (`timeout_ms`, capped by the
   * timeout policy), polling the store; woken at once by an upload in this
   * process. Errors: 404 when the ID expires or disappears, 504
   * `M_NOT_YET_UPLOADED` when the time is up.
   */
  async waitUntilUploaded(initial: MediaRecord, options: { readonly timeoutMs?: number | undefined; readonly signal?: SignalSource | undefined }): Promise<MediaRecord> {
    const catalog = this.#catalog;
    const waitKey = `${initial.serverName}/${initial.mediaId}`;
    const deadline = catalog.clock.now() + this.#timeouts.waitMs(options.timeoutMs);
    let record: MediaRecord | null = initial;
    for (;;) {
      if (record === null) throw errors.notFound('Media not found');
      if (record.blobId !== null) {
        catalog.remember(record);
        return record;
      }
      const now = catalog.clock.now();
      if (record.expiresAt !== null && record.expiresAt <= now) throw errors.notFound('Media not found');
      if (now >= deadline) throw errors.notYetUploaded();
      // Woken at once by a local upload; the poll catches uploads on other instances.
      await this.#waiters.wait(waitKey, Math.min(this.#pendingPollMs, deadline - now), signalOf(options.signal));
      record = await catalog.records.getMedia(initial.serverName, initial.mediaId);
    }
  }

  /** Checks that need no body: type, name, declared length, quota for the declared size. */
  async #checkBeforeBody(request: UploadRequest): Promise<{ contentType: string; filename: string | undefined }> {
    const contentType = normaliseUploadContentType(request.contentType);
    if (contentType === null) throw errors.invalidParam('Invalid Content-Type');
    const filename = normaliseUploadFilename(request.filename);
    if (filename === null) throw errors.invalidParam('Invalid filename');
    if (request.contentLength !== undefined && request.contentLength > this.#maxUploadBytes) throw this.#tooLarge();
    // Quota before the first byte is read: the declared size and one more file.
    await this.#quotas?.check(this.#queries, request.requester.userId, request.contentLength ?? 0, this.#catalog.clock.now());
    request.signal?.throwIfAborted();
    return { contentType, filename };
  }

  /** Streams the body into a staging blob within the size limit. */
  async #store(request: UploadRequest): Promise<StoredBlob> {
    try {
      return await this.#catalog.blobs.put(request.body, {
        maxBytes: this.#maxUploadBytes,
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      });
    } catch (err) {
      if (err instanceof ContentTooLargeError) throw this.#tooLarge();
      throw err;
    }
  }

  #admit(stored: StoredBlob, serverName: string, mediaId: string, contentType: string, requester: Requester, signal: AbortSignal | undefined): Promise<void> {
    const { blobId, size, sha256 } = stored;
    return this.#catalog.admit({ kind: 'upload', serverName, mediaId, blobId, size, sha256, contentType, userId: requester.userId }, signal);
  }

  /** Publishes a fresh upload under `mediaId` (or another fresh ID should that one be taken). */
  async #publishUploaded(mediaId: string, stored: StoredBlob, contentType: string, filename: string | undefined, requester: Requester): Promise<UploadResult> {
    const now = this.#catalog.clock.now();
    const record = await this.#insertUnderNewId(
      (mediaId) =>
        this.#newRecord(mediaId, requester, now, {
          blobId: stored.blobId,
          contentType,
          uploadName: filename ?? null,
          size: stored.size,
          sha256: stored.sha256,
          uploadedAt: now,
          ...this.#scanFields(),
        }),
      (r) => this.#catalog.publish(r),
      mediaId,
    );
    this.#catalog.logger.debug({ mediaId: record.mediaId, size: record.size, userId: requester.userId }, 'media uploaded');
    return { contentUri: formatMxcUri(record.serverName, record.mediaId), mediaId: record.mediaId };
  }

  /** Inserts a record under a fresh random ID, retrying on the (unlikely) collision. */
  async #insertUnderNewId(
    make: (mediaId: string) => MediaRecord,
    insert: (record: MediaRecord) => Promise<boolean>,
    firstId: string = generateId(),
  ): Promise<MediaRecord> {
    for (let attempt = 0; attempt < INSERT_ATTEMPTS; attempt++) {
      const record = make(attempt === 0 ? firstId : generateId());
      if (await insert(record)) return record;
    }
    throw new Error('MediaService: could not allocate a unique media ID');
  }

  #newRecord(mediaId: string, requester: Requester, now: number, fields: Partial<MediaRecord>): MediaRecord {
    return newMediaRecord({
      serverName: this.#catalog.serverName,
      mediaId,
      userId: requester.userId,
      createdAt: now,
      authenticated: this.#freezeLegacy,
      ...fields,
    });
  }

  /**
   * Runs `commit` when storing `size` more bytes keeps `userId` within its
   * quota. The check and the write run one at a time per user (across the
   * deployment with `userLeases`), so two concurrent uploads cannot both
   * pass on the same room.
   */
  async #underQuota<T>(userId: string, size: number, commit: () => Promise<T>): Promise<T> {
    const quotas = this.#quotas;
    if (quotas === undefined) return commit();
    return this.#userLocks.run(`quota:${userId}`, async () => {
      await quotas.check(this.#queries, userId, size, this.#catalog.clock.now());
      return commit();
    });
  }

  /** The scan state of new bytes: `pending` while scanning is on (nothing is served before a verdict). */
  #scanFields(): Pick<MediaRecord, 'scanState'> {
    const state = this.#catalog.newScanState;
    return state === undefined ? {} : { scanState: state };
  }

  #tooLarge(): MatrixError {
    return errors.tooLarge(`Cannot upload files larger than ${this.#maxUploadBytes} bytes`);
  }
}
