import { noopLogger, systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import type { BlobReferenceLedger, BlobStaleness } from './ports/blob-references.js';
import type { BlobStaging, BlobStore } from './ports/blob-store.js';

/** Options of {@link OrphanBlobSweep.sweep} (and `ContentAddressedBlobStore.sweepOrphans`). */
export interface OrphanSweepOptions {
  /** Only count what would be removed. */
  readonly dryRun?: boolean;
  /** Pins and objects younger than this are spared (puts in flight). Default the sweep's `graceMs`. */
  readonly graceMs?: number;
  readonly signal?: AbortSignal;
}

/** What a sweep found and removed. */
export interface OrphanSweepResult {
  /** Ledger rows with no reference and no live pin. */
  readonly unreferenced: number;
  /** Objects the ledger has no row for. */
  readonly unknown: number;
  /** How many of them were removed (0 on a dry run). */
  readonly removed: number;
}

/** Options of {@link OrphanBlobSweep}. */
export interface OrphanBlobSweepOptions {
  /** The objects themselves (never a content-addressing or cache wrapper): listed and deleted. */
  readonly objects: BlobStore & Pick<BlobStaging, 'listBlobs'>;
  /** The reference ledger the metadata store keeps (its triggers count every media and thumbnail row). */
  readonly references: BlobReferenceLedger;
  /**
   * How old an object nothing references must be before it goes: longer than any
   * put takes to reach its record insert (an upload, a remote fetch, an import item).
   * Default one hour.
   */
  readonly graceMs?: number;
  /** How long a deletion may take before another process takes it for a crashed one's. Default two minutes. */
  readonly deletionLeaseMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

const HOUR_MS = 60 * 60 * 1000;
const SWEEP_PAGE = 500;

/**
 * Removes blobs no media or thumbnail row references: what a process killed
 * between storing the bytes and inserting the row leaves behind (an upload, a
 * remote fetch, the items an import had in flight), and objects whose deletion
 * failed. The same sweep serves a content-addressed store and a plain one
 * (random blob IDs): the metadata store's ledger counts the references of
 * every row in either case.
 *
 * Two sources: ledger rows with no reference and no pin newer than the grace
 * period, and listed objects older than the grace period that the ledger never
 * heard of. The ledger is read after each page of the listing, so a row inserted
 * while the listing ran is seen; and every removal goes through the ledger's
 * conditional `beginBlobDeletion`, which fails once a row references the blob,
 * so a record inserted between that read and the deletion keeps its blob. A
 * blob being written is never listed before it is complete (filesystem
 * staging, S3 multipart) and is younger than the grace period once it is.
 */
export class OrphanBlobSweep {
  readonly #objects: BlobStore & Pick<BlobStaging, 'listBlobs'>;
  readonly #references: BlobReferenceLedger;
  readonly #graceMs: number;
  readonly #deletionLeaseMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(options: OrphanBlobSweepOptions) {
    this.#objects = options.objects;
    this.#references = options.references;
    this.#graceMs = options.graceMs ?? HOUR_MS;
    this.#deletionLeaseMs = options.deletionLeaseMs ?? 2 * 60 * 1000;
    if (!(this.#graceMs > 0) || !(this.#deletionLeaseMs > 0)) throw new RangeError('graceMs and deletionLeaseMs must be positive');
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? noopLogger;
  }

  /** One pass over the ledger and the listing; logs what it found when anything. */
  async sweep(options: OrphanSweepOptions = {}): Promise<OrphanSweepResult> {
    const graceMs = options.graceMs ?? this.#graceMs;
    const now = this.#clock.now();
    const stale: BlobStaleness = { pinsStaleBefore: now - graceMs, deletionStaleBefore: now - this.#deletionLeaseMs };
    const remove = (blobId: string): Promise<boolean> =>
      options.dryRun === true ? Promise.resolve(false) : deleteUnlessHeld(this.#objects, this.#references, blobId, this.#clock.now(), stale);
    const result = await sweepOrphanBlobs(this.#objects, this.#references, stale.pinsStaleBefore, options.signal, remove);
    if (result.unreferenced + result.unknown > 0) {
      this.#logger.info({ ...result, dryRun: options.dryRun === true }, 'orphan blob sweep');
    }
    return result;
  }
}

/**
 * Deletes `blobId`'s object after winning the ledger's conditional
 * `beginBlobDeletion` (nothing references or pins it, no deletion in flight);
 * true when this call removed an object.
 */
export async function deleteUnlessHeld(
  objects: Pick<BlobStore, 'delete'>,
  references: BlobReferenceLedger,
  blobId: string,
  startedAt: number,
  stale: BlobStaleness,
): Promise<boolean> {
  if (!(await references.beginBlobDeletion(blobId, startedAt, stale))) return false;
  let gone = false;
  try {
    const existed = await objects.delete(blobId);
    gone = true;
    return existed;
  } finally {
    await references.finishBlobDeletion(blobId, startedAt, gone, stale);
  }
}

async function sweepOrphanBlobs(
  objects: Pick<BlobStaging, 'listBlobs'>,
  references: BlobReferenceLedger,
  staleBefore: number,
  signal: AbortSignal | undefined,
  remove: (blobId: string) => Promise<boolean>,
): Promise<OrphanSweepResult> {
  let unreferenced = 0;
  let unknown = 0;
  let removed = 0;
  let after = '';
  for (;;) {
    signal?.throwIfAborted();
    const page = await references.listUnreferencedBlobs(staleBefore, after, SWEEP_PAGE);
    for (const blobId of page) {
      unreferenced++;
      if (await remove(blobId)) removed++;
    }
    if (page.length < SWEEP_PAGE) break;
    after = page[page.length - 1]!;
  }
  let batch: string[] = [];
  const flush = async (): Promise<void> => {
    // Read after these objects were listed: a row inserted meanwhile makes its blob known.
    const known = await references.knownBlobs(batch);
    for (const blobId of batch) {
      if (known.has(blobId)) continue;
      unknown++;
      if (await remove(blobId)) removed++;
    }
    batch = [];
  };
  for await (const listed of objects.listBlobs()) {
    signal?.throwIfAborted();
    if (listed.modifiedAt >= staleBefore) continue;
    batch.push(listed.blobId);
    if (batch.length >= SWEEP_PAGE) await flush();
  }
  if (batch.length > 0) await flush();
  return { unreferenced, unknown, removed };
}
