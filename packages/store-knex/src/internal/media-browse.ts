import {
  checkMediaBrowse,
  checkMediaHistogramQuery,
  checkMediaPageLimit,
  type MediaBrowseFilter,
  type MediaBrowseOptions,
  type MediaHistogramBucket,
  type MediaHistogramQuery,
  type MediaRecord,
  type OriginMediaUsage,
} from '@hsmedia/media-core';
import type { Knex } from 'knex';
import { MEDIA_COLUMNS, mediaRowToRecord, type MediaRow } from './rows.js';
import { isStorableKey } from './validate.js';

/**
 * The console queries of `KnexMetadataStore` (`browseMedia`,
 * `mediaUsageByOrigin`, `mediaCreationHistogram`), in portable SQL: the
 * keyset condition is spelled out as ORs (row-value comparison is not in
 * every SQLite build knex targets), the type prefix is a LIKE over
 * `lower()` with escaped wildcards, intervals are integer division.
 */

function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : Number(value);
}

/** LIKE pattern of a prefix, ASCII case-insensitive (matched against `lower(column)`). */
function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[A-Z]/g, (c) => c.toLowerCase()).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** See `MediaQueries.browseMedia`. */
export async function browseMedia(knex: Knex, table: string, filter: MediaBrowseFilter, options: MediaBrowseOptions): Promise<MediaRecord[]> {
  checkMediaBrowse(filter, options);
  // A key no backend can store matches nothing (and keeps PostgreSQL from raising on it).
  if (filter.serverName !== undefined && !isStorableKey(filter.serverName)) return [];
  if (filter.userId !== undefined && !isStorableKey(filter.userId)) return [];
  const builder = knex(table).select(MEDIA_COLUMNS);
  if (filter.serverName !== undefined) builder.where('server_name', filter.serverName);
  if (filter.userId !== undefined) builder.where('user_id', filter.userId);
  if (filter.contentTypePrefix !== undefined) {
    builder.where(knex.raw(`lower(content_type) LIKE ? ESCAPE '\\'`, [prefixPattern(filter.contentTypePrefix)]));
  }
  if (filter.minSize !== undefined) builder.where('size', '>=', filter.minSize);
  if (filter.maxSize !== undefined) builder.where('size', '<=', filter.maxSize);
  if (filter.createdFrom !== undefined) builder.where('created_at', '>=', filter.createdFrom);
  if (filter.createdUntil !== undefined) builder.where('created_at', '<', filter.createdUntil);
  if (filter.quarantined !== undefined) builder.where('quarantined', filter.quarantined);
  if (filter.protected !== undefined) builder.where('safe_from_quarantine', filter.protected);
  const { after } = options;
  if (after !== undefined) {
    builder.where((q) =>
      q
        .where('created_at', '<', after.createdAt)
        .orWhere((q2) => q2.where('created_at', after.createdAt).andWhere('server_name', '<', after.serverName))
        .orWhere((q3) => q3.where({ created_at: after.createdAt, server_name: after.serverName }).andWhere('media_id', '<', after.mediaId)),
    );
  }
  const rows = (await builder
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'server_name', order: 'desc' },
      { column: 'media_id', order: 'desc' },
    ])
    .limit(options.limit)) as MediaRow[];
  return rows.map(mediaRowToRecord);
}

/** See `MediaQueries.mediaUsageByOrigin`. */
export async function mediaUsageByOrigin(knex: Knex, table: string, limit: number): Promise<OriginMediaUsage[]> {
  checkMediaPageLimit(limit);
  const rows = (await knex(table)
    .select('server_name', knex.raw('COUNT(*) AS media_count'), knex.raw('COALESCE(SUM(size), 0) AS media_length'))
    .groupBy('server_name')
    .orderBy([
      { column: 'media_length', order: 'desc' },
      { column: 'server_name', order: 'asc' },
    ])
    .limit(limit)) as { server_name: string; media_count: unknown; media_length: unknown }[];
  return rows.map((row) => ({ serverName: row.server_name, mediaCount: toNumber(row.media_count), mediaLength: toNumber(row.media_length) }));
}

/** See `MediaQueries.mediaCreationHistogram`. */
export async function mediaCreationHistogram(knex: Knex, table: string, query: MediaHistogramQuery): Promise<MediaHistogramBucket[]> {
  checkMediaHistogramQuery(query);
  if (query.serverName !== undefined && !isStorableKey(query.serverName)) return [];
  // created_at is an integer column and the interval a checked safe integer, written into the SQL
  // as a literal: `/` is then integer division on both backends (better-sqlite3 binds numbers as REAL).
  const interval = String(query.intervalMs);
  const startSql = knex.raw(`(created_at / ${interval}) * ${interval}`);
  const builder = knex(table)
    .select(knex.raw(`(created_at / ${interval}) * ${interval} AS bucket_start`), knex.raw('COUNT(*) AS media_count'), knex.raw('COALESCE(SUM(size), 0) AS media_length'))
    .where('created_at', '>=', query.createdFrom)
    .andWhere('created_at', '<', query.createdUntil);
  if (query.serverName !== undefined) builder.where('server_name', query.serverName);
  if (query.notServerName !== undefined) builder.whereNot('server_name', query.notServerName);
  const rows = (await builder.groupBy(startSql).orderBy('bucket_start', 'asc')) as { bucket_start: unknown; media_count: unknown; media_length: unknown }[];
  return rows.map((row) => ({ start: toNumber(row.bucket_start), mediaCount: toNumber(row.media_count), mediaLength: toNumber(row.media_length) }));
}
