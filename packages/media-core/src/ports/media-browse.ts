/**
 * The questions an operator's console asks of the media rows: a filtered
 * listing of recent media (local and remote) paged by a cursor, stored bytes
 * per origin, and bytes stored per time interval. Part of {@link MediaQueries}.
 */

/** Which media {@link MediaQueries.browseMedia} lists. Every given condition must hold. */
export interface MediaBrowseFilter {
  /** Only media of this origin. */
  readonly serverName?: string;
  /** Only media uploaded by this user (local media). */
  readonly userId?: string;
  /** Only media whose content type starts with this text, ASCII case-insensitively (`image/`, `video/mp4`). */
  readonly contentTypePrefix?: string;
  /** Only media whose size is known and at least this many bytes. */
  readonly minSize?: number;
  /** Only media whose size is known and at most this many bytes. */
  readonly maxSize?: number;
  /** Only media created at or after this time (ms since epoch). */
  readonly createdFrom?: number;
  /** Only media created before this time (exclusive). */
  readonly createdUntil?: number;
  readonly quarantined?: boolean;
  /** Only protected (true) or unprotected (false) media. */
  readonly protected?: boolean;
}

/** Where a page of {@link MediaQueries.browseMedia} ends: its last record's sort key. */
export interface MediaBrowseCursor {
  readonly createdAt: number;
  readonly serverName: string;
  readonly mediaId: string;
}

/** Paging of {@link MediaQueries.browseMedia}. */
export interface MediaBrowseOptions {
  /** At most this many records (a positive integer). */
  readonly limit: number;
  /** Only records after this one in the order (the last record of the previous page). */
  readonly after?: MediaBrowseCursor;
}

/** Stored media of one origin server. */
export interface OriginMediaUsage {
  readonly serverName: string;
  readonly mediaCount: number;
  /** Sum of the known sizes. */
  readonly mediaLength: number;
}

/** What {@link MediaQueries.mediaCreationHistogram} counts. */
export interface MediaHistogramQuery {
  /** Width of each interval in ms (a positive integer); intervals start at multiples of it. */
  readonly intervalMs: number;
  /** Only media created at or after this time. */
  readonly createdFrom: number;
  /** Only media created before this time. */
  readonly createdUntil: number;
  /** Only media of this origin. */
  readonly serverName?: string;
  /** Only media of any other origin. */
  readonly notServerName?: string;
}

/** Media created in one interval and still stored. */
export interface MediaHistogramBucket {
  /** Start of the interval: `createdAt` rounded down to a multiple of `intervalMs`. */
  readonly start: number;
  readonly mediaCount: number;
  readonly mediaLength: number;
}

/** Upper bound of one page, as for `listMedia`: a caller's typo cannot load a whole table. */
const MAX_BROWSE_PAGE = 10_000;
/** At most this many intervals per histogram query. */
const MAX_HISTOGRAM_BUCKETS = 10_000;

function checkTime(name: string, value: unknown): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 0)) throw new TypeError(`${name} must be a non-negative safe integer`);
}

function checkKey(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value.includes('\0'))) throw new TypeError(`${name} must be a string without NUL`);
}

function checkFlag(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`);
}

/** Throws `TypeError` for a malformed filter or page of `browseMedia` (shared by the store implementations). */
export function checkMediaBrowse(filter: MediaBrowseFilter, options: MediaBrowseOptions): void {
  checkKey('serverName', filter.serverName);
  checkKey('userId', filter.userId);
  checkKey('contentTypePrefix', filter.contentTypePrefix);
  for (const field of ['minSize', 'maxSize', 'createdFrom', 'createdUntil'] as const) checkTime(field, filter[field]);
  checkFlag('quarantined', filter.quarantined);
  checkFlag('protected', filter.protected);
  checkMediaPageLimit(options?.limit);
  const { after } = options;
  if (after !== undefined) {
    checkTime('after.createdAt', after.createdAt);
    if (typeof after.serverName !== 'string' || typeof after.mediaId !== 'string') throw new TypeError('after must name serverName and mediaId');
    checkKey('after.serverName', after.serverName);
    checkKey('after.mediaId', after.mediaId);
  }
}

/** Throws `TypeError` for a page size that is not an integer from 1 to 10000. */
export function checkMediaPageLimit(limit: unknown): void {
  if (!Number.isSafeInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_BROWSE_PAGE) {
    throw new TypeError(`limit must be an integer from 1 to ${MAX_BROWSE_PAGE}`);
  }
}

/** Throws `TypeError` for a malformed histogram query, or one of more than 10000 intervals. */
export function checkMediaHistogramQuery(query: MediaHistogramQuery): void {
  if (!Number.isSafeInteger(query?.intervalMs) || query.intervalMs < 1) throw new TypeError('intervalMs must be a positive safe integer');
  if (!Number.isSafeInteger(query.createdFrom) || query.createdFrom < 0) throw new TypeError('createdFrom must be a non-negative safe integer');
  if (!Number.isSafeInteger(query.createdUntil) || query.createdUntil < query.createdFrom) throw new TypeError('createdUntil must be a safe integer not before createdFrom');
  if ((query.createdUntil - query.createdFrom) / query.intervalMs > MAX_HISTOGRAM_BUCKETS) throw new TypeError(`at most ${MAX_HISTOGRAM_BUCKETS} intervals`);
  checkKey('serverName', query.serverName);
  checkKey('notServerName', query.notServerName);
}
