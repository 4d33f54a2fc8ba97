import { systemClock, type Clock } from '@hsmedia/runtime';
import type { JobLeases } from '../job-leases.js';
import type {
  AdminAction,
  AdminActionQuery,
  AdminAuditLog,
  RecordedAdminAction,
  BlockedHash,
  BlockedHashBatches,
  BlockedHashes,
  MediaKey,
  MediaRecordBatches,
  BlockedHashPage,
  MediaBrowseFilter,
  MediaBrowseOptions,
  MediaHistogramBucket,
  MediaHistogramQuery,
  OriginMediaUsage,
  MediaCompletion,
  MediaListOptions,
  MediaMetadataStore,
  MediaQuery,
  MediaRecord,
  MediaSummary,
  MediaUsage,
  MediaUsagePage,
  MediaUsageQuery,
  MediaScanState,
  MediaScanStates,
  StoredThumbnail,
  BlobReferenceLedger,
  BlobStaleness,
  BlobStorageStats,
  ReferencedBlob,
} from '../ports/index.js';
import { MEDIA_SCAN_STATES, checkBatchSize, isMediaScanState } from '../ports/index.js';
import { checkMediaBrowse, checkMediaHistogramQuery, checkMediaPageLimit } from '../ports/index.js';
import { AuditTable } from './audit-table.js';
import { BlobLedgerTable } from './blob-ledger-table.js';
import { BlockedHashTable } from './blocked-hash-table.js';
import { LeaseTable } from './lease-table.js';
import { MediaTable } from './media-table.js';
import { ServerKeyTable, type MemoryServerKey } from './server-key-table.js';
import { ThumbnailTable } from './thumbnail-table.js';

/** Options of {@link MemoryMetadataStore}. */
export interface MemoryMetadataStoreOptions {
  /** The clock job leases expire by. Default: the system clock. */
  readonly clock?: Clock;
}

/**
 * Every metadata port in process memory: `MediaRecordStore`,
 * `ThumbnailIndex`, `MediaQueries` (so a `MediaMetadataStore`), `JobLeases`,
 * `BlockedHashes`, `AdminAuditLog` and the `ServerKeyStore` of `@hsmedia/signing`. It passes the same
 * `@hsmedia/conformance` suites as the SQL stores. Everything is lost on
 * restart and nothing is shared between processes, so it suits tests, demos
 * and examples, not production.
 *
 * Past 300 lines on purpose: one short delegating method per port method (the
 * tables live in their own modules), so the class stays the one list of what it implements.
 *
 * Each call is atomic (it runs without yielding). Records, thumbnails and
 * keys are copied in and out, so callers never share an object with the
 * store. After {@link MemoryMetadataStore.close} every call rejects, as it
 * would on a closed database connection.
 *
 * @example
 * ```ts
 * import { MediaService } from '@hsmedia/media-core';
 * import { MemoryBlobStore, MemoryMetadataStore } from '@hsmedia/media-core/memory';
 *
 * const media = new MediaService({
 *   serverName: 'example.org',
 *   blobs: new MemoryBlobStore(),
 *   metadata: new MemoryMetadataStore(),
 *   maxUploadBytes: 10 * 1024 * 1024,
 * });
 * ```
 */
export class MemoryMetadataStore
  implements MediaMetadataStore, MediaRecordBatches, JobLeases, BlockedHashes, BlockedHashBatches, AdminAuditLog, MediaScanStates, BlobReferenceLedger
{
  readonly #clock: Clock;
  readonly #media = new MediaTable();
  readonly #thumbnails = new ThumbnailTable();
  readonly #leases = new LeaseTable();
  readonly #blockedHashes = new BlockedHashTable();
  readonly #audit = new AuditTable();
  readonly #serverKeys = new ServerKeyTable();
  readonly #ledger = new BlobLedgerTable();
  #closed = false;

  constructor(options: MemoryMetadataStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /** Throws once the store is closed; every call checks it first. */
  #open(): void {
    if (this.#closed) throw new Error('MemoryMetadataStore: the store is closed');
  }

  // MediaRecordStore

  /** The record, or null when there is none. */
  async getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    this.#open();
    return this.#media.get(serverName, mediaId);
  }

  /** Inserts a record; false (and no change) when `(serverName, mediaId)` exists. */
  async insertMedia(record: MediaRecord): Promise<boolean> {
    this.#open();
    return this.#insert(record);
  }

  #insert(record: MediaRecord): boolean {
    const inserted = this.#media.insert(record);
    if (inserted && record.blobId !== null) this.#ledger.addReference(record.blobId, record.size ?? 0);
    return inserted;
  }

  // MediaRecordBatches

  /** The existing records of `keys`, each once. */
  async getMediaBatch(keys: readonly MediaKey[]): Promise<MediaRecord[]> {
    this.#open();
    checkBatchSize(keys, 'keys');
    const found = new Map<string, MediaRecord>();
    for (const { serverName, mediaId } of keys) {
      const record = this.#media.get(serverName, mediaId);
      if (record !== null) found.set(JSON.stringify([serverName, mediaId]), record);
    }
    return [...found.values()];
  }

  /** Inserts the records at once (no await in between: atomic); per record whether it was inserted. */
  async insertMediaBatch(records: readonly MediaRecord[]): Promise<boolean[]> {
    this.#open();
    checkBatchSize(records, 'records');
    return records.map((record) => this.#insert(record));
  }

  /** Fills a pending record; false when it does not exist or already has content. */
  async completeMedia(serverName: string, mediaId: string, completion: MediaCompletion): Promise<boolean> {
    this.#open();
    const completed = this.#media.complete(serverName, mediaId, completion);
    if (completed) this.#ledger.addReference(completion.blobId, completion.size);
    return completed;
  }

  /** Deletes the record (not its thumbnails); true when it existed. */
  async deleteMedia(serverName: string, mediaId: string): Promise<boolean> {
    this.#open();
    const blobId = this.#media.get(serverName, mediaId)?.blobId ?? null;
    const deleted = this.#media.delete(serverName, mediaId);
    if (deleted && blobId !== null) this.#ledger.dropReference(blobId);
    return deleted;
  }

  /** Sets `lastAccessAt`; nothing happens for a missing record. */
  async touchMedia(serverName: string, mediaId: string, at: number): Promise<void> {
    this.#open();
    this.#media.update(serverName, mediaId, (record) => ({ ...record, lastAccessAt: at }));
  }

  /** Whether a media record or a thumbnail row references `blobId`. */
  async isBlobReferenced(blobId: string): Promise<boolean> {
    this.#open();
    return this.#media.references(blobId) || this.#thumbnails.references(blobId);
  }

  /** Sets or clears the quarantine flag; true when the record exists. */
  async setMediaQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean> {
    this.#open();
    return this.#media.update(serverName, mediaId, (record) => ({ ...record, quarantined }));
  }

  /** Sets the scan state (only from one of `onlyFrom`, when given); true when the record exists (and was changed). */
  async setMediaScanState(serverName: string, mediaId: string, state: MediaScanState, onlyFrom?: readonly MediaScanState[]): Promise<boolean> {
    this.#open();
    if (!isMediaScanState(state)) throw new TypeError(`scanState must be one of ${MEDIA_SCAN_STATES.join(', ')}`);
    const current = this.#media.get(serverName, mediaId);
    if (current === null) return false;
    if (onlyFrom !== undefined && (current.scanState === undefined || !onlyFrom.includes(current.scanState))) return false;
    return this.#media.update(serverName, mediaId, (record) => ({ ...record, scanState: state }));
  }

  /** Sets or clears the protection flag (an unprotected record has no `protected` field); true when the record exists. */
  async setMediaProtected(serverName: string, mediaId: string, isProtected: boolean): Promise<boolean> {
    this.#open();
    return this.#media.update(serverName, mediaId, (record) => {
      const { protected: _wasProtected, ...rest } = record;
      return isProtected ? { ...rest, protected: true } : rest;
    });
  }

  /** Sets or clears the profile-media flag (a record without it has no `profile` field); true when the record exists. */
  async setMediaProfile(serverName: string, mediaId: string, isProfile: boolean): Promise<boolean> {
    this.#open();
    if (typeof isProfile !== 'boolean') throw new TypeError('profile must be a boolean');
    return this.#media.update(serverName, mediaId, (record) => {
      const { profile: _wasProfile, ...rest } = record;
      return isProfile ? { ...rest, profile: true } : rest;
    });
  }

  /** Pending (`blobId` null), unexpired records of `userId` at `now`. */
  async countPendingMedia(userId: string, now: number): Promise<number> {
    this.#open();
    return this.#media.countPending(userId, now);
  }

  /** Deletes up to `limit` pending records expired at or before `now`; throws `TypeError` for a `limit` that is not a positive integer. */
  async deleteExpiredPendingMedia(now: number, limit: number): Promise<number> {
    this.#open();
    return this.#media.deleteExpiredPending(now, limit);
  }

  // ThumbnailIndex

  /** The thumbnail rows of a media item; [] when none. */
  async listThumbnails(serverName: string, mediaId: string): Promise<StoredThumbnail[]> {
    this.#open();
    return this.#thumbnails.list(serverName, mediaId);
  }

  /** Records a thumbnail; false (and no change) when one with the same key exists. */
  async insertThumbnail(thumbnail: StoredThumbnail): Promise<boolean> {
    this.#open();
    const inserted = this.#thumbnails.insert(thumbnail);
    if (inserted) this.#ledger.addReference(thumbnail.blobId, thumbnail.size);
    return inserted;
  }

  /** Deletes a media item's thumbnail rows and gives their blob IDs. */
  async deleteThumbnails(serverName: string, mediaId: string): Promise<string[]> {
    this.#open();
    const blobIds = this.#thumbnails.delete(serverName, mediaId);
    for (const blobId of blobIds) this.#ledger.dropReference(blobId);
    return blobIds;
  }

  // MediaQueries

  /** Records a {@link MediaQuery} selects, ordered and paged. */
  async listMedia(query: MediaQuery, options: MediaListOptions): Promise<MediaRecord[]> {
    this.#open();
    return this.#media.list(query, options);
  }

  /** Count and total size of the records a {@link MediaQuery} selects. */
  async summarizeMedia(query: MediaQuery): Promise<MediaSummary> {
    this.#open();
    return this.#media.summarize(query);
  }

  /** Per-uploader counts and sizes. */
  async mediaUsageByUser(query: MediaUsageQuery): Promise<MediaUsagePage> {
    this.#open();
    return this.#media.usageByUser(query);
  }

  /** Bytes and count of `userId`'s completed media created at or after `sinceMs`. */
  async getUserUsage(userId: string, sinceMs: number): Promise<MediaUsage> {
    this.#open();
    return this.#media.userUsage(userId, sinceMs);
  }

  /** Records a filter selects, newest first, after the cursor. Throws `TypeError` for a malformed filter or page. */
  async browseMedia(filter: MediaBrowseFilter, options: MediaBrowseOptions): Promise<MediaRecord[]> {
    this.#open();
    checkMediaBrowse(filter, options);
    return this.#media.browse(filter, options);
  }

  /** The origins storing the most bytes. Throws `TypeError` for a `limit` that is not a positive integer. */
  async mediaUsageByOrigin(limit: number): Promise<OriginMediaUsage[]> {
    this.#open();
    checkMediaPageLimit(limit);
    return this.#media.usageByOrigin(limit);
  }

  /** Stored media per creation interval. Throws `TypeError` for a malformed query. */
  async mediaCreationHistogram(query: MediaHistogramQuery): Promise<MediaHistogramBucket[]> {
    this.#open();
    checkMediaHistogramQuery(query);
    return this.#media.histogram(query);
  }

  // JobLeases

  /** Takes or renews the lease `name` for `holder` until now (by the store's clock) + `ttlMs`. */
  async tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    this.#open();
    return this.#leases.tryAcquire(name, holder, ttlMs, this.#clock.now());
  }

  /** Gives the lease up if `holder` holds it; true when it did. */
  async releaseLease(name: string, holder: string): Promise<boolean> {
    this.#open();
    return this.#leases.release(name, holder);
  }

  // BlockedHashes

  /** Adds an entry; false when the hash is already blocked (the first entry is kept). */
  async blockHash(entry: BlockedHash): Promise<boolean> {
    this.#open();
    return this.#blockedHashes.block(entry);
  }

  /** Adds many entries, all or nothing; how many were new. */
  async blockHashes(entries: readonly BlockedHash[]): Promise<number> {
    this.#open();
    return this.#blockedHashes.blockMany(entries);
  }

  /** Removes an entry; true when it existed. */
  async unblockHash(sha256: string): Promise<boolean> {
    this.#open();
    return this.#blockedHashes.unblock(sha256);
  }

  /** Whether the hash is blocked. */
  async isHashBlocked(sha256: string): Promise<boolean> {
    this.#open();
    return this.#blockedHashes.has(sha256);
  }

  /** Which of the hashes are blocked. */
  async blockedHashesAmong(hashes: readonly string[]): Promise<Set<string>> {
    this.#open();
    checkBatchSize(hashes, 'hashes');
    return new Set(hashes.filter((sha256) => this.#blockedHashes.has(sha256)));
  }

  /** A page of the list, ordered by hash. */
  async listBlockedHashes(page: BlockedHashPage): Promise<BlockedHash[]> {
    this.#open();
    return this.#blockedHashes.list(page);
  }

  // AdminAuditLog

  /** Appends an entry to the audit log; the stored one with its ID. */
  async recordAdminAction(entry: AdminAction): Promise<RecordedAdminAction> {
    this.#open();
    return this.#audit.record(entry);
  }

  /** A page of the audit log, newest first. */
  async listAdminActions(query: AdminActionQuery): Promise<RecordedAdminAction[]> {
    this.#open();
    return this.#audit.list(query);
  }

  // ServerKeyStore (@hsmedia/signing)

  /** Every stored key of a server, expired or not; [] when none. */
  async getServerKeys(serverName: string): Promise<MemoryServerKey[]> {
    this.#open();
    return this.#serverKeys.get(serverName);
  }

  /** Inserts or replaces keys, keyed by `(serverName, keyId)`. */
  async putServerKeys(keys: readonly MemoryServerKey[]): Promise<void> {
    this.#open();
    this.#serverKeys.put(keys);
  }

  /** Makes every later call reject. The data is dropped with the object. */
  // BlobReferenceLedger (see the port for the protocol)

  async pinBlob(blobId: string, size: number, now: number, deletionStaleBefore: number): Promise<{ readonly deletionInFlight: boolean }> {
    this.#open();
    return { deletionInFlight: this.#ledger.pin(blobId, size, now, deletionStaleBefore) };
  }

  async unpinBlob(blobId: string): Promise<void> {
    this.#open();
    this.#ledger.unpin(blobId);
  }

  async isBlobDeletionInFlight(blobId: string, deletionStaleBefore: number): Promise<boolean> {
    this.#open();
    return this.#ledger.deletionInFlight(blobId, deletionStaleBefore);
  }

  async beginBlobDeletion(blobId: string, now: number, stale: BlobStaleness): Promise<boolean> {
    this.#open();
    return this.#ledger.beginDeletion(blobId, now, stale);
  }

  async finishBlobDeletion(blobId: string, startedAt: number, objectGone: boolean, stale: BlobStaleness): Promise<void> {
    this.#open();
    this.#ledger.finishDeletion(blobId, startedAt, objectGone, stale);
  }

  async listUnreferencedBlobs(pinsStaleBefore: number, after: string, limit: number): Promise<string[]> {
    this.#open();
    return this.#ledger.unreferenced(pinsStaleBefore, after, limit);
  }

  async knownBlobs(blobIds: readonly string[]): Promise<Set<string>> {
    this.#open();
    return this.#ledger.known(blobIds);
  }

  async listReferencedBlobs(after: string, limit: number): Promise<ReferencedBlob[]> {
    this.#open();
    return this.#ledger.referenced(after, limit);
  }

  async replaceBlobId(from: string, to: string): Promise<number> {
    this.#open();
    const moved = this.#media.replaceBlobId(from, to) + this.#thumbnails.replaceBlobId(from, to);
    const size = this.#ledger.referenced('', Number.MAX_SAFE_INTEGER).find((row) => row.blobId === from)?.size ?? 0;
    for (let i = 0; i < moved; i++) {
      this.#ledger.dropReference(from);
      this.#ledger.addReference(to, size);
    }
    return moved;
  }

  async blobStorageStats(): Promise<BlobStorageStats> {
    this.#open();
    return this.#ledger.stats();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
