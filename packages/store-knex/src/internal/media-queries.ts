import type {
  MediaScanState,
  MediaListOptions,
  MediaQuery,
  MediaRecord,
  MediaSummary,
  MediaUsagePage,
  MediaUsageQuery,
  UserMediaUsage,
} from '@hsmedia/media-core';
import type { Knex } from 'knex';
import { MEDIA_COLUMNS, mediaRowToRecord, type MediaRow } from './rows.js';
import { checkInteger, checkScanState, isStorableKey } from './validate.js';

/**
 * The admin and retention queries of `KnexMetadataStore` (listing, summing,
 * per-user usage). Plain portable SQL so SQLite and PostgreSQL agree: LIKE
 * over `lower()` for the search (ASCII case-insensitive on both), COALESCE
 * for "last used".
 */

/** When media was last used: its last access, else its upload, else its creation. */
const LAST_USED_SQL = 'COALESCE(last_access_at, uploaded_at, created_at)';

const ORDER_SQL: Readonly<Record<NonNullable<MediaListOptions['orderBy']>, string>> = {
  created_at: 'created_at',
  last_used: LAST_USED_SQL,
  size: 'size',
  media_id: 'media_id',
  upload_name: 'upload_name',
  content_type: 'content_type',
};

/** Upper bound of one page, so a caller's typo cannot load a whole table. */
const MAX_PAGE = 10_000;

function checkPage(limit: number, offset: number | undefined): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new TypeError(`limit must be an integer from 1 to ${MAX_PAGE}`);
  }
  if (offset !== undefined && (!Number.isSafeInteger(offset) || offset < 0)) {
    throw new TypeError('offset must be a non-negative integer');
  }
}

function checkDirection(direction: unknown): 'asc' | 'desc' {
  if (direction === undefined) return 'asc';
  if (direction !== 'asc' && direction !== 'desc') throw new TypeError('direction must be asc or desc');
  return direction;
}

/** Null when a key condition can never match (unstorable value): the query then selects nothing. */
function applyMediaQuery(builder: Knex.QueryBuilder, knex: Knex, query: MediaQuery): Knex.QueryBuilder | null {
  for (const field of ['serverName', 'notServerName', 'userId', 'sha256'] as const) {
    const value = query[field];
    if (value !== undefined && (typeof value !== 'string' || value.includes('\0'))) {
      throw new TypeError(`${field} must be a string without NUL`);
    }
  }
  for (const field of ['createdBefore', 'lastUsedBefore', 'sizeGreaterThan'] as const) {
    if (query[field] !== undefined) checkInteger(field, query[field]);
  }
  if (query.quarantined !== undefined && typeof query.quarantined !== 'boolean') {
    throw new TypeError('quarantined must be a boolean');
  }
  if (query.protected !== undefined && typeof query.protected !== 'boolean') {
    throw new TypeError('protected must be a boolean');
  }
  if (query.profile !== undefined && typeof query.profile !== 'boolean') {
    throw new TypeError('profile must be a boolean');
  }
  if (query.serverName !== undefined) {
    if (!isStorableKey(query.serverName)) return null;
    builder.where('server_name', query.serverName);
  }
  if (query.notServerName !== undefined) builder.whereNot('server_name', query.notServerName);
  if (query.userId !== undefined) {
    if (!isStorableKey(query.userId)) return null;
    builder.where('user_id', query.userId);
  }
  if (query.sha256 !== undefined) builder.where('sha256', query.sha256);
  if (query.quarantined !== undefined) builder.where('quarantined', query.quarantined);
  if (query.protected !== undefined) builder.where('safe_from_quarantine', query.protected);
  if (query.profile !== undefined) builder.where('profile_media', query.profile);
  if (query.createdBefore !== undefined) builder.where('created_at', '<', query.createdBefore);
  if (query.lastUsedBefore !== undefined) builder.where(knex.raw(`${LAST_USED_SQL} < ?`, [query.lastUsedBefore]));
  if (query.sizeGreaterThan !== undefined) builder.where('size', '>', query.sizeGreaterThan);
  if (query.scanState !== undefined) {
    checkScanState(query.scanState);
    builder.where('scan_state', query.scanState);
  }
  return builder;
}

function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : Number(value);
}

/** See `MediaMetadataStore.listMedia`. */
export async function listMedia(
  knex: Knex,
  table: string,
  query: MediaQuery,
  options: MediaListOptions,
): Promise<MediaRecord[]> {
  checkPage(options.limit, options.offset);
  const direction = checkDirection(options.direction);
  const orderBy = options.orderBy ?? 'created_at';
  const orderSql = ORDER_SQL[orderBy];
  if (orderSql === undefined) throw new TypeError('orderBy is not a known sort key');
  const builder = applyMediaQuery(knex(table).select(MEDIA_COLUMNS), knex, query);
  if (builder === null) return [];
  // NULLs sort first on SQLite and last on PostgreSQL: make both put them first (ascending).
  const nullsOrder = direction === 'asc' ? 0 : 1;
  const rows = (await builder
    .orderByRaw(`CASE WHEN ${orderSql} IS NULL THEN ${nullsOrder} ELSE ${1 - nullsOrder} END, ${orderSql} ${direction}`)
    .orderBy([
      { column: 'server_name', order: direction },
      { column: 'media_id', order: direction },
    ])
    .limit(options.limit)
    .offset(options.offset ?? 0)) as MediaRow[];
  return rows.map(mediaRowToRecord);
}

/** See `MediaMetadataStore.summarizeMedia`. */
export async function summarizeMedia(knex: Knex, table: string, query: MediaQuery): Promise<MediaSummary> {
  const builder = applyMediaQuery(
    knex(table).select(knex.raw('COUNT(*) AS media_count'), knex.raw('COALESCE(SUM(size), 0) AS total_bytes')),
    knex,
    query,
  );
  if (builder === null) return { count: 0, totalBytes: 0 };
  const row = (await builder.first()) as { media_count: unknown; total_bytes: unknown } | undefined;
  return { count: toNumber(row?.media_count), totalBytes: toNumber(row?.total_bytes) };
}

const USAGE_ORDER_SQL = {
  user_id: 'user_id',
  media_count: 'media_count',
  media_length: 'media_length',
} as const;

/** See `MediaMetadataStore.mediaUsageByUser`. */
export async function mediaUsageByUser(knex: Knex, table: string, query: MediaUsageQuery): Promise<MediaUsagePage> {
  checkPage(query.limit, query.offset);
  const direction = checkDirection(query.direction);
  const orderBy = query.orderBy ?? 'user_id';
  const orderSql = USAGE_ORDER_SQL[orderBy];
  if (orderSql === undefined) throw new TypeError('orderBy is not a known sort key');
  if (query.createdFrom !== undefined) checkInteger('createdFrom', query.createdFrom);
  if (query.createdUntil !== undefined) checkInteger('createdUntil', query.createdUntil);
  if (query.searchTerm !== undefined && (typeof query.searchTerm !== 'string' || query.searchTerm.includes('\0'))) {
    throw new TypeError('searchTerm must be a string without NUL');
  }
  const filtered = (): Knex.QueryBuilder => {
    const builder = knex(table).whereNotNull('user_id');
    if (query.createdFrom !== undefined) builder.where('created_at', '>=', query.createdFrom);
    if (query.createdUntil !== undefined) builder.where('created_at', '<', query.createdUntil);
    if (query.searchTerm !== undefined && query.searchTerm !== '') {
      const pattern = `%${query.searchTerm.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      builder.where(knex.raw(`lower(user_id) LIKE ? ESCAPE '\\'`, [pattern]));
    }
    return builder;
  };
  const rows = (await filtered()
    .select('user_id', knex.raw('COUNT(*) AS media_count'), knex.raw('COALESCE(SUM(size), 0) AS media_length'))
    .groupBy('user_id')
    .orderBy([
      { column: orderSql, order: direction },
      { column: 'user_id', order: direction },
    ])
    .limit(query.limit)
    .offset(query.offset ?? 0)) as { user_id: string; media_count: unknown; media_length: unknown }[];
  const totalRow = (await filtered().countDistinct({ total: 'user_id' }).first()) as { total: unknown } | undefined;
  const users: UserMediaUsage[] = rows.map((row) => ({
    userId: row.user_id,
    mediaCount: toNumber(row.media_count),
    mediaLength: toNumber(row.media_length),
  }));
  return { users, total: toNumber(totalRow?.total) };
}

/** See `MediaMetadataStore.setMediaProtected`. */
export async function setMediaProtected(
  knex: Knex,
  table: string,
  serverName: string,
  mediaId: string,
  isProtected: boolean,
): Promise<boolean> {
  if (typeof isProtected !== 'boolean') throw new TypeError('protected must be a boolean');
  if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return false;
  const changed = await knex(table).update({ safe_from_quarantine: isProtected }).where({ server_name: serverName, media_id: mediaId });
  return changed > 0;
}

/** See `MediaMetadataStore.setMediaProfile`. */
export async function setMediaProfile(knex: Knex, table: string, serverName: string, mediaId: string, isProfile: boolean): Promise<boolean> {
  if (typeof isProfile !== 'boolean') throw new TypeError('profile must be a boolean');
  if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return false;
  const changed = await knex(table).update({ profile_media: isProfile }).where({ server_name: serverName, media_id: mediaId });
  return changed > 0;
}

/** See `MediaMetadataStore.setMediaQuarantined`. */
export async function setMediaQuarantined(
  knex: Knex,
  table: string,
  serverName: string,
  mediaId: string,
  quarantined: boolean,
): Promise<boolean> {
  if (typeof quarantined !== 'boolean') throw new TypeError('quarantined must be a boolean');
  if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return false;
  const changed = await knex(table).update({ quarantined }).where({ server_name: serverName, media_id: mediaId });
  return changed > 0;
}

/** See `MediaScanStates.setMediaScanState`. */
export async function setMediaScanState(
  knex: Knex,
  table: string,
  serverName: string,
  mediaId: string,
  state: MediaScanState,
  onlyFrom?: readonly MediaScanState[],
): Promise<boolean> {
  checkScanState(state);
  for (const from of onlyFrom ?? []) checkScanState(from);
  if (!isStorableKey(serverName) || !isStorableKey(mediaId)) return false;
  if (onlyFrom !== undefined && onlyFrom.length === 0) return false;
  const builder = knex(table).update({ scan_state: state }).where({ server_name: serverName, media_id: mediaId });
  // The condition makes the write a compare-and-set: another instance's verdict is never overwritten.
  if (onlyFrom !== undefined) builder.whereIn('scan_state', [...onlyFrom]);
  return (await builder) > 0;
}
