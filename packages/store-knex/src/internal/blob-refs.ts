import type { BlobStaleness, BlobStorageStats, ReferencedBlob } from '@hsmedia/media-core';
import type { Knex } from 'knex';
import { isStorableKey } from './validate.js';

// The BlobReferenceLedger on the `blob_refs` table (migration 0012; the triggers there keep
// `ref_count`). Each method is one conditional statement, so the database decides races
// between processes: a deletion begins only while nothing references or pins the blob, and a
// pin made meanwhile survives the deletion's end.

function checkBlobId(blobId: string): void {
  if (typeof blobId !== 'string' || blobId.length === 0 || !isStorableKey(blobId)) throw new TypeError('blobId must be a storable key');
}

function checkTime(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new TypeError(`${name} must be a safe integer (ms since the epoch)`);
}

export async function pinBlob(
  knex: Knex,
  refs: string,
  blobId: string,
  size: number,
  now: number,
  deletionStaleBefore: number,
): Promise<{ readonly deletionInFlight: boolean }> {
  checkBlobId(blobId);
  checkTime('now', now);
  checkTime('deletionStaleBefore', deletionStaleBefore);
  const rows: { deleting_since: string | number | null }[] = await knex(refs)
    .insert({ blob_id: blobId, size, ref_count: 0, pin_count: 1, pinned_at: now, deleting_since: null })
    .onConflict('blob_id')
    .merge({ pin_count: knex.raw(`${refs}.pin_count + 1`), pinned_at: now })
    .returning('deleting_since');
  const since = rows[0]?.deleting_since ?? null;
  return { deletionInFlight: since !== null && Number(since) >= deletionStaleBefore };
}

export async function unpinBlob(knex: Knex, refs: string, blobId: string): Promise<void> {
  checkBlobId(blobId);
  await knex(refs).where({ blob_id: blobId }).where('pin_count', '>', 0).decrement('pin_count', 1);
}

export async function isBlobDeletionInFlight(knex: Knex, refs: string, blobId: string, deletionStaleBefore: number): Promise<boolean> {
  checkBlobId(blobId);
  const row: unknown = await knex(refs).select('blob_id').where({ blob_id: blobId }).where('deleting_since', '>=', deletionStaleBefore).first();
  return row !== undefined;
}

/** `ref_count = 0` and no pin newer than the threshold: what may be deleted. */
function unreferenced(query: Knex.QueryBuilder, table: string, pinsStaleBefore: number): Knex.QueryBuilder {
  return query
    .where(`${table}.ref_count`, 0)
    .where((pins) => pins.where(`${table}.pin_count`, 0).orWhere(`${table}.pinned_at`, '<', pinsStaleBefore));
}

export async function beginBlobDeletion(knex: Knex, refs: string, blobId: string, now: number, stale: BlobStaleness): Promise<boolean> {
  checkBlobId(blobId);
  checkTime('now', now);
  const rows = await knex(refs)
    .insert({ blob_id: blobId, size: 0, ref_count: 0, pin_count: 0, pinned_at: 0, deleting_since: now })
    .onConflict('blob_id')
    .merge({ deleting_since: now })
    .where((query) =>
      unreferenced(query, refs, stale.pinsStaleBefore).where((deleting) =>
        deleting.whereNull(`${refs}.deleting_since`).orWhere(`${refs}.deleting_since`, '<', stale.deletionStaleBefore),
      ),
    )
    .returning('blob_id');
  return rows.length === 1;
}

export async function finishBlobDeletion(
  knex: Knex,
  refs: string,
  blobId: string,
  startedAt: number,
  objectGone: boolean,
  stale: BlobStaleness,
): Promise<void> {
  checkBlobId(blobId);
  if (objectGone) {
    const dropped = await unreferenced(knex(refs).where({ blob_id: blobId, deleting_since: startedAt }), refs, stale.pinsStaleBefore).delete();
    if (dropped > 0) return;
  }
  await knex(refs).where({ blob_id: blobId, deleting_since: startedAt }).update({ deleting_since: null });
}

export async function listUnreferencedBlobs(knex: Knex, refs: string, pinsStaleBefore: number, after: string, limit: number): Promise<string[]> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive integer');
  const rows: { blob_id: string }[] = await unreferenced(knex(refs).select('blob_id'), refs, pinsStaleBefore)
    .where('blob_id', '>', after)
    .orderBy('blob_id')
    .limit(limit);
  return rows.map((row) => row.blob_id);
}

export async function knownBlobs(knex: Knex, refs: string, blobIds: readonly string[]): Promise<Set<string>> {
  const storable = blobIds.filter((blobId) => typeof blobId === 'string' && isStorableKey(blobId));
  const known = new Set<string>();
  // Chunks keep the bound parameters under SQLite's limit.
  for (let start = 0; start < storable.length; start += 500) {
    const rows: { blob_id: string }[] = await knex(refs).select('blob_id').whereIn('blob_id', storable.slice(start, start + 500));
    for (const row of rows) known.add(row.blob_id);
  }
  return known;
}

export async function blobStorageStats(knex: Knex, refs: string): Promise<BlobStorageStats> {
  const row = (await knex(refs)
    .where('ref_count', '>', 0)
    .first(knex.raw('COUNT(*) AS blobs'), knex.raw('COALESCE(SUM(size), 0) AS stored'), knex.raw('COALESCE(SUM(size * ref_count), 0) AS referenced'))) as
    | { blobs: string | number; stored: string | number; referenced: string | number }
    | undefined;
  return { blobs: Number(row?.blobs ?? 0), storedBytes: Number(row?.stored ?? 0), referencedBytes: Number(row?.referenced ?? 0) };
}

export async function listReferencedBlobs(knex: Knex, refs: string, after: string, limit: number): Promise<ReferencedBlob[]> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive integer');
  const rows: { blob_id: string; size: string | number; ref_count: string | number }[] = await knex(refs)
    .select('blob_id', 'size', 'ref_count')
    .where('ref_count', '>', 0)
    .where('blob_id', '>', after)
    .orderBy('blob_id')
    .limit(limit);
  return rows.map((row) => ({ blobId: row.blob_id, size: Number(row.size), refCount: Number(row.ref_count) }));
}

/** One transaction over both tables; the triggers move the counts from `from` to `to`. */
export async function replaceBlobId(knex: Knex, tables: { readonly media: string; readonly thumbnails: string }, from: string, to: string): Promise<number> {
  checkBlobId(from);
  checkBlobId(to);
  return knex.transaction(async (trx) => {
    const media = await trx(tables.media).where({ blob_id: from }).update({ blob_id: to });
    const thumbnails = await trx(tables.thumbnails).where({ blob_id: from }).update({ blob_id: to });
    return media + thumbnails;
  });
}
