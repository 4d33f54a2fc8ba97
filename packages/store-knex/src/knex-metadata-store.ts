import type { MediaBrowseFilter, MediaBrowseOptions, MediaHistogramBucket, MediaHistogramQuery, OriginMediaUsage } from '@hsmedia/media-core';
import type { BlobReferenceLedger, BlobStaleness, BlobStorageStats, ReferencedBlob } from '@hsmedia/media-core';
import type { AdminAction, AdminActionQuery, AdminAuditLog, RecordedAdminAction, BlockedHash, BlockedHashBatches, BlockedHashes, MediaKey, MediaRecordBatches, BlockedHashPage, MediaListOptions, MediaQuery, MediaSummary, MediaUsagePage, MediaUsageQuery, JobLeases, MediaCompletion, MediaMetadataStore, MediaRecord, MediaUsage, StoredThumbnail, MediaScanState, MediaScanStates, ImportCursors } from '@hsmedia/media-core';
import type { ServerKeyStore, StoredServerKey } from '@hsmedia/signing';
import type { Knex } from 'knex';
import {
  MEDIA_COLUMNS,
  SERVER_KEY_COLUMNS,
  mediaRecordToRow,
  mediaRowToRecord,
  serverKeyRowToKey,
  serverKeyToRow,
  type MediaRow,
  type ServerKeyRow,
} from './internal/rows.js';
import { listAdminActions, recordAdminAction } from './internal/admin-audit.js';
import { browseMedia, mediaCreationHistogram, mediaUsageByOrigin } from './internal/media-browse.js';
import * as blobRefs from './internal/blob-refs.js';
import { blockHash, blockHashes, isHashBlocked, listBlockedHashes, unblockHash } from './internal/blocked-hashes.js';
import { readImportCursor, writeImportCursor } from './internal/import-cursors.js';
import { blockedHashesAmong, getMediaBatch, insertMediaBatch } from './internal/media-batches.js';
import { releaseLease, tryAcquireLease } from './internal/leases.js';
import { listMedia, mediaUsageByUser, setMediaProfile, setMediaProtected, setMediaQuarantined, setMediaScanState, summarizeMedia } from './internal/media-queries.js';
import { tableNamesFor, type TableNames } from './internal/table-names.js';
import { deleteThumbnails, insertThumbnail, isThumbnailBlob, listThumbnails } from './internal/thumbnails.js';
import {
  checkInteger,
  checkMediaCompletion,
  checkMediaRecord,
  checkServerKey,
  isStorableKey,
} from './internal/validate.js';
import { runMigrations } from './run-migrations.js';

/** Options for {@link KnexMetadataStore}. */
export interface KnexMetadataStoreOptions {
  /** A configured knex instance (SQLite via better-sqlite3, or PostgreSQL via pg). */
  readonly knex: Knex;
  /** Prefix for every table this store uses (`[A-Za-z0-9_]{0,32}`); default none. */
  readonly tablePrefix?: string;
  /**
   * Whether {@link KnexMetadataStore.close} destroys `knex`. Default false: whoever
   * created the knex instance (and may share its pool) owns it.
   */
  readonly destroyKnexOnClose?: boolean;
  /**
   * Decides whether a failed read runs once more (see `retryRead` in the
   * README). Called with the error of a read's first attempt; return true to
   * run that read again, once. Only reads (no side effects) consult it:
   * writes reject on the first failure, since the database may have applied
   * them before the connection died. Default: never retry.
   */
  readonly retryRead?: (error: unknown) => boolean;
}

const MEDIA_KEY = ['server_name', 'media_id'] as const;
const SERVER_KEY_KEY = ['server_name', 'key_id'] as const;

/**
 * A {@link MediaMetadataStore} on knex. One schema and one set of queries serve
 * SQLite and PostgreSQL; every method is a single statement, so each is atomic
 * without an explicit transaction.
 *
 * Past 300 lines (and the file past 450) on purpose: one short delegating method per port method
 * (the queries live in `internal/`), so the class stays the one place that lists what the store implements.
 *
 * Database errors propagate unchanged (the HTTP edge renders them as 500
 * `M_UNKNOWN`), except that a read runs once more when `retryRead` asks for
 * it; this class never puts caller data into error messages.
 */
export class KnexMetadataStore
  implements MediaMetadataStore, MediaRecordBatches, ServerKeyStore, JobLeases, BlockedHashes, BlockedHashBatches, AdminAuditLog, MediaScanStates, ImportCursors, BlobReferenceLedger
{
  /** The knex instance the store queries. */
  readonly knex: Knex;
  readonly #tables: TableNames;
  readonly #tablePrefix: string;
  readonly #destroyKnexOnClose: boolean;
  #closed: Promise<void> | undefined;
  #getMediaSql: string | undefined;
  readonly #retryRead: ((error: unknown) => boolean) | undefined;

  /** Throws `TypeError` for a missing `knex` or an invalid `tablePrefix`. */
  constructor(options: KnexMetadataStoreOptions) {
    if (typeof options?.knex !== 'function') {
      throw new TypeError('KnexMetadataStore: options.knex must be a knex instance');
    }
    this.knex = options.knex;
    this.#tablePrefix = options.tablePrefix ?? '';
    this.#tables = tableNamesFor(this.#tablePrefix);
    this.#destroyKnexOnClose = options.destroyKnexOnClose ?? false;
    this.#retryRead = options.retryRead;
  }

  /** Runs a read, and once more when `retryRead` says its failure is worth it. */
  async #read<T>(run: () => Promise<T>): Promise<T> {
    const retryRead = this.#retryRead;
    if (retryRead === undefined) return run();
    try {
      return await run();
    } catch (error) {
      if (!retryRead(error)) throw error;
      return run();
    }
  }

  /** Creates or upgrades the schema (see {@link runMigrations}). */
  migrate(): Promise<void> {
    return runMigrations(this.knex, { tablePrefix: this.#tablePrefix });
  }

  // Hot path (every download): one primary-key lookup. The SQL is compiled once
  // (with `?` placeholders, which knex.raw binds per dialect): building the
  // query anew each call costs about a fifth of the lookup rate on SQLite.
  getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    return this.#read(() => this.#getMedia(serverName, mediaId));
  }

  async #getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    // A key no backend can store cannot exist; answering here also keeps
    // PostgreSQL from raising on NUL characters.
    if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return null;
    this.#getMediaSql ??= this.knex(this.#tables.media)
      .select(MEDIA_COLUMNS)
      .where({ server_name: '', media_id: '' })
      .limit(1)
      .toSQL().sql;
    const result: unknown = await this.knex.raw(this.#getMediaSql, [serverName, mediaId, 1]);
    // better-sqlite3 answers with the rows, pg with a result object holding them.
    const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as MediaRow[];
    const row = rows[0];
    return row === undefined ? null : mediaRowToRecord(row);
  }

  /** Throws `TypeError` for a record no backend can store faithfully (see the README). */
  async insertMedia(record: MediaRecord): Promise<boolean> {
    checkMediaRecord(record);
    // ON CONFLICT DO NOTHING ... RETURNING yields no row when the key exists:
    // the conflict is decided by the database, atomically, without an error.
    const inserted = await this.knex(this.#tables.media)
      .insert(mediaRecordToRow(record))
      .onConflict([...MEDIA_KEY])
      .ignore()
      .returning('media_id');
    return inserted.length === 1;
  }

  /** The existing records of `keys` (`MediaRecordBatches`). Throws `TypeError` for more than `MAX_MEDIA_BATCH` keys. */
  getMediaBatch(keys: readonly MediaKey[]): Promise<MediaRecord[]> {
    return this.#read(() => getMediaBatch(this.knex, this.#tables.media, keys));
  }

  /** Inserts records in one transaction (`MediaRecordBatches`). Throws `TypeError` naming the first record no backend can store. */
  insertMediaBatch(records: readonly MediaRecord[]): Promise<boolean[]> {
    return insertMediaBatch(this.knex, this.#tables.media, records);
  }

  async completeMedia(
    serverName: string,
    mediaId: string,
    completion: MediaCompletion,
  ): Promise<boolean> {
    checkMediaCompletion(completion);
    if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return false;
    // `blob_id IS NULL` makes completion happen at most once, even under races.
    const changed = await this.knex(this.#tables.media)
      .update({
        blob_id: completion.blobId,
        content_type: completion.contentType,
        upload_name: completion.uploadName,
        size: completion.size,
        sha256: completion.sha256,
        uploaded_at: completion.uploadedAt,
        ...(completion.scanState === undefined ? {} : { scan_state: completion.scanState }),
      })
      .where({ server_name: serverName, media_id: mediaId })
      .whereNull('blob_id');
    return changed > 0;
  }

  async deleteMedia(serverName: string, mediaId: string): Promise<boolean> {
    if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return false;
    const deleted = await this.knex(this.#tables.media)
      .where({ server_name: serverName, media_id: mediaId })
      .delete();
    return deleted > 0;
  }

  async touchMedia(serverName: string, mediaId: string, at: number): Promise<void> {
    checkInteger('at', at);
    if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return;
    // Only move the timestamp forward: a late, older touch must not hide a newer
    // access, and skipping no-op writes keeps hot media from rewriting its row.
    await this.knex(this.#tables.media)
      .update({ last_access_at: at })
      .where({ server_name: serverName, media_id: mediaId })
      .andWhere((query) => query.whereNull('last_access_at').orWhere('last_access_at', '<', at));
  }

  /** Throws `TypeError` for a malformed query or page (see `MediaQuery`, `MediaListOptions`). */
  listMedia(query: MediaQuery, options: MediaListOptions): Promise<MediaRecord[]> {
    return this.#read(() => listMedia(this.knex, this.#tables.media, query, options));
  }

  summarizeMedia(query: MediaQuery): Promise<MediaSummary> {
    return this.#read(() => summarizeMedia(this.knex, this.#tables.media, query));
  }

  setMediaQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean> {
    return setMediaQuarantined(this.knex, this.#tables.media, serverName, mediaId, quarantined);
  }

  /** Throws `TypeError` for an unknown state. */
  setMediaScanState(serverName: string, mediaId: string, state: MediaScanState, onlyFrom?: readonly MediaScanState[]): Promise<boolean> {
    return setMediaScanState(this.knex, this.#tables.media, serverName, mediaId, state, onlyFrom);
  }

  setMediaProtected(serverName: string, mediaId: string, isProtected: boolean): Promise<boolean> {
    return setMediaProtected(this.knex, this.#tables.media, serverName, mediaId, isProtected);
  }

  setMediaProfile(serverName: string, mediaId: string, isProfile: boolean): Promise<boolean> {
    return setMediaProfile(this.knex, this.#tables.media, serverName, mediaId, isProfile);
  }

  /** Newest first after the cursor. Throws `TypeError` for a malformed filter or page. */
  browseMedia(filter: MediaBrowseFilter, options: MediaBrowseOptions): Promise<MediaRecord[]> {
    return this.#read(() => browseMedia(this.knex, this.#tables.media, filter, options));
  }

  /** Throws `TypeError` for a `limit` that is not an integer from 1 to 10000. */
  mediaUsageByOrigin(limit: number): Promise<OriginMediaUsage[]> {
    return this.#read(() => mediaUsageByOrigin(this.knex, this.#tables.media, limit));
  }

  /** Throws `TypeError` for a malformed query. */
  mediaCreationHistogram(query: MediaHistogramQuery): Promise<MediaHistogramBucket[]> {
    return this.#read(() => mediaCreationHistogram(this.knex, this.#tables.media, query));
  }

  mediaUsageByUser(query: MediaUsageQuery): Promise<MediaUsagePage> {
    return this.#read(() => mediaUsageByUser(this.knex, this.#tables.media, query));
  }

  isBlobReferenced(blobId: string): Promise<boolean> {
    return this.#read(() => this.#isBlobReferenced(blobId));
  }

  async #isBlobReferenced(blobId: string): Promise<boolean> {
    if (!isStorableKey(blobId)) return false;
    const row: unknown = await this.knex(this.#tables.media)
      .select('media_id')
      .where({ blob_id: blobId })
      .first();
    return row !== undefined || (await isThumbnailBlob(this.knex, this.#tables.thumbnails, blobId));
  }

  // BlobReferenceLedger: `blob_refs`, counted by triggers (migration 0012; internal/blob-refs.ts).

  pinBlob(blobId: string, size: number, now: number, deletionStaleBefore: number): Promise<{ readonly deletionInFlight: boolean }> {
    return blobRefs.pinBlob(this.knex, this.#tables.blobRefs, blobId, size, now, deletionStaleBefore);
  }

  unpinBlob(blobId: string): Promise<void> {
    return blobRefs.unpinBlob(this.knex, this.#tables.blobRefs, blobId);
  }

  isBlobDeletionInFlight(blobId: string, deletionStaleBefore: number): Promise<boolean> {
    return this.#read(() => blobRefs.isBlobDeletionInFlight(this.knex, this.#tables.blobRefs, blobId, deletionStaleBefore));
  }

  beginBlobDeletion(blobId: string, now: number, stale: BlobStaleness): Promise<boolean> {
    return blobRefs.beginBlobDeletion(this.knex, this.#tables.blobRefs, blobId, now, stale);
  }

  finishBlobDeletion(blobId: string, startedAt: number, objectGone: boolean, stale: BlobStaleness): Promise<void> {
    return blobRefs.finishBlobDeletion(this.knex, this.#tables.blobRefs, blobId, startedAt, objectGone, stale);
  }

  listUnreferencedBlobs(pinsStaleBefore: number, after: string, limit: number): Promise<string[]> {
    return this.#read(() => blobRefs.listUnreferencedBlobs(this.knex, this.#tables.blobRefs, pinsStaleBefore, after, limit));
  }

  knownBlobs(blobIds: readonly string[]): Promise<Set<string>> {
    return this.#read(() => blobRefs.knownBlobs(this.knex, this.#tables.blobRefs, blobIds));
  }

  listReferencedBlobs(after: string, limit: number): Promise<ReferencedBlob[]> {
    return this.#read(() => blobRefs.listReferencedBlobs(this.knex, this.#tables.blobRefs, after, limit));
  }

  replaceBlobId(from: string, to: string): Promise<number> {
    return blobRefs.replaceBlobId(this.knex, this.#tables, from, to);
  }

  blobStorageStats(): Promise<BlobStorageStats> {
    return this.#read(() => blobRefs.blobStorageStats(this.knex, this.#tables.blobRefs));
  }

  listThumbnails(serverName: string, mediaId: string): Promise<StoredThumbnail[]> {
    return this.#read(() => listThumbnails(this.knex, this.#tables.thumbnails, serverName, mediaId));
  }

  /** Throws `TypeError` for a thumbnail no backend can store faithfully. */
  insertThumbnail(thumbnail: StoredThumbnail): Promise<boolean> {
    return insertThumbnail(this.knex, this.#tables.thumbnails, thumbnail);
  }

  deleteThumbnails(serverName: string, mediaId: string): Promise<string[]> {
    return deleteThumbnails(this.knex, this.#tables.thumbnails, serverName, mediaId);
  }

  getUserUsage(userId: string, sinceMs: number): Promise<MediaUsage> {
    return this.#read(() => this.#getUserUsage(userId, sinceMs));
  }

  async #getUserUsage(userId: string, sinceMs: number): Promise<MediaUsage> {
    checkInteger('sinceMs', sinceMs);
    if (!isStorableKey(userId)) return { bytes: 0, files: 0 };
    // Served by the user_id index; only this user's rows are summed.
    const rows = (await this.knex(this.#tables.media)
      .where({ user_id: userId })
      .whereNotNull('blob_id')
      .andWhere('created_at', '>=', sinceMs)
      .select(this.knex.raw('COALESCE(SUM(size), 0) AS bytes'), this.knex.raw('COUNT(*) AS files'))) as {
      bytes: number | string;
      files: number | string;
    }[];
    // pg answers bigint aggregates as strings.
    return { bytes: Number(rows[0]?.bytes ?? 0), files: Number(rows[0]?.files ?? 0) };
  }

  countPendingMedia(userId: string, now: number): Promise<number> {
    return this.#read(() => this.#countPendingMedia(userId, now));
  }

  async #countPendingMedia(userId: string, now: number): Promise<number> {
    checkInteger('now', now);
    if (!isStorableKey(userId)) return 0;
    const rows = (await this.knex(this.#tables.media)
      .where({ user_id: userId })
      .whereNull('blob_id')
      .andWhere((query) => query.whereNull('expires_at').orWhere('expires_at', '>', now))
      .count({ n: '*' })) as { n: number | string }[];
    return Number(rows[0]?.n ?? 0);
  }

  /** Throws `TypeError` when `now` is not a safe integer or `limit` not a positive one. */
  async deleteExpiredPendingMedia(now: number, limit: number): Promise<number> {
    checkInteger('now', now);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive safe integer');
    const expiredPending = (query: Knex.QueryBuilder): Knex.QueryBuilder =>
      query.whereNull('blob_id').andWhere('expires_at', '<=', now);
    // One statement. The batch is picked by a keyed subquery (neither SQLite
    // nor PostgreSQL takes DELETE ... LIMIT); the outer WHERE repeats
    // `blob_id IS NULL` so a row completed between the pick and the delete is
    // kept: PostgreSQL re-checks it on the updated row version, SQLite
    // serialises writers.
    const batch = expiredPending(this.knex(this.#tables.media).select(...MEDIA_KEY)).limit(limit);
    return expiredPending(this.knex(this.#tables.media))
      .whereIn([...MEDIA_KEY], batch)
      .delete();
  }

  getServerKeys(serverName: string): Promise<StoredServerKey[]> {
    return this.#read(() => this.#getServerKeys(serverName));
  }

  async #getServerKeys(serverName: string): Promise<StoredServerKey[]> {
    if (!isStorableKey(serverName)) return [];
    const rows = (await this.knex(this.#tables.serverKeys)
      .select(SERVER_KEY_COLUMNS)
      .where({ server_name: serverName })
      .orderBy('key_id')) as ServerKeyRow[];
    return rows.map(serverKeyRowToKey);
  }

  async putServerKeys(keys: readonly StoredServerKey[]): Promise<void> {
    if (!Array.isArray(keys)) throw new TypeError('keys must be an array');
    keys.forEach(checkServerKey);
    if (keys.length === 0) return;
    // PostgreSQL rejects one upsert that touches the same row twice, so keep
    // only the last entry per key (the same result a sequence of upserts gives).
    const byKey = new Map<string, ServerKeyRow>();
    for (const key of keys) {
      byKey.set(JSON.stringify([key.serverName, key.keyId]), serverKeyToRow(key));
    }
    await this.knex(this.#tables.serverKeys)
      .insert([...byKey.values()])
      .onConflict([...SERVER_KEY_KEY])
      .merge(['public_key', 'valid_until_ts', 'fetched_at']);
  }

  /**
   * Takes or renews the lease `name` for `holder` (see `JobLeases` in
   * `@hsmedia/media-core`). Expiry uses this process's clock, so keep the
   * clocks of instances sharing a database in sync (NTP). Throws `TypeError`
   * for an empty or over-long name or holder, or a ttlMs that is not a
   * positive integer.
   */
  tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return tryAcquireLease(this.knex, this.#tables.jobLeases, name, holder, ttlMs, Date.now());
  }

  /** Releases the lease if `holder` holds it; true when it did. */
  releaseLease(name: string, holder: string): Promise<boolean> {
    return releaseLease(this.knex, this.#tables.jobLeases, name, holder);
  }

  /** The state an import last saved under `name` (see `ImportCursors`), or null. */
  readImportCursor(name: string): Promise<string | null> {
    return this.#read(() => readImportCursor(this.knex, this.#tables.importCursors, name));
  }

  /** Saves an import's state under `name`, replacing the previous one. */
  writeImportCursor(name: string, state: string): Promise<void> {
    return writeImportCursor(this.knex, this.#tables.importCursors, name, state, Date.now());
  }

  /** Adds a hash to the blocked-hash list; false when it is listed already (the first entry is kept). Throws `TypeError` for a malformed entry. */
  blockHash(entry: BlockedHash): Promise<boolean> {
    return blockHash(this.knex, this.#tables.blockedHashes, entry);
  }

  /** Adds many hashes in one transaction (all or nothing); how many were new. Throws `TypeError` naming a malformed entry. */
  blockHashes(entries: readonly BlockedHash[]): Promise<number> {
    return blockHashes(this.knex, this.#tables.blockedHashes, entries);
  }

  /** Removes a hash from the list; true when it was listed. */
  unblockHash(sha256: string): Promise<boolean> {
    return unblockHash(this.knex, this.#tables.blockedHashes, sha256);
  }

  /** Whether a hash is listed (a malformed one never is). */
  isHashBlocked(sha256: string): Promise<boolean> {
    return this.#read(() => isHashBlocked(this.knex, this.#tables.blockedHashes, sha256));
  }

  /** Which of the hashes are listed (`BlockedHashBatches`). */
  blockedHashesAmong(hashes: readonly string[]): Promise<Set<string>> {
    return this.#read(() => blockedHashesAmong(this.knex, this.#tables.blockedHashes, hashes));
  }

  /** A page of the list, ordered by hash. Throws `TypeError` for a malformed page. */
  listBlockedHashes(page: BlockedHashPage): Promise<BlockedHash[]> {
    return this.#read(() => listBlockedHashes(this.knex, this.#tables.blockedHashes, page));
  }

  /** Appends an entry to the admin audit log; the stored one with its ID. Throws `TypeError` for a malformed entry. */
  recordAdminAction(entry: AdminAction): Promise<RecordedAdminAction> {
    return recordAdminAction(this.knex, this.#tables.adminAudit, entry);
  }

  /** A page of the audit log, newest first. Throws `TypeError` for a malformed query. */
  listAdminActions(query: AdminActionQuery): Promise<RecordedAdminAction[]> {
    return this.#read(() => listAdminActions(this.knex, this.#tables.adminAudit, query));
  }

  /** Destroys the knex instance when `destroyKnexOnClose` was set; idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#destroyKnexOnClose ? this.knex.destroy() : Promise.resolve();
    return this.#closed;
  }
}
