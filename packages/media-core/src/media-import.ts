import { ContentTooLargeError, isMatrixError } from '@hsmedia/errors';
import { noopLogger, type Logger } from '@hsmedia/runtime';
import { GroupCommit } from './group-commit.js';
import { isValidMediaId, isValidServerName } from './ids.js';
import type { MediaCatalog } from './media-catalog.js';
import { ImportLookahead, importRowCommit, type KnownItem, type LookupItem } from './media-import-batches.js';
import type { ByteSource, MediaCandidate, MediaRecord, StoredBlob, StoredThumbnail, ThumbnailMethod } from './ports/index.js';
import { SHA256_HEX_RE } from './ports/index.js';

/**
 * One media item brought in from another media repository (Synapse,
 * matrix-media-repo, an hsmedia export). Its `(serverName, mediaId)` is kept
 * as is, so every `mxc://` URI that pointed at it keeps working.
 */
export interface ImportedMediaRecord {
  /** The origin: this server's name for local media, the remote's for cached remote media. */
  readonly serverName: string;
  readonly mediaId: string;
  readonly contentType: string | null;
  readonly uploadName: string | null;
  /** The uploader of local media; null for remote media. */
  readonly userId: string | null;
  /** When the ID was created (ms since epoch); also taken as the upload time. */
  readonly createdAt: number;
  readonly lastAccessAt: number | null;
  readonly quarantined: boolean;
  /** Exempt from quarantine (Synapse's `safe_from_quarantine`). */
  readonly protected: boolean;
  /** Profile media (an avatar): kept by purges that spare profiles (`MediaRecord.profile`). Default false. */
  readonly profile?: boolean;
  /** Stored while the legacy endpoints were frozen (Synapse's `authenticated`); default false. */
  readonly authenticated?: boolean;
  /** Checked while streaming: a mismatch is an `ImportError('size-mismatch')` and nothing is kept. */
  readonly expectedSize?: number;
  /** Lower-case hex SHA-256 the bytes must have: a mismatch is an `ImportError('hash-mismatch')`. */
  readonly expectedSha256?: string;
  /**
   * Created but never uploaded (an async upload's reserved ID): imported
   * without bytes, answered `504 M_NOT_YET_UPLOADED` until `expiresAt`,
   * then 404, like the source did.
   */
  readonly pending?: boolean;
  /** When a pending ID expires (ms). Default `createdAt` + 24 h (Synapse's `unused_expiration_time`). */
  readonly expiresAt?: number;
}

/** One stored thumbnail of an imported item, as the source made it. */
export interface ImportedThumbnail {
  /** The real pixel size of the thumbnail image. */
  readonly width: number;
  readonly height: number;
  readonly method: ThumbnailMethod;
  readonly contentType: string;
  /** Whether it animates (an animated GIF/WebP source's `image/webp` row). Default false. */
  readonly animated?: boolean;
  readonly expectedSize?: number;
}

/**
 * Bytes that are a local file. With `linkFiles` and a blob store that can
 * adopt files (`BlobStore.linkFile`, the filesystem store on the same
 * filesystem), the file is linked, not copied; otherwise a store with
 * `BlobStore.copyFile` copies it from `path`, and any other store gets `open()`'s stream.
 */
export interface ImportFile {
  readonly path: string;
  /**
   * A real directory `path` must resolve inside (symlinks followed), checked
   * by the store that takes the path (`FileImportOptions.within`); `open()`
   * must check the same.
   */
  readonly within?: string;
  open(): ByteSource;
}

function isImportFile(bytes: ByteSource | ImportFile): bytes is ImportFile {
  return typeof (bytes as Partial<ImportFile>).path === 'string' && typeof (bytes as Partial<ImportFile>).open === 'function';
}

/** Why an item could not be imported; nothing of it was kept. */
export type ImportErrorCode =
  /** The server name or media ID is not valid Matrix grammar. */
  | 'invalid-id'
  /** A field is out of range (a negative size, a malformed hash, a bad thumbnail size). */
  | 'invalid-record'
  | 'size-mismatch'
  | 'hash-mismatch'
  /** The admission stage (other than the blocked-hash list) refused the bytes. */
  | 'refused'
  /** A thumbnail of remote media with no media row whose hash is blocked. */
  | 'blocked';

/** An item the import refused; the sink kept no blob and no row of it. */
export class ImportError extends Error {
  override readonly name = 'ImportError';
  readonly code: ImportErrorCode;
  constructor(code: ImportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** What an import call did: stored it now, or found it already there (nothing written). */
export type ImportOutcome = 'imported' | 'present';

/** Options of {@link MediaImports}. */
export interface MediaImportsOptions {
  /** The catalog of the server the media is imported into (`MediaService.catalog`). */
  readonly catalog: MediaCatalog;
  /**
   * Link {@link ImportFile}s into the blob store instead of copying them,
   * where it can (`BlobStore.linkFile`). The files are then shared with the
   * source store: only for write-once stores on the same filesystem whose
   * files this server may read. Default false.
   */
  readonly linkFiles?: boolean;
  /** Written as `blockedBy` of the hashes of imported quarantined media. Default `'import'`. */
  readonly actor?: string;
  readonly logger?: Logger;
}

/** Synapse's default `unused_expiration_time`. */
const DEFAULT_PENDING_LIFETIME_MS = 24 * 60 * 60 * 1000;

/**
 * The sink every importer writes into (Synapse, matrix-media-repo, archive
 * import, read-through on first access). Each item is stored like remote
 * media is cached: bytes streamed into the blob store (hashed and counted on
 * the way), then the admission stage, then the record published through the
 * catalog, so dedup, reference counting, the blocked-hash list and the scan
 * stage apply to imported media too.
 *
 * - Idempotent: an ID that exists answers `'present'` and writes nothing
 *   (checked before any byte is read, and again by the insert).
 * - Atomic: a refusal or failure deletes the stored blob and writes no row.
 * - Quarantine follows Synapse: a quarantined item is imported quarantined
 *   and its hash blocked; an unquarantined item whose hash is blocked is
 *   imported quarantined (Synapse's `system` quarantine of re-uploads).
 * - Durable before visible: with a blob store that can defer its fsyncs
 *   (`BlobStore.syncBlobs`), blobs are written without one and made durable
 *   in batches shared by the items in flight (a group commit), always before
 *   the item's row is written; uploads keep their per-file durability.
 * - Batched where the record store can (`MediaRecordBatches`): an importer
 *   announces each page of items ({@link MediaImports.prefetch}), so their
 *   presence and the blocked state of the hashes they name are looked up in
 *   one query each, and the rows of new items in flight are inserted in one
 *   transaction after their blobs' group commit (`importRowCommit`), which
 *   asks the blocked-hash list about them once more right before.
 */
export class MediaImports {
  readonly #catalog: MediaCatalog;
  readonly #actor: string;
  readonly #logger: Logger;
  readonly #linkFiles: boolean;
  /** Null when the blob store makes every write durable itself. */
  readonly #durability: GroupCommit<string, void> | null;
  /** Null when the record store has no batch inserts: each row is then written on its own. */
  readonly #rows: GroupCommit<MediaRecord, boolean> | null;
  readonly #lookahead: ImportLookahead;

  constructor(options: MediaImportsOptions) {
    this.#catalog = options.catalog;
    const blobs = options.catalog.blobs;
    // One round of fsyncs for every blob finished since the last round (no cap: a sync covers any number).
    this.#durability =
      blobs.syncBlobs === undefined
        ? null
        : new GroupCommit<string, void>(async (ids) => {
            await blobs.syncBlobs!(ids);
            return ids.map(() => undefined);
          }, Number.MAX_SAFE_INTEGER);
    this.#actor = options.actor ?? 'import';
    this.#linkFiles = options.linkFiles === true;
    this.#logger = options.logger ?? options.catalog.logger ?? noopLogger;
    this.#lookahead = new ImportLookahead(options.catalog);
    this.#rows = this.#lookahead.enabled ? importRowCommit(options.catalog, this.#logger) : null;
  }

  /**
   * Announces the next items an importer will import (a page of its
   * source, any length): their records and the blocked state of the hashes
   * they name are looked up now, at once, and each item's import uses that
   * answer instead of asking the store. Optional (items not announced ask
   * the store themselves); invalid records are left out, their import
   * refuses them. Does nothing when the record store has no batch reads.
   */
  async prefetch(records: readonly ImportedMediaRecord[]): Promise<void> {
    if (!this.#lookahead.enabled) return;
    const items: LookupItem[] = [];
    for (const record of records) {
      if (!isValidServerName(record.serverName) || !isValidMediaId(record.mediaId)) continue;
      const asksHash = record.expectedSha256 !== undefined && SHA256_HEX_RE.test(record.expectedSha256) && !record.quarantined && !record.protected && record.pending !== true;
      items.push({ serverName: record.serverName, mediaId: record.mediaId, ...(asksHash ? { sha256: record.expectedSha256! } : {}) });
    }
    await this.#lookahead.load(items);
  }

  /**
   * Whether {@link ImportFile}s are taken by path (the blob store copies or
   * links them itself, `BlobStore.copyFile`): an importer may then hand a
   * file over unopened, and a problem with the file itself (missing, not a
   * regular file, outside `within`, unreadable) rejects the import with a
   * `SourceFileError`.
   */
  get takesFilePaths(): boolean {
    return this.#catalog.blobs.copyFile !== undefined;
  }

  /** Whether a media record with this ID exists (pending or complete); an announced item's answer is taken. */
  async has(serverName: string, mediaId: string): Promise<boolean> {
    const known = this.#lookahead.take(serverName, mediaId);
    return (known === undefined ? await this.#catalog.records.getMedia(serverName, mediaId) : known.record) !== null;
  }

  /**
   * Imports one media item with its bytes (null only for a `pending` item).
   * A pending record here whose source has bytes now is completed.
   * Throws {@link ImportError} for a refused item; other errors (the blob
   * store or database failing, an abort) propagate after the stored blob is
   * discarded.
   */
  async importMedia(record: ImportedMediaRecord, bytes: ByteSource | ImportFile | null, signal?: AbortSignal): Promise<ImportOutcome> {
    checkRecord(record);
    const catalog = this.#catalog;
    const known = this.#lookahead.take(record.serverName, record.mediaId);
    const existing = known === undefined ? await catalog.records.getMedia(record.serverName, record.mediaId) : known.record;
    if (existing !== null && (existing.blobId !== null || record.pending === true)) return 'present';
    if (record.pending === true) {
      const reserved: MediaRecord = {
        ...baseRecord(record),
        blobId: null,
        contentType: null,
        size: null,
        sha256: null,
        uploadedAt: null,
        expiresAt: record.expiresAt ?? record.createdAt + DEFAULT_PENDING_LIFETIME_MS,
      };
      return (await catalog.reserve(reserved)) ? 'imported' : 'present';
    }
    if (bytes === null) throw new ImportError('invalid-record', `${record.serverName}/${record.mediaId}: no bytes for an item that is not pending`);
    const stored = await this.#store(bytes, record.expectedSize, `${record.serverName}/${record.mediaId}`, signal);
    try {
      if (record.expectedSha256 !== undefined && stored.sha256 !== record.expectedSha256) {
        throw new ImportError('hash-mismatch', `${record.serverName}/${record.mediaId}: SHA-256 ${stored.sha256}, expected ${record.expectedSha256}`);
      }
      // New rows through the row commit: it asks the blocked-hash list right before the insert.
      const rows = existing === null ? this.#rows : null;
      const quarantined = record.quarantined || (await this.#quarantineByHash(record, stored.sha256, known, rows !== null));
      // Quarantined: the hash is blocked before the record is visible, so a
      // run killed in between cannot leave quarantined bytes unblocked.
      if (quarantined) await this.#blockHash(stored.sha256, record);
      else await this.#admit(record, stored, signal, record.protected || rows !== null);
      const full: MediaRecord = {
        ...baseRecord(record),
        quarantined,
        blobId: stored.blobId,
        size: stored.size,
        sha256: stored.sha256,
        uploadedAt: record.createdAt,
        expiresAt: null,
        ...(catalog.newScanState === undefined ? {} : { scanState: catalog.newScanState }),
      };
      if (rows !== null) {
        // Two stages: the blob's group fsync, then the rows' group insert (the next batch syncs meanwhile).
        await this.#durability?.submit(stored.blobId);
        if (await rows.submit(full)) return 'imported';
        await catalog.discardBlob(stored.blobId);
        return 'present';
      }
      await this.#durability?.submit(stored.blobId);
      const done = existing === null ? await catalog.publish(full) : await catalog.publishCompletion({ ...full, contentType: full.contentType ?? 'application/octet-stream' });
      if (!done) {
        await catalog.discardBlob(stored.blobId);
        return 'present';
      }
      if (!quarantined || existing === null) return 'imported';
    } catch (err) {
      await catalog.discardBlob(stored.blobId);
      throw err;
    }
    // A completed pending record is visible now: this must not discard its blob.
    await catalog.setQuarantined(record.serverName, record.mediaId, true);
    return 'imported';
  }

  /**
   * Imports one thumbnail of an item. A row with the same size, method,
   * animation and type answers `'present'`. Import the media item first: a
   * thumbnail is admitted only when its item has no media row (remote media
   * known only through a thumbnail), and then refused when its hash is blocked.
   */
  async importThumbnail(serverName: string, mediaId: string, thumbnail: ImportedThumbnail, bytes: ByteSource | ImportFile, signal?: AbortSignal): Promise<ImportOutcome> {
    checkIds(serverName, mediaId);
    const { width, height, method, contentType } = thumbnail;
    const animated = thumbnail.animated === true;
    const where = `${serverName}/${mediaId} thumbnail ${width}x${height} ${method} ${contentType}`;
    if (!isPositiveInteger(width) || !isPositiveInteger(height) || (method !== 'crop' && method !== 'scale') || contentType === '') {
      throw new ImportError('invalid-record', `${where}: invalid size, method or type`);
    }
    checkSize(thumbnail.expectedSize, where);
    const catalog = this.#catalog;
    const same = (row: StoredThumbnail): boolean =>
      row.width === width && row.height === height && row.method === method && row.animated === animated && row.contentType === contentType;
    if ((await catalog.thumbnails.listThumbnails(serverName, mediaId)).some(same)) return 'present';
    const stored = await this.#store(bytes, thumbnail.expectedSize, where, signal);
    try {
      if ((await catalog.records.getMedia(serverName, mediaId)) === null && !catalog.isLocal(serverName)) {
        if ((await catalog.blockedHashes?.isBlocked(stored.sha256)) === true) throw new ImportError('blocked', `${where}: its hash is blocked`);
        await this.#admitCandidate({ kind: 'remote_thumbnail', serverName, mediaId, blobId: stored.blobId, size: stored.size, sha256: stored.sha256, contentType, userId: null }, where, signal);
      }
      const row: StoredThumbnail = { serverName, mediaId, width, height, method, animated, contentType, blobId: stored.blobId, size: stored.size, createdAt: catalog.clock.now() };
      await this.#durability?.submit(stored.blobId);
      if (await catalog.thumbnails.insertThumbnail(row)) {
        // Other caches of thumbnail rows (the thumbnail service's) pick up the new row.
        catalog.invalidate(serverName, mediaId);
        return 'imported';
      }
      await catalog.discardBlob(stored.blobId);
      return 'present';
    } catch (err) {
      await catalog.discardBlob(stored.blobId);
      throw err;
    }
  }

  /** Streams the bytes into the blob store; more than `expectedSize` stops the stream, fewer is found after it. */
  async #store(bytes: ByteSource | ImportFile, expectedSize: number | undefined, where: string, signal: AbortSignal | undefined): Promise<StoredBlob> {
    let stored: StoredBlob;
    const blobs = this.#catalog.blobs;
    const options = {
      ...(expectedSize === undefined ? {} : { maxBytes: expectedSize }),
      ...(signal === undefined ? {} : { signal }),
      ...(this.#durability === null ? {} : { deferSync: true }),
    };
    try {
      if (isImportFile(bytes)) {
        const fileOptions = bytes.within === undefined ? options : { ...options, within: bytes.within };
        const linked = this.#linkFiles && blobs.linkFile !== undefined ? await blobs.linkFile(bytes.path, fileOptions) : null;
        if (linked !== null) stored = linked;
        else stored = blobs.copyFile !== undefined ? await blobs.copyFile(bytes.path, fileOptions) : await blobs.put(bytes.open(), options);
      } else stored = await blobs.put(bytes, options);
    } catch (err) {
      if (err instanceof ContentTooLargeError) throw new ImportError('size-mismatch', `${where}: more than the expected ${expectedSize} bytes`, { cause: err });
      throw err;
    }
    if (expectedSize !== undefined && stored.size !== expectedSize) {
      await this.#catalog.discardBlob(stored.blobId);
      throw new ImportError('size-mismatch', `${where}: ${stored.size} bytes, expected ${expectedSize}`);
    }
    return stored;
  }

  /**
   * Whether an unquarantined item is imported quarantined for its blocked
   * hash: from the page lookup's answer when it asked about these bytes'
   * hash, else left to the row commit (`deferred`), else asked now.
   */
  async #quarantineByHash(record: ImportedMediaRecord, sha256: string, known: KnownItem | undefined, deferred: boolean): Promise<boolean> {
    if (record.protected) return false;
    const blocked = known?.blocked?.sha256 === sha256 ? known.blocked.blocked : deferred ? false : (await this.#catalog.blockedHashes?.isBlocked(sha256)) === true;
    if (!blocked) return false;
    this.#logger.info({ serverName: record.serverName, mediaId: record.mediaId, sha256 }, 'imported media has a blocked hash: imported quarantined');
    return true;
  }

  /** `skipBlockedHashes`: protected media, or a row whose commit asks the list itself. */
  async #admit(record: ImportedMediaRecord, stored: StoredBlob, signal: AbortSignal | undefined, skipBlockedHashes: boolean): Promise<void> {
    const local = this.#catalog.isLocal(record.serverName);
    await this.#admitCandidate(
      {
        kind: local ? 'upload' : 'remote',
        serverName: record.serverName,
        mediaId: record.mediaId,
        blobId: stored.blobId,
        size: stored.size,
        sha256: stored.sha256,
        contentType: record.contentType ?? 'application/octet-stream',
        userId: local ? record.userId : null,
      },
      `${record.serverName}/${record.mediaId}`,
      signal,
      skipBlockedHashes,
    );
  }

  async #admitCandidate(candidate: MediaCandidate, where: string, signal: AbortSignal | undefined, skipBlockedHashes = false): Promise<void> {
    try {
      await this.#catalog.admit(candidate, signal, skipBlockedHashes);
    } catch (err) {
      if (isMatrixError(err)) throw new ImportError('refused', `${where}: refused (${err.errcode}: ${err.message})`, { cause: err });
      throw err;
    }
  }

  async #blockHash(sha256: string, record: ImportedMediaRecord): Promise<void> {
    const gate = this.#catalog.blockedHashes;
    if (gate === undefined) return;
    await gate.block({ sha256, reason: `imported quarantined media ${record.serverName}/${record.mediaId}`, blockedBy: this.#actor, blockedAt: this.#catalog.clock.now() });
  }
}

function isPositiveInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

function checkIds(serverName: string, mediaId: string): void {
  if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) {
    throw new ImportError('invalid-id', `not a valid server name and media ID: ${JSON.stringify(serverName)} ${JSON.stringify(mediaId)}`);
  }
}

function checkSize(size: number | undefined, where: string): void {
  if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0)) throw new ImportError('invalid-record', `${where}: invalid expected size ${size}`);
}

function checkRecord(record: ImportedMediaRecord): void {
  checkIds(record.serverName, record.mediaId);
  const where = `${record.serverName}/${record.mediaId}`;
  checkSize(record.expectedSize, where);
  if (record.expectedSha256 !== undefined && !SHA256_HEX_RE.test(record.expectedSha256)) throw new ImportError('invalid-record', `${where}: malformed SHA-256`);
  if (!Number.isSafeInteger(record.createdAt) || record.createdAt < 0) throw new ImportError('invalid-record', `${where}: invalid creation time`);
}

/** The fields every imported record has, pending or not. */
function baseRecord(record: ImportedMediaRecord): Omit<MediaRecord, 'blobId' | 'size' | 'sha256' | 'uploadedAt' | 'expiresAt'> {
  return {
    serverName: record.serverName,
    mediaId: record.mediaId,
    contentType: record.contentType,
    uploadName: record.uploadName,
    userId: record.userId,
    createdAt: record.createdAt,
    authenticated: record.authenticated === true,
    quarantined: record.quarantined,
    ...(record.protected ? { protected: true } : {}),
    ...(record.profile === true ? { profile: true } : {}),
    lastAccessAt: record.lastAccessAt,
  };
}
