import { errors } from '@hsmedia/errors';
import {
  isValidMediaId,
  isValidServerName,
  type MediaBrowseCursor,
  type MediaBrowseFilter,
  type MediaQueries,
  type MediaRecord,
  type MediaRecordStore,
  type StoredThumbnail,
  type ThumbnailIndex,
} from '@hsmedia/media-core';
import { Router } from '@koa/router';
import { requireAdmin, type AdminCheck } from './internal/admin-guard.js';
import type { Middleware } from 'koa';
import { HSMEDIA_ADMIN_PREFIX } from './admin-routes.js';
import { booleanParam, nonNegativeIntParam, queryParam } from './internal/query-params.js';
import { ALL_METHODS, type MediaRouteState, type PathParams } from './route-context.js';

/** Options for {@link createAdminConsoleRouter}. */
export interface AdminConsoleRouterOptions {
  /** This server's name: its media is local, every other origin's is remote. */
  readonly serverName: string;
  /** The media rows: one record, listings, per-origin sums, histograms, thumbnail rows. */
  readonly queries: MediaQueries & ThumbnailIndex & Pick<MediaRecordStore, 'getMedia'>;
  /** The same client authentication as the media routers. */
  readonly authenticate: Middleware;
  /** Whether an authenticated requester is a server admin. */
  readonly isAdmin: AdminCheck;
  /** The remote cache's space budget in bytes (retention), shown beside its size; undefined when none. */
  readonly remoteCacheBudgetBytes?: number | undefined;
  /** The time; default `Date.now`. */
  readonly now?: () => number;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
const DAY_MS = 86_400_000;
const MAX_DAYS = 366;
const TOP_ORIGINS = 10;
const USER_ID_RE = /^@[^:\s]+:[^\s]+$/;
/** A content type or the start of one: printable ASCII without spaces, as types are. */
const TYPE_PREFIX_RE = /^[\x21-\x7E]{1,100}$/;
/** How many other media with the same bytes a detail answer names at most. */
const MAX_REFERENCES = 50;

/** The opaque `next_batch` token: the last record's sort key, base64url JSON. */
function cursorToken(record: MediaRecord): string {
  return Buffer.from(JSON.stringify([record.createdAt, record.serverName, record.mediaId])).toString('base64url');
}

function parseCursor(token: string): MediaBrowseCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw errors.invalidParam('Query parameter from is not a token this server gave');
  }
  if (
    !Array.isArray(value) ||
    value.length !== 3 ||
    !Number.isSafeInteger(value[0]) ||
    value[0] < 0 ||
    typeof value[1] !== 'string' ||
    typeof value[2] !== 'string' ||
    !isValidServerName(value[1]) ||
    !isValidMediaId(value[2])
  ) {
    throw errors.invalidParam('Query parameter from is not a token this server gave');
  }
  return { createdAt: value[0] as number, serverName: value[1], mediaId: value[2] };
}

function optionalBoolean(query: URLSearchParams, name: string): boolean | undefined {
  return queryParam(query, name) === undefined ? undefined : booleanParam(query, name, false);
}

/** The filter of `GET /media`, each parameter checked; 400 `M_INVALID_PARAM` for a malformed one. */
function browseFilter(query: URLSearchParams): MediaBrowseFilter {
  const origin = queryParam(query, 'origin');
  if (origin !== undefined && !isValidServerName(origin)) throw errors.invalidParam('Query parameter origin must be a server name');
  const user = queryParam(query, 'user');
  if (user !== undefined && (user.length > 255 || !USER_ID_RE.test(user))) throw errors.invalidParam('Query parameter user must be a user ID');
  const type = queryParam(query, 'type');
  if (type !== undefined && !TYPE_PREFIX_RE.test(type)) throw errors.invalidParam('Query parameter type must be a content type or its start, such as image/');
  const minSize = nonNegativeIntParam(query, 'min_size');
  const maxSize = nonNegativeIntParam(query, 'max_size');
  const since = nonNegativeIntParam(query, 'since');
  const until = nonNegativeIntParam(query, 'until');
  const quarantined = optionalBoolean(query, 'quarantined');
  const isProtected = optionalBoolean(query, 'protected');
  const entries: [keyof MediaBrowseFilter, unknown][] = [
    ['serverName', origin],
    ['userId', user],
    ['contentTypePrefix', type],
    ['minSize', minSize],
    ['maxSize', maxSize],
    ['createdFrom', since],
    ['createdUntil', until],
    ['quarantined', quarantined],
    ['protected', isProtected],
  ];
  return Object.fromEntries(entries.filter(([, value]) => value !== undefined)) as MediaBrowseFilter;
}

/** One media item as the console lists it (Synapse's `media_info` names, plus where it comes from). */
function mediaItem(record: MediaRecord, serverName: string): Record<string, unknown> {
  // A scan verdict, when the store keeps one (not part of MediaRecord everywhere yet).
  const scanState = (record as { readonly scanState?: unknown }).scanState;
  return {
    server_name: record.serverName,
    media_id: record.mediaId,
    local: record.serverName === serverName,
    user_id: record.userId,
    media_type: record.contentType,
    media_length: record.size,
    upload_name: record.uploadName,
    sha256: record.sha256,
    created_ts: record.createdAt,
    uploaded_ts: record.uploadedAt,
    last_access_ts: record.lastAccessAt,
    pending: record.blobId === null,
    authenticated: record.authenticated,
    quarantined: record.quarantined,
    safe_from_quarantine: record.protected === true,
    ...(typeof scanState === 'string' ? { scan_state: scanState } : {}),
  };
}

function thumbnailItem(thumbnail: StoredThumbnail): Record<string, unknown> {
  return {
    width: thumbnail.width,
    height: thumbnail.height,
    method: thumbnail.method,
    animated: thumbnail.animated,
    media_type: thumbnail.contentType,
    media_length: thumbnail.size,
    created_ts: thumbnail.createdAt,
  };
}

/**
 * The admin console's read-only API under `/_hsmedia/admin/v1` (admins only,
 * as every admin route: 401 without a token, 403 `M_FORBIDDEN` for others):
 *
 * - `GET /media`: recent media, local and remote, newest first; `limit`
 *   (1..500, default 50), `from` (the `next_batch` of the previous page),
 *   `origin`, `user`, `type` (content type prefix), `min_size`, `max_size`,
 *   `since`, `until` (ms), `quarantined`, `protected` (true/false).
 *   Answers `{media: [...], next_batch?}`.
 * - `GET /media/{serverName}/{mediaId}`: one item with its thumbnail rows and
 *   the other media sharing its bytes (same SHA-256).
 * - `GET /storage`: stored bytes local and remote, quarantined, the remote
 *   cache against its budget, the top origins, and bytes stored per day of
 *   creation for `days` (1..366, default 30) days.
 *
 * The mutations (quarantine, protect, delete) are those of {@link createAdminRouter}.
 */
export function createAdminConsoleRouter(options: AdminConsoleRouterOptions): Router {
  const { serverName, queries, authenticate, isAdmin } = options;
  const now = options.now ?? Date.now;
  const guard = [authenticate, requireAdmin(isAdmin)] as const;
  const router = new Router<MediaRouteState>({ methods: ALL_METHODS });
  const prefix = HSMEDIA_ADMIN_PREFIX;

  router.get(`${prefix}/media`, ...guard, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    const limit = nonNegativeIntParam(query, 'limit', DEFAULT_PAGE);
    if (limit < 1 || limit > MAX_PAGE) throw errors.invalidParam(`Query parameter limit must be from 1 to ${MAX_PAGE}`);
    const from = queryParam(query, 'from');
    const filter = browseFilter(query);
    const after = from === undefined ? undefined : parseCursor(from);
    const records = await queries.browseMedia(filter, { limit, ...(after === undefined ? {} : { after }) });
    ctx.body = {
      media: records.map((record) => mediaItem(record, serverName)),
      ...(records.length === limit ? { next_batch: cursorToken(records.at(-1)!) } : {}),
    };
  });

  router.get<MediaRouteState, PathParams<{ serverName: string; mediaId: string }>>(`${prefix}/media/:serverName/:mediaId`, ...guard, async (ctx) => {
    const { serverName: origin, mediaId } = ctx.params;
    if (!isValidServerName(origin)) throw errors.invalidParam('Invalid server name');
    if (!isValidMediaId(mediaId)) throw errors.notFound('Media not found');
    const found = await queries.getMedia(origin, mediaId);
    if (found === null) throw errors.notFound('Media not found');
    const thumbnails = await queries.listThumbnails(origin, mediaId);
    const sameBytes = found.sha256 === null ? [] : await queries.listMedia({ sha256: found.sha256 }, { limit: MAX_REFERENCES + 1 });
    ctx.body = {
      media: mediaItem(found, serverName),
      thumbnails: thumbnails.map(thumbnailItem),
      references: sameBytes
        .filter((other) => other.serverName !== origin || other.mediaId !== mediaId)
        .slice(0, MAX_REFERENCES)
        .map((other) => ({ server_name: other.serverName, media_id: other.mediaId })),
    };
  });

  router.get(`${prefix}/storage`, ...guard, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    const days = nonNegativeIntParam(query, 'days', 30);
    if (days < 1 || days > MAX_DAYS) throw errors.invalidParam(`Query parameter days must be from 1 to ${MAX_DAYS}`);
    const until = (Math.floor(now() / DAY_MS) + 1) * DAY_MS;
    const range = { intervalMs: DAY_MS, createdFrom: until - days * DAY_MS, createdUntil: until };
    const [local, remote, quarantined, origins, localDays, remoteDays] = await Promise.all([
      queries.summarizeMedia({ serverName }),
      queries.summarizeMedia({ notServerName: serverName }),
      queries.summarizeMedia({ quarantined: true }),
      queries.mediaUsageByOrigin(TOP_ORIGINS),
      queries.mediaCreationHistogram({ ...range, serverName }),
      queries.mediaCreationHistogram({ ...range, notServerName: serverName }),
    ]);
    const bucket = (b: { start: number; mediaCount: number; mediaLength: number }): Record<string, number> => ({
      start_ts: b.start,
      media_count: b.mediaCount,
      media_length: b.mediaLength,
    });
    ctx.body = {
      local: { media_count: local.count, media_length: local.totalBytes },
      remote: { media_count: remote.count, media_length: remote.totalBytes, budget: options.remoteCacheBudgetBytes ?? null },
      quarantined: { media_count: quarantined.count, media_length: quarantined.totalBytes },
      top_origins: origins.map((o) => ({ server_name: o.serverName, local: o.serverName === serverName, media_count: o.mediaCount, media_length: o.mediaLength })),
      per_day: { from_ts: range.createdFrom, until_ts: range.createdUntil, local: localDays.map(bucket), remote: remoteDays.map(bucket) },
    };
  });

  return router;
}
