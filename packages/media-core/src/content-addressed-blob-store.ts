import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import { deleteUnlessHeld, OrphanBlobSweep, type OrphanSweepOptions, type OrphanSweepResult } from './orphan-blob-sweep.js';
import type { BlobReferenceLedger, BlobStaleness } from './ports/blob-references.js';
import type {
  BlobPutOptions,
  BlobReadOptions,
  BlobStaging,
  BlobStore,
  ByteSource,
  DirectUrlOptions,
  StoredBlob,
} from './ports/blob-store.js';

/** Options of {@link ContentAddressedBlobStore}. */
export interface ContentAddressedBlobStoreOptions {
  /** Where the bytes go (`FsBlobStore`, `S3BlobStore`): a store that can stage. */
  readonly objects: BlobStore & BlobStaging;
  /** The reference ledger, kept by the metadata store (`KnexMetadataStore`, `MemoryMetadataStore`). */
  readonly references: BlobReferenceLedger;
  /**
   * How long a put's claim protects a blob nobody references yet (the time between
   * `put` and the record insert, admission included), and how old an unreferenced
   * object must be before the orphan sweep takes it. Default one hour.
   */
  readonly pinGraceMs?: number;
  /**
   * How long a deletion of one object may take before another process takes it for
   * a crashed one's leftover (a put waits at most this long). Default two minutes.
   */
  readonly deletionLeaseMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

const HOUR_MS = 60 * 60 * 1000;
/** The blob IDs this store gives: lower-case hex SHA-256. */
const SHA256_ID_RE = /^[0-9a-f]{64}$/;

/** What {@link ContentAddressedBlobStore.adoptBlob} did. */
export interface AdoptedBlob {
  readonly from: string;
  /** The content's blob ID, or null when the old object was missing (its rows are left as they were). */
  readonly to: string | null;
  readonly size: number;
  /** Media records and thumbnail rows pointed at `to`. */
  readonly moved: number;
}

/**
 * A {@link BlobStore} whose blob IDs are the SHA-256 (lower-case hex) of the
 * bytes: identical uploads, by any users, and cached remote media with the same
 * bytes share one stored object, on any store that can stage (filesystem, S3).
 *
 * References are counted by the metadata store ({@link BlobReferenceLedger}); this
 * class runs the claim/tombstone protocol between processes sharing that store:
 * `put` stages and hashes the bytes, pins the hash, waits out a deletion in flight,
 * then publishes the staged bytes unless the object already exists; `delete` and
 * `release` remove the object only after winning the ledger's conditional
 * `beginBlobDeletion`, which fails while a record references the blob or a put
 * claims it. Blobs stored before content addressing (random IDs) keep working:
 * they are counted in the same ledger.
 *
 * @example
 * ```ts
 * const blobs = new ContentAddressedBlobStore({ objects: new FsBlobStore({ root }), references: metadataStore });
 * const a = await blobs.put(upload1);
 * const b = await blobs.put(upload2); // same bytes: same blobId, one object
 * ```
 */
export class ContentAddressedBlobStore implements BlobStore {
  readonly contentAddressed = true;
  readonly #objects: BlobStore & BlobStaging;
  readonly #references: BlobReferenceLedger;
  readonly #pinGraceMs: number;
  readonly #deletionLeaseMs: number;
  readonly #clock: Clock;
  readonly #sweep: OrphanBlobSweep;

  constructor(options: ContentAddressedBlobStoreOptions) {
    this.#objects = options.objects;
    this.#references = options.references;
    this.#pinGraceMs = options.pinGraceMs ?? HOUR_MS;
    this.#deletionLeaseMs = options.deletionLeaseMs ?? 2 * 60 * 1000;
    if (!(this.#pinGraceMs > 0) || !(this.#deletionLeaseMs > 0)) throw new RangeError('pinGraceMs and deletionLeaseMs must be positive');
    this.#clock = options.clock ?? systemClock;
    this.#sweep = new OrphanBlobSweep({
      objects: options.objects,
      references: options.references,
      graceMs: this.#pinGraceMs,
      deletionLeaseMs: this.#deletionLeaseMs,
      clock: this.#clock,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    if (options.objects.directUrl !== undefined) {
      const objects = options.objects;
      this.directUrl = (blobId, urlOptions) => objects.directUrl!(blobId, urlOptions);
    }
  }

  directUrl?: (blobId: string, options: DirectUrlOptions) => Promise<string | null>;

  #staleness(): BlobStaleness {
    const now = this.#clock.now();
    return { pinsStaleBefore: now - this.#pinGraceMs, deletionStaleBefore: now - this.#deletionLeaseMs };
  }

  async put(source: ByteSource, options: BlobPutOptions = {}): Promise<StoredBlob> {
    const staged = await this.#objects.stageBlob(source, options);
    const blobId = staged.sha256;
    let pinned = false;
    try {
      const now = this.#clock.now();
      const { deletionInFlight } = await this.#references.pinBlob(blobId, staged.size, now, now - this.#deletionLeaseMs);
      pinned = true;
      // The pin stops any new deletion; one already in flight may still remove the object, so wait
      // for it to end and store the bytes again.
      if (deletionInFlight) await this.#waitForDeletion(blobId, options.signal);
      const existing = deletionInFlight ? null : await this.#objects.stat(blobId);
      if (existing !== null && existing.size === staged.size) {
        await staged.discard();
      } else {
        await staged.publishAs(blobId);
      }
      return { blobId, size: staged.size, sha256: staged.sha256 };
    } catch (error) {
      await staged.discard();
      if (pinned) await this.#references.unpinBlob(blobId).catch(() => undefined);
      throw error;
    }
  }

  async #waitForDeletion(blobId: string, signal: AbortSignal | undefined): Promise<void> {
    let delayMs = 5;
    const giveUpAt = this.#clock.now() + this.#deletionLeaseMs;
    while (await this.#references.isBlobDeletionInFlight(blobId, this.#clock.now() - this.#deletionLeaseMs)) {
      if (this.#clock.now() > giveUpAt) return;
      await sleep(delayMs, undefined, signal === undefined ? {} : { signal });
      delayMs = Math.min(delayMs * 2, 200);
    }
  }

  open(blobId: string, options?: BlobReadOptions): Promise<ReadableStream<Uint8Array> | null> {
    return this.#objects.open(blobId, options);
  }

  stat(blobId: string): Promise<{ readonly size: number } | null> {
    return this.#objects.stat(blobId);
  }

  /**
   * Removes the object when nothing references or claims it (else false: it stays
   * for its other users). True when this call removed it.
   */
  delete(blobId: string): Promise<boolean> {
    return this.#deleteUnlessHeld(blobId, this.#staleness());
  }

  #deleteUnlessHeld(blobId: string, stale: BlobStaleness): Promise<boolean> {
    return deleteUnlessHeld(this.#objects, this.#references, blobId, this.#clock.now(), stale);
  }

  /** Drops a put's claim on a blob that will not be referenced, and the blob when nothing else holds it. */
  async release(blobId: string): Promise<void> {
    await this.#references.unpinBlob(blobId);
    await this.delete(blobId);
  }

  /**
   * The in-place migration of one blob stored before content addressing (a
   * random ID): copies its bytes to their content key (or finds them there),
   * points every record and thumbnail at it, and then deletes the old object
   * (`deleteOld`) or leaves it to the orphan sweep after the grace period, so
   * that processes still holding the old ID in a cache can read it meanwhile.
   * A blob already named by its hash is left alone (null).
   */
  async adoptBlob(blobId: string, options: { readonly deleteOld?: boolean; readonly signal?: AbortSignal } = {}): Promise<AdoptedBlob | null> {
    if (SHA256_ID_RE.test(blobId)) return null;
    const source = await this.#objects.open(blobId, options.signal === undefined ? {} : { signal: options.signal });
    if (source === null) return { from: blobId, to: null, size: 0, moved: 0 };
    const stored = await this.put(source, options.signal === undefined ? {} : { signal: options.signal });
    if (options.deleteOld !== true) {
      const now = this.#clock.now();
      await this.#references.pinBlob(blobId, stored.size, now, now - this.#deletionLeaseMs);
    }
    const moved = await this.#references.replaceBlobId(blobId, stored.blobId);
    // A record inserted with the old ID since the listing keeps the old object (the deletion is conditional).
    if (options.deleteOld === true) await this.delete(blobId);
    if (moved === 0) await this.release(stored.blobId);
    return { from: blobId, to: stored.blobId, size: stored.size, moved };
  }

  cleanupStaging(): Promise<number> {
    return this.#objects.cleanupStaging();
  }

  /**
   * Removes objects nothing references ({@link OrphanBlobSweep}): ledger rows
   * with no reference and no pin newer than the grace period (a put that crashed
   * before its record, a crash between the last delete and the object's removal),
   * and objects older than the grace period that the ledger never heard of. Every
   * removal goes through the conditional deletion, so a put of the same bytes
   * racing the sweep keeps its blob.
   */
  sweepOrphans(options: OrphanSweepOptions = {}): Promise<OrphanSweepResult> {
    return this.#sweep.sweep(options);
  }
}

export type { OrphanSweepOptions, OrphanSweepResult };
