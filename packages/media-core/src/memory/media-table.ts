import type {
  MediaBrowseFilter,
  MediaBrowseOptions,
  MediaHistogramBucket,
  MediaHistogramQuery,
  OriginMediaUsage,
  MediaCompletion,
  MediaListOptions,
  MediaQuery,
  MediaRecord,
  MediaSummary,
  MediaUsage,
  MediaUsagePage,
  MediaUsageQuery,
} from '../ports/index.js';
import {
  browseMediaRecords,
  mediaHistogramOfRecords,
  mediaUsageByOriginOfRecords,
  mediaUsageOfRecords,
  selectMediaRecords,
  summarizeMediaRecords,
} from './media-query.js';

/** Collision-free key of a `(serverName, mediaId)` pair, whatever characters either holds. */
export function mediaKey(serverName: string, mediaId: string): string {
  return JSON.stringify([serverName, mediaId]);
}

/**
 * A copy of exactly the {@link MediaRecord} fields, as a database row would
 * hold them: no extra properties, no `protected` or `profile` field unless it
 * is true (stores leave them out of records without the flag), no `scanState` unless set.
 */
function copyRecord(record: MediaRecord): MediaRecord {
  const copy: MediaRecord = {
    serverName: record.serverName,
    mediaId: record.mediaId,
    blobId: record.blobId,
    contentType: record.contentType,
    uploadName: record.uploadName,
    size: record.size,
    sha256: record.sha256,
    userId: record.userId,
    createdAt: record.createdAt,
    uploadedAt: record.uploadedAt,
    expiresAt: record.expiresAt,
    authenticated: record.authenticated,
    quarantined: record.quarantined,
    lastAccessAt: record.lastAccessAt,
  };
  const withScan = record.scanState === undefined ? copy : { ...copy, scanState: record.scanState };
  return { ...withScan, ...(record.protected === true ? { protected: true } : {}), ...(record.profile === true ? { profile: true } : {}) };
}

/**
 * The media rows of `MemoryMetadataStore`: the `MediaRecordStore` and
 * `MediaQueries` semantics over one Map. Every method is synchronous, so each
 * is atomic in this process, as a single SQL statement is in a database.
 * Records are copied in and out: callers never share an object with the table.
 */
export class MediaTable {
  readonly #rows = new Map<string, MediaRecord>();

  get(serverName: string, mediaId: string): MediaRecord | null {
    const record = this.#rows.get(mediaKey(serverName, mediaId));
    return record === undefined ? null : copyRecord(record);
  }

  insert(record: MediaRecord): boolean {
    const key = mediaKey(record.serverName, record.mediaId);
    if (this.#rows.has(key)) return false;
    this.#rows.set(key, copyRecord(record));
    return true;
  }

  complete(serverName: string, mediaId: string, completion: MediaCompletion): boolean {
    const key = mediaKey(serverName, mediaId);
    const record = this.#rows.get(key);
    // Only a pending record (created, no bytes yet) can be completed, and only once.
    if (record === undefined || record.blobId !== null) return false;
    const { blobId, contentType, uploadName, size, sha256, uploadedAt, scanState } = completion;
    const completed = { ...record, blobId, contentType, uploadName, size, sha256, uploadedAt };
    this.#rows.set(key, scanState === undefined ? completed : { ...completed, scanState });
    return true;
  }

  delete(serverName: string, mediaId: string): boolean {
    return this.#rows.delete(mediaKey(serverName, mediaId));
  }

  /** Replaces a row by `change(row)`; false when there is none. */
  update(serverName: string, mediaId: string, change: (record: MediaRecord) => MediaRecord): boolean {
    const key = mediaKey(serverName, mediaId);
    const record = this.#rows.get(key);
    if (record === undefined) return false;
    this.#rows.set(key, change(record));
    return true;
  }

  /** Points every row using blob `from` at `to`; how many moved. */
  replaceBlobId(from: string, to: string): number {
    let moved = 0;
    for (const [key, record] of this.#rows) {
      if (record.blobId !== from) continue;
      this.#rows.set(key, { ...record, blobId: to });
      moved++;
    }
    return moved;
  }

  /** Whether any row references `blobId`; a linear scan (a database would use an index on it). */
  references(blobId: string): boolean {
    for (const record of this.#rows.values()) if (record.blobId === blobId) return true;
    return false;
  }

  countPending(userId: string, now: number): number {
    let count = 0;
    for (const record of this.#rows.values()) {
      if (record.userId === userId && record.blobId === null && (record.expiresAt === null || record.expiresAt > now)) {
        count++;
      }
    }
    return count;
  }

  deleteExpiredPending(now: number, limit: number): number {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive safe integer');
    let deleted = 0;
    for (const [key, record] of this.#rows) {
      if (deleted >= limit) break;
      if (record.blobId === null && record.expiresAt !== null && record.expiresAt <= now) {
        this.#rows.delete(key);
        deleted++;
      }
    }
    return deleted;
  }

  list(query: MediaQuery, options: MediaListOptions): MediaRecord[] {
    return selectMediaRecords(this.#rows.values(), query, options).map(copyRecord);
  }

  summarize(query: MediaQuery): MediaSummary {
    return summarizeMediaRecords(this.#rows.values(), query);
  }

  browse(filter: MediaBrowseFilter, options: MediaBrowseOptions): MediaRecord[] {
    return browseMediaRecords(this.#rows.values(), filter, options).map(copyRecord);
  }

  usageByOrigin(limit: number): OriginMediaUsage[] {
    return mediaUsageByOriginOfRecords(this.#rows.values(), limit);
  }

  histogram(query: MediaHistogramQuery): MediaHistogramBucket[] {
    return mediaHistogramOfRecords(this.#rows.values(), query);
  }

  usageByUser(query: MediaUsageQuery): MediaUsagePage {
    return mediaUsageOfRecords(this.#rows.values(), query);
  }

  userUsage(userId: string, sinceMs: number): MediaUsage {
    let bytes = 0;
    let files = 0;
    for (const record of this.#rows.values()) {
      if (record.userId !== userId || record.blobId === null || record.createdAt < sinceMs) continue;
      bytes += record.size ?? 0;
      files += 1;
    }
    return { bytes, files };
  }
}
