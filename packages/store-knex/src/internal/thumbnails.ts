import type { StoredThumbnail } from '@hsmedia/media-core';
import type { Knex } from 'knex';
import { checkInteger, isStorableKey, MAX_KEY_LENGTH } from './validate.js';

/** A `thumbnails` row as read from the database (pg: bigint as string; SQLite: booleans as 0/1). */
interface ThumbnailRow {
  server_name: string;
  media_id: string;
  width: number | string;
  height: number | string;
  method: string;
  animated: boolean | number | bigint;
  content_type: string;
  blob_id: string;
  size: number | string | bigint;
  created_at: number | string | bigint;
}

const THUMBNAIL_COLUMNS: readonly (keyof ThumbnailRow)[] = [
  'server_name',
  'media_id',
  'width',
  'height',
  'method',
  'animated',
  'content_type',
  'blob_id',
  'size',
  'created_at',
];

const THUMBNAIL_KEY = ['server_name', 'media_id', 'width', 'height', 'method', 'animated', 'content_type'] as const;

/** Largest width/height: the `integer` column, and far above any image a generator accepts. */
const MAX_DIMENSION = 2 ** 31 - 1;

function rowToThumbnail(row: ThumbnailRow): StoredThumbnail {
  return {
    serverName: row.server_name,
    mediaId: row.media_id,
    width: Number(row.width),
    height: Number(row.height),
    method: row.method === 'crop' ? 'crop' : 'scale',
    animated: row.animated === true || row.animated === 1 || row.animated === 1n,
    contentType: row.content_type,
    blobId: row.blob_id,
    size: Number(row.size),
    createdAt: Number(row.created_at),
  };
}

/** Refuses what a backend would store differently (TypeError naming the field, never its value). */
function checkThumbnail(thumbnail: StoredThumbnail): void {
  if (typeof thumbnail !== 'object' || thumbnail === null) throw new TypeError('thumbnail must be an object');
  for (const field of ['serverName', 'mediaId', 'blobId', 'contentType'] as const) {
    const value: unknown = thumbnail[field];
    if (typeof value !== 'string' || value.length === 0 || !isStorableKey(value)) {
      throw new TypeError(`${field} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters without NUL`);
    }
  }
  for (const field of ['width', 'height'] as const) {
    const value = thumbnail[field];
    if (!Number.isSafeInteger(value) || value < 1 || value > MAX_DIMENSION) {
      throw new TypeError(`${field} must be a positive integer`);
    }
  }
  if (thumbnail.method !== 'crop' && thumbnail.method !== 'scale') throw new TypeError('method must be crop or scale');
  if (typeof thumbnail.animated !== 'boolean') throw new TypeError('animated must be a boolean');
  checkInteger('size', thumbnail.size);
  if (thumbnail.size < 0) throw new TypeError('size must not be negative');
  checkInteger('createdAt', thumbnail.createdAt);
}

/** `listThumbnails`: every row of one media item, in key order. */
export async function listThumbnails(knex: Knex, table: string, serverName: string, mediaId: string): Promise<StoredThumbnail[]> {
  if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return [];
  const rows = (await knex(table)
    .select(THUMBNAIL_COLUMNS)
    .where({ server_name: serverName, media_id: mediaId })
    .orderBy([...THUMBNAIL_KEY])) as ThumbnailRow[];
  return rows.map(rowToThumbnail);
}

/** `insertThumbnail`: false when the key exists (decided by the database, atomically). */
export async function insertThumbnail(knex: Knex, table: string, thumbnail: StoredThumbnail): Promise<boolean> {
  checkThumbnail(thumbnail);
  const inserted = await knex(table)
    .insert({
      server_name: thumbnail.serverName,
      media_id: thumbnail.mediaId,
      width: thumbnail.width,
      height: thumbnail.height,
      method: thumbnail.method,
      animated: thumbnail.animated,
      content_type: thumbnail.contentType,
      blob_id: thumbnail.blobId,
      size: thumbnail.size,
      created_at: thumbnail.createdAt,
    })
    .onConflict([...THUMBNAIL_KEY])
    .ignore()
    .returning('blob_id');
  return inserted.length === 1;
}

/**
 * `deleteThumbnails`: removes the rows and gives their blob IDs. One
 * transaction, deleting exactly the rows it read, so a row inserted meanwhile
 * is neither deleted nor lost track of (better-sqlite3 has no DELETE ... RETURNING in knex).
 */
export async function deleteThumbnails(knex: Knex, table: string, serverName: string, mediaId: string): Promise<string[]> {
  if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return [];
  return knex.transaction(async (trx) => {
    const rows = (await trx(table).select('blob_id').where({ server_name: serverName, media_id: mediaId })) as {
      blob_id: string;
    }[];
    const blobIds = rows.map((row) => row.blob_id);
    if (blobIds.length > 0) {
      await trx(table).where({ server_name: serverName, media_id: mediaId }).whereIn('blob_id', blobIds).delete();
    }
    return blobIds;
  });
}

/** Whether a thumbnail row uses `blobId`. */
export async function isThumbnailBlob(knex: Knex, table: string, blobId: string): Promise<boolean> {
  const row: unknown = await knex(table).select('media_id').where({ blob_id: blobId }).first();
  return row !== undefined;
}
