import type { BlobStaleness, BlobStorageStats, ReferencedBlob } from '../ports/index.js';

interface LedgerRow {
  size: number;
  refs: number;
  pins: number;
  pinnedAt: number;
  deletingSince: number | null;
}

/**
 * The `BlobReferenceLedger` rows of `MemoryMetadataStore`: the same rules as the
 * SQL store's `blob_refs` table and its triggers, without the concurrency (each
 * call runs without yielding).
 */
export class BlobLedgerTable {
  readonly #rows = new Map<string, LedgerRow>();

  #row(blobId: string, size: number): LedgerRow {
    let row = this.#rows.get(blobId);
    if (row === undefined) {
      row = { size, refs: 0, pins: 0, pinnedAt: 0, deletingSince: null };
      this.#rows.set(blobId, row);
    }
    return row;
  }

  /** A record or thumbnail row now references `blobId`: it consumes one pin. */
  addReference(blobId: string, size: number): void {
    const row = this.#row(blobId, size);
    row.refs++;
    row.pins = Math.max(row.pins - 1, 0);
  }

  dropReference(blobId: string): void {
    const row = this.#rows.get(blobId);
    if (row !== undefined) row.refs = Math.max(row.refs - 1, 0);
  }

  pin(blobId: string, size: number, now: number, deletionStaleBefore: number): boolean {
    const row = this.#row(blobId, size);
    row.pins++;
    row.pinnedAt = now;
    return row.deletingSince !== null && row.deletingSince >= deletionStaleBefore;
  }

  unpin(blobId: string): void {
    const row = this.#rows.get(blobId);
    if (row !== undefined) row.pins = Math.max(row.pins - 1, 0);
  }

  deletionInFlight(blobId: string, deletionStaleBefore: number): boolean {
    const since = this.#rows.get(blobId)?.deletingSince ?? null;
    return since !== null && since >= deletionStaleBefore;
  }

  #deletable(row: LedgerRow, stale: Pick<BlobStaleness, 'pinsStaleBefore'>): boolean {
    return row.refs === 0 && (row.pins === 0 || row.pinnedAt < stale.pinsStaleBefore);
  }

  beginDeletion(blobId: string, now: number, stale: BlobStaleness): boolean {
    const row = this.#row(blobId, 0);
    if (!this.#deletable(row, stale)) return false;
    if (row.deletingSince !== null && row.deletingSince >= stale.deletionStaleBefore) return false;
    row.deletingSince = now;
    return true;
  }

  finishDeletion(blobId: string, startedAt: number, objectGone: boolean, stale: BlobStaleness): void {
    const row = this.#rows.get(blobId);
    if (row === undefined || row.deletingSince !== startedAt) return;
    if (objectGone && this.#deletable(row, stale)) this.#rows.delete(blobId);
    else row.deletingSince = null;
  }

  unreferenced(pinsStaleBefore: number, after: string, limit: number): string[] {
    return [...this.#rows.entries()]
      .filter(([blobId, row]) => blobId > after && this.#deletable(row, { pinsStaleBefore }))
      .map(([blobId]) => blobId)
      .sort()
      .slice(0, limit);
  }

  referenced(after: string, limit: number): ReferencedBlob[] {
    return [...this.#rows.entries()]
      .filter(([blobId, row]) => blobId > after && row.refs > 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, limit)
      .map(([blobId, row]) => ({ blobId, size: row.size, refCount: row.refs }));
  }

  known(blobIds: readonly string[]): Set<string> {
    return new Set(blobIds.filter((blobId) => this.#rows.has(blobId)));
  }

  stats(): BlobStorageStats {
    let blobs = 0;
    let storedBytes = 0;
    let referencedBytes = 0;
    for (const row of this.#rows.values()) {
      if (row.refs === 0) continue;
      blobs++;
      storedBytes += row.size;
      referencedBytes += row.size * row.refs;
    }
    return { blobs, storedBytes, referencedBytes };
  }
}
