import type {
  MediaBrowseCursor,
  MediaBrowseFilter,
  MediaBrowseOptions,
  MediaHistogramBucket,
  MediaHistogramQuery,
  OriginMediaUsage,
  MediaListOptions,
  MediaQuery,
  MediaRecord,
  MediaSummary,
  MediaUsagePage,
  MediaUsageQuery,
  UserMediaUsage,
} from '../ports/index.js';

/**
 * Reference semantics of the admin queries ({@link MediaQueries}) over plain
 * arrays: what `MemoryMetadataStore` answers with, and what the SQL adapters
 * must agree with (the conformance suite runs on both). Internal to the
 * `@hsmedia/media-core/memory` entry.
 */

/** When a record was last used: last access, else upload, else creation. */
export function lastUsedAt(record: MediaRecord): number {
  return record.lastAccessAt ?? record.uploadedAt ?? record.createdAt;
}

/** Whether `record` satisfies every condition of `query`. */
export function matchesMediaQuery(record: MediaRecord, query: MediaQuery): boolean {
  if (query.serverName !== undefined && record.serverName !== query.serverName) return false;
  if (query.notServerName !== undefined && record.serverName === query.notServerName) return false;
  if (query.userId !== undefined && record.userId !== query.userId) return false;
  if (query.sha256 !== undefined && record.sha256 !== query.sha256) return false;
  if (query.quarantined !== undefined && record.quarantined !== query.quarantined) return false;
  if (query.protected !== undefined && (record.protected === true) !== query.protected) return false;
  if (query.profile !== undefined && (record.profile === true) !== query.profile) return false;
  if (query.createdBefore !== undefined && !(record.createdAt < query.createdBefore)) return false;
  if (query.lastUsedBefore !== undefined && !(lastUsedAt(record) < query.lastUsedBefore)) return false;
  if (query.sizeGreaterThan !== undefined && !(record.size !== null && record.size > query.sizeGreaterThan)) return false;
  if (query.scanState !== undefined && record.scanState !== query.scanState) return false;
  return true;
}

function sortValue(record: MediaRecord, orderBy: NonNullable<MediaListOptions['orderBy']>): string | number | null {
  switch (orderBy) {
    case 'created_at':
      return record.createdAt;
    case 'last_used':
      return lastUsedAt(record);
    case 'size':
      return record.size;
    case 'media_id':
      return record.mediaId;
    case 'upload_name':
      return record.uploadName;
    case 'content_type':
      return record.contentType;
  }
}

function compareValues(a: string | number | null, b: string | number | null): number {
  // Nulls first in ascending order, as the SQL adapters sort them.
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The flag conditions must be booleans, as the SQL stores insist (`TypeError`). */
function checkFlagConditions(query: MediaQuery): void {
  for (const flag of ['quarantined', 'protected', 'profile'] as const) {
    if (query[flag] !== undefined && typeof query[flag] !== 'boolean') throw new TypeError(`${flag} must be a boolean`);
  }
}

/** {@link MediaQueries.listMedia} over an array (copies of the records). */
export function selectMediaRecords(
  records: Iterable<MediaRecord>,
  query: MediaQuery,
  options: MediaListOptions,
): MediaRecord[] {
  checkFlagConditions(query);
  const orderBy = options.orderBy ?? 'created_at';
  const sign = options.direction === 'desc' ? -1 : 1;
  const offset = options.offset ?? 0;
  return [...records]
    .filter((record) => matchesMediaQuery(record, query))
    .sort(
      (a, b) =>
        sign *
        (compareValues(sortValue(a, orderBy), sortValue(b, orderBy)) ||
          compareValues(a.serverName, b.serverName) ||
          compareValues(a.mediaId, b.mediaId)),
    )
    .slice(offset, offset + options.limit)
    .map((record) => ({ ...record }));
}

/** {@link MediaQueries.summarizeMedia} over an array. */
export function summarizeMediaRecords(records: Iterable<MediaRecord>, query: MediaQuery): MediaSummary {
  checkFlagConditions(query);
  let count = 0;
  let totalBytes = 0;
  for (const record of records) {
    if (!matchesMediaQuery(record, query)) continue;
    count++;
    totalBytes += record.size ?? 0;
  }
  return { count, totalBytes };
}

/** {@link MediaQueries.mediaUsageByUser} over an array. */
export function mediaUsageOfRecords(records: Iterable<MediaRecord>, query: MediaUsageQuery): MediaUsagePage {
  const term = query.searchTerm?.toLowerCase() ?? '';
  const byUser = new Map<string, { mediaCount: number; mediaLength: number }>();
  for (const record of records) {
    if (record.userId === null) continue;
    if (query.createdFrom !== undefined && record.createdAt < query.createdFrom) continue;
    if (query.createdUntil !== undefined && record.createdAt >= query.createdUntil) continue;
    if (term !== '' && !asciiLower(record.userId).includes(term)) continue;
    const usage = byUser.get(record.userId) ?? { mediaCount: 0, mediaLength: 0 };
    usage.mediaCount++;
    usage.mediaLength += record.size ?? 0;
    byUser.set(record.userId, usage);
  }
  const orderBy = query.orderBy ?? 'user_id';
  const sign = query.direction === 'desc' ? -1 : 1;
  const users: UserMediaUsage[] = [...byUser].map(([userId, usage]) => ({ userId, ...usage }));
  users.sort((a, b) => {
    const primary =
      orderBy === 'media_count'
        ? a.mediaCount - b.mediaCount
        : orderBy === 'media_length'
          ? a.mediaLength - b.mediaLength
          : 0;
    return sign * (primary || compareValues(a.userId, b.userId));
  });
  const offset = query.offset ?? 0;
  return { users: users.slice(offset, offset + query.limit), total: users.length };
}

/** Lower-cases ASCII letters only, as SQLite's `lower()` does. */
function asciiLower(value: string): string {
  return value.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Whether `record` satisfies every condition of a {@link MediaBrowseFilter}. */
function matchesBrowseFilter(record: MediaRecord, filter: MediaBrowseFilter): boolean {
  if (filter.serverName !== undefined && record.serverName !== filter.serverName) return false;
  if (filter.userId !== undefined && record.userId !== filter.userId) return false;
  if (filter.contentTypePrefix !== undefined) {
    if (record.contentType === null || !asciiLower(record.contentType).startsWith(asciiLower(filter.contentTypePrefix))) return false;
  }
  if (filter.minSize !== undefined && !(record.size !== null && record.size >= filter.minSize)) return false;
  if (filter.maxSize !== undefined && !(record.size !== null && record.size <= filter.maxSize)) return false;
  if (filter.createdFrom !== undefined && record.createdAt < filter.createdFrom) return false;
  if (filter.createdUntil !== undefined && record.createdAt >= filter.createdUntil) return false;
  if (filter.quarantined !== undefined && record.quarantined !== filter.quarantined) return false;
  if (filter.protected !== undefined && (record.protected === true) !== filter.protected) return false;
  return true;
}

/** The browse order, newest first: `createdAt`, `serverName`, `mediaId`, all descending. */
function compareBrowseOrder(a: MediaBrowseCursor, b: MediaBrowseCursor): number {
  return -(compareValues(a.createdAt, b.createdAt) || compareValues(a.serverName, b.serverName) || compareValues(a.mediaId, b.mediaId));
}

/** {@link MediaQueries.browseMedia} over an array (copies of the records). */
export function browseMediaRecords(records: Iterable<MediaRecord>, filter: MediaBrowseFilter, options: MediaBrowseOptions): MediaRecord[] {
  const { after } = options;
  return [...records]
    .filter((record) => matchesBrowseFilter(record, filter) && (after === undefined || compareBrowseOrder(record, after) > 0))
    .sort(compareBrowseOrder)
    .slice(0, options.limit)
    .map((record) => ({ ...record }));
}

/** {@link MediaQueries.mediaUsageByOrigin} over an array. */
export function mediaUsageByOriginOfRecords(records: Iterable<MediaRecord>, limit: number): OriginMediaUsage[] {
  const byOrigin = new Map<string, { mediaCount: number; mediaLength: number }>();
  for (const record of records) {
    const usage = byOrigin.get(record.serverName) ?? { mediaCount: 0, mediaLength: 0 };
    usage.mediaCount++;
    usage.mediaLength += record.size ?? 0;
    byOrigin.set(record.serverName, usage);
  }
  return [...byOrigin]
    .map(([serverName, usage]) => ({ serverName, ...usage }))
    .sort((a, b) => b.mediaLength - a.mediaLength || compareValues(a.serverName, b.serverName))
    .slice(0, limit);
}

/** {@link MediaQueries.mediaCreationHistogram} over an array. */
export function mediaHistogramOfRecords(records: Iterable<MediaRecord>, query: MediaHistogramQuery): MediaHistogramBucket[] {
  const buckets = new Map<number, { mediaCount: number; mediaLength: number }>();
  for (const record of records) {
    if (record.createdAt < query.createdFrom || record.createdAt >= query.createdUntil) continue;
    if (query.serverName !== undefined && record.serverName !== query.serverName) continue;
    if (query.notServerName !== undefined && record.serverName === query.notServerName) continue;
    const start = Math.floor(record.createdAt / query.intervalMs) * query.intervalMs;
    const bucket = buckets.get(start) ?? { mediaCount: 0, mediaLength: 0 };
    bucket.mediaCount++;
    bucket.mediaLength += record.size ?? 0;
    buckets.set(start, bucket);
  }
  return [...buckets].map(([start, bucket]) => ({ start, ...bucket })).sort((a, b) => a.start - b.start);
}
