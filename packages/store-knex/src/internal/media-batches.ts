import { checkBatchSize, SHA256_HEX_RE, type MediaKey, type MediaRecord } from '@hsmedia/media-core';
import type { Knex } from 'knex';
import { MEDIA_COLUMNS, mediaRecordToRow, mediaRowToRecord, type MediaRow } from './rows.js';
import { checkMediaRecord, isStorableKey } from './validate.js';

/** Rows per INSERT of a batch: 17 bound values each stays far below SQLite's variable limit (32766). */
const INSERT_CHUNK = 200;

/** The existing records of `keys`: one `IN` query per origin (a page of an import has one or two). */
export async function getMediaBatch(knex: Knex, table: string, keys: readonly MediaKey[]): Promise<MediaRecord[]> {
  checkBatchSize(keys, 'keys');
  const byServer = new Map<string, Set<string>>();
  for (const { serverName, mediaId } of keys) {
    // A key no backend can store cannot exist (and PostgreSQL would raise on a NUL).
    if (!isStorableKey(serverName) || !isStorableKey(mediaId)) continue;
    let ids = byServer.get(serverName);
    if (ids === undefined) byServer.set(serverName, (ids = new Set()));
    ids.add(mediaId);
  }
  const records: MediaRecord[] = [];
  for (const [serverName, ids] of byServer) {
    const rows = (await knex(table).select(MEDIA_COLUMNS).where('server_name', serverName).whereIn('media_id', [...ids])) as MediaRow[];
    for (const row of rows) records.push(mediaRowToRecord(row));
  }
  return records;
}

/**
 * Every record checked first, then the first record of each key inserted in
 * one statement, or one transaction of several (all or nothing), `ON CONFLICT DO NOTHING` deciding races
 * as `insertMedia` does; per record whether it was inserted.
 */
export async function insertMediaBatch(knex: Knex, table: string, records: readonly MediaRecord[]): Promise<boolean[]> {
  checkBatchSize(records, 'records');
  records.forEach((record, index) => {
    try {
      checkMediaRecord(record);
    } catch (err) {
      throw new TypeError(`record ${index}: ${(err as Error).message}`);
    }
  });
  const keyOf = (serverName: string, mediaId: string): string => JSON.stringify([serverName, mediaId]);
  // A key given twice: its first record is tried, the later ones answer false.
  const first = new Map<string, number>();
  records.forEach((record, index) => {
    const key = keyOf(record.serverName, record.mediaId);
    if (!first.has(key)) first.set(key, index);
  });
  const unique = [...first.values()].map((index) => records[index]!);
  if (unique.length === 0) return [];
  const inserted = new Set<string>();
  const insertChunks = async (db: Knex | Knex.Transaction): Promise<void> => {
    for (let start = 0; start < unique.length; start += INSERT_CHUNK) {
      const rows = unique.slice(start, start + INSERT_CHUNK).map(mediaRecordToRow);
      const added = (await db(table).insert(rows).onConflict(['server_name', 'media_id']).ignore().returning(['server_name', 'media_id'])) as Pick<MediaRow, 'server_name' | 'media_id'>[];
      for (const row of added) inserted.add(keyOf(row.server_name, row.media_id));
    }
  };
  // One statement is atomic by itself; a transaction (and its round trips) only for several.
  if (unique.length <= INSERT_CHUNK) await insertChunks(knex);
  else await knex.transaction(insertChunks);
  return records.map((record, index) => {
    const key = keyOf(record.serverName, record.mediaId);
    return first.get(key) === index && inserted.has(key);
  });
}

/** Which of the hashes are listed: one `IN` query on the primary key. */
export async function blockedHashesAmong(knex: Knex, table: string, hashes: readonly string[]): Promise<Set<string>> {
  checkBatchSize(hashes, 'hashes');
  const wellFormed = [...new Set(hashes.filter((hash) => typeof hash === 'string' && SHA256_HEX_RE.test(hash)))];
  if (wellFormed.length === 0) return new Set();
  const rows = (await knex(table).select('sha256').whereIn('sha256', wellFormed)) as { sha256: string }[];
  return new Set(rows.map((row) => row.sha256));
}
