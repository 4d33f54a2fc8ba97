import { checkBlockedHash, checkBlockedHashPage, SHA256_HEX_RE, uniqueBlockedHashes, type BlockedHash, type BlockedHashPage } from '@hsmedia/media-core';
import type { Knex } from 'knex';

interface BlockedHashRow {
  sha256: string;
  reason: string | null;
  blocked_by: string | null;
  // pg answers bigint columns as strings.
  blocked_at: number | string | bigint;
}

const COLUMNS = ['sha256', 'reason', 'blocked_by', 'blocked_at'] as const;

/** Inserts the entry unless the hash is listed (the first entry is kept); true when inserted. One statement, so races are decided by the database. */
export async function blockHash(knex: Knex, table: string, entry: BlockedHash): Promise<boolean> {
  checkBlockedHash(entry);
  const inserted = await knex(table)
    .insert({ sha256: entry.sha256, reason: entry.reason, blocked_by: entry.blockedBy, blocked_at: entry.blockedAt })
    .onConflict('sha256')
    .ignore()
    .returning('sha256');
  return inserted.length === 1;
}

/** Rows per INSERT of a bulk import: 4 bound values each stays far below SQLite's variable limit. */
const IMPORT_CHUNK = 500;

/** Every entry checked first, then inserted in one transaction (all or nothing); how many were new. */
export async function blockHashes(knex: Knex, table: string, entries: readonly BlockedHash[]): Promise<number> {
  const unique = uniqueBlockedHashes(entries);
  if (unique.length === 0) return 0;
  return knex.transaction(async (trx) => {
    let added = 0;
    for (let start = 0; start < unique.length; start += IMPORT_CHUNK) {
      const rows = unique
        .slice(start, start + IMPORT_CHUNK)
        .map((entry) => ({ sha256: entry.sha256, reason: entry.reason, blocked_by: entry.blockedBy, blocked_at: entry.blockedAt }));
      const inserted = await trx(table).insert(rows).onConflict('sha256').ignore().returning('sha256');
      added += inserted.length;
    }
    return added;
  });
}

export async function unblockHash(knex: Knex, table: string, sha256: string): Promise<boolean> {
  if (typeof sha256 !== 'string' || !SHA256_HEX_RE.test(sha256)) return false;
  return (await knex(table).where({ sha256 }).delete()) > 0;
}

export async function isHashBlocked(knex: Knex, table: string, sha256: string): Promise<boolean> {
  if (typeof sha256 !== 'string' || !SHA256_HEX_RE.test(sha256)) return false;
  const row: unknown = await knex(table).select('sha256').where({ sha256 }).first();
  return row !== undefined;
}

/** A page ordered by hash (the primary key: an index range scan). */
export async function listBlockedHashes(knex: Knex, table: string, page: BlockedHashPage): Promise<BlockedHash[]> {
  checkBlockedHashPage(page);
  const query = knex(table).select(COLUMNS).orderBy('sha256').limit(page.limit);
  if (page.after !== undefined) query.where('sha256', '>', page.after);
  const search = page.search;
  if (search !== undefined) {
    const escaped = search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`);
    // A hash prefix or a reason substring, ASCII case-insensitive on both databases (hashes are stored lower-case).
    query.where((inner) => {
      inner.where(knex.raw(`sha256 LIKE ? ESCAPE '\\'`, [`${escaped}%`])).orWhere(knex.raw(`lower(reason) LIKE ? ESCAPE '\\'`, [`%${escaped}%`]));
    });
  }
  const rows = (await query) as BlockedHashRow[];
  return rows.map((row) => ({ sha256: row.sha256, reason: row.reason, blockedBy: row.blocked_by, blockedAt: Number(row.blocked_at) }));
}
