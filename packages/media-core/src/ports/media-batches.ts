import type { MediaRecord } from './metadata-store.js';

/**
 * Batch forms of the record reads and writes a bulk import makes per item
 * (`MediaImports`): one statement or one transaction per page of items
 * instead of one per item. An optional capability of a metadata store;
 * check with {@link hasMediaRecordBatches}. The single-item methods of
 * `MediaRecordStore` keep working alongside.
 */
export interface MediaRecordBatches {
  /**
   * The records of those keys that exist, in any order (one query). Keys
   * no store can hold (invalid text) are simply absent. At most
   * {@link MAX_MEDIA_BATCH} keys; more is a `TypeError`.
   */
  getMediaBatch(keys: readonly MediaKey[]): Promise<MediaRecord[]>;
  /**
   * Inserts the records in one transaction, all or nothing: every record is
   * checked first (a `TypeError` naming the index of the first bad one, and
   * nothing written). Per record, in order: true when inserted, false when
   * its `(serverName, mediaId)` existed or came earlier in the same batch
   * (that row is left unchanged), exactly as `insertMedia` answers one by
   * one. At most {@link MAX_MEDIA_BATCH} records.
   */
  insertMediaBatch(records: readonly MediaRecord[]): Promise<boolean[]>;
}

/** The identity of a media record. */
export interface MediaKey {
  readonly serverName: string;
  readonly mediaId: string;
}

/** The batch form of `BlockedHashes.isHashBlocked`; an optional capability, check with {@link hasBlockedHashBatches}. */
export interface BlockedHashBatches {
  /**
   * Which of the hashes are on the blocked-hash list (one query). A
   * malformed hash is never listed. At most {@link MAX_MEDIA_BATCH} hashes.
   */
  blockedHashesAmong(hashes: readonly string[]): Promise<Set<string>>;
}

/** Most keys, records or hashes one batch call takes (keeps a statement's bound values far below SQLite's limit). */
export const MAX_MEDIA_BATCH = 1000;

/** Whether `store` also implements {@link MediaRecordBatches}. */
export function hasMediaRecordBatches<T extends object>(store: T): store is T & MediaRecordBatches {
  const candidate = store as Partial<MediaRecordBatches>;
  return typeof candidate.getMediaBatch === 'function' && typeof candidate.insertMediaBatch === 'function';
}

/** Whether `store` also implements {@link BlockedHashBatches}. */
export function hasBlockedHashBatches<T extends object>(store: T): store is T & BlockedHashBatches {
  return typeof (store as Partial<BlockedHashBatches>).blockedHashesAmong === 'function';
}

/** Throws `TypeError` for a batch that is no array or is longer than {@link MAX_MEDIA_BATCH} (shared by the implementations). */
export function checkBatchSize(batch: readonly unknown[], what: string): void {
  if (!Array.isArray(batch)) throw new TypeError(`${what} must be an array`);
  if (batch.length > MAX_MEDIA_BATCH) throw new TypeError(`at most ${MAX_MEDIA_BATCH} ${what} at once`);
}
