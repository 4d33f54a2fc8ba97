/**
 * The reference ledger of a content-addressed blob store: one row per stored
 * blob with how many media records and thumbnail rows use it (`refCount`), how
 * many puts claimed it and have not referenced it yet (`pinCount`, newest claim
 * at `pinnedAt`), and whether a deletion of its object is in flight
 * (`deletingSince`).
 *
 * The store keeps `refCount` itself, in the same transaction as every insert,
 * completion and deletion of a media record or a thumbnail row (and a record or
 * thumbnail that references a blob consumes one pin of it), so no caller has to
 * remember to count.
 *
 * The protocol (`ContentAddressedBlobStore`), which keeps a blob whose last
 * reference goes while another instance puts the same bytes:
 * - a put pins the blob before it looks for the object, and when a deletion is
 *   in flight waits for it to finish, then stores the bytes again;
 * - a delete first wins {@link BlobReferenceLedger.beginBlobDeletion} (a
 *   conditional update that fails while anything references or pins the blob),
 *   then deletes the object, then {@link BlobReferenceLedger.finishBlobDeletion}.
 *
 * Times are milliseconds since the epoch by the caller's clock.
 */
export interface BlobReferenceLedger {
  /**
   * Claims `blobId` for a put that will reference it (or release it): pin
   * count + 1, `pinnedAt` = `now`; creates the row with `size` when absent.
   * Answers whether a deletion started after `deletionStaleBefore` is in flight.
   */
  pinBlob(blobId: string, size: number, now: number, deletionStaleBefore: number): Promise<{ readonly deletionInFlight: boolean }>;
  /** Drops one pin of `blobId` (a put whose blob will not be referenced). */
  unpinBlob(blobId: string): Promise<void>;
  /** Whether a deletion of `blobId` started after `deletionStaleBefore` is still in flight. */
  isBlobDeletionInFlight(blobId: string, deletionStaleBefore: number): Promise<boolean>;
  /**
   * Marks the deletion of `blobId` as started at `now` when nothing references
   * it, no pin newer than `pinsStaleBefore` holds it and no deletion started
   * after `deletionStaleBefore` is in flight; true when this caller may delete
   * the object. A blob without a row is unreferenced (a row is created).
   */
  beginBlobDeletion(blobId: string, now: number, stale: BlobStaleness): Promise<boolean>;
  /**
   * Ends the deletion begun at `startedAt`: with `objectGone`, drops the row when
   * the blob is still unreferenced (else a put claimed it meanwhile: the row stays
   * and the put stores the bytes again); in any case clears the mark.
   */
  finishBlobDeletion(blobId: string, startedAt: number, objectGone: boolean, stale: BlobStaleness): Promise<void>;
  /**
   * Up to `limit` blob IDs greater than `after` (in ID order) that nothing references
   * and no pin newer than `pinsStaleBefore` holds: what the orphan sweep deletes.
   */
  listUnreferencedBlobs(pinsStaleBefore: number, after: string, limit: number): Promise<string[]>;
  /** Which of `blobIds` have a row (the sweep of objects the ledger never heard of). */
  knownBlobs(blobIds: readonly string[]): Promise<Set<string>>;
  /** Up to `limit` referenced blobs with an ID greater than `after`, in ID order (the dedup migration). */
  listReferencedBlobs(after: string, limit: number): Promise<ReferencedBlob[]>;
  /**
   * Points every media record and thumbnail row using blob `from` at blob `to`
   * instead, in one transaction (the counts follow); answers how many rows moved.
   * The dedup migration's step from a random blob ID to the content's.
   */
  replaceBlobId(from: string, to: string): Promise<number>;
  /** Totals over the ledger, for the dedup metrics. */
  blobStorageStats(): Promise<BlobStorageStats>;
}

/** Thresholds past which a pin or a deletion mark is taken for a crashed process's leftover. */
export interface BlobStaleness {
  readonly pinsStaleBefore: number;
  readonly deletionStaleBefore: number;
}

/** One row of {@link BlobReferenceLedger.listReferencedBlobs}. */
export interface ReferencedBlob {
  readonly blobId: string;
  readonly size: number;
  readonly refCount: number;
}

/** Totals of {@link BlobReferenceLedger.blobStorageStats}. */
export interface BlobStorageStats {
  /** Distinct referenced blobs. */
  readonly blobs: number;
  /** Bytes of the distinct referenced blobs: what is stored for them. */
  readonly storedBytes: number;
  /** Bytes every reference would take without sharing (each blob's size × its references). */
  readonly referencedBytes: number;
}

/** True when `store` keeps a {@link BlobReferenceLedger}. */
export function hasBlobReferenceLedger(store: object): store is BlobReferenceLedger {
  const candidate = store as Partial<BlobReferenceLedger>;
  return typeof candidate.pinBlob === 'function' && typeof candidate.beginBlobDeletion === 'function';
}
