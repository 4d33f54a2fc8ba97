import { errors } from '@hsmedia/errors';
import { isValidMediaId, isValidServerName, type AdminContext, type BulkDeletionScope, type MediaAdmin, type MediaListOptions, type MediaOrder, type MediaRecord, type MediaUsageQuery } from '@hsmedia/media-core';
import { Router } from '@koa/router';
import { requireAdmin, type AdminCheck } from './internal/admin-guard.js';
import type { Context, Middleware } from 'koa';
import { addBlockedHashListRoutes } from './admin-hash-list-routes.js';
import { adminContext, auditQuery } from './internal/admin-inputs.js';
import { booleanParam, nonNegativeIntParam, queryParam } from './internal/query-params.js';
import { ALL_METHODS, requesterOf, type MediaStateContext, type MediaHandler, type MediaRouteState, type PathParams } from './route-context.js';

/** Options for {@link createAdminRouter}. */
export interface AdminRouterOptions {
  readonly admin: MediaAdmin;
  /** The same client authentication as the media routers: sets `ctx.state.requester` or throws 401. */
  readonly authenticate: Middleware;
  /**
   * Whether an authenticated requester is a server admin (e.g. a configured list of user IDs). The
   * request is passed too, for checks that ask the homeserver with the caller's own token.
   */
  readonly isAdmin: AdminCheck;
  /** Largest body of `POST /_hsmedia/admin/v1/blocked_hashes/import`, in bytes. Default 16 MiB. */
  readonly maxHashListBytes?: number | undefined;
}

/** Synapse's admin API prefix: operators' existing tools call these paths. */
export const SYNAPSE_ADMIN_PREFIX = '/_synapse/admin/v1';
/** Our own admin endpoints, for what Synapse has no path for (quarantine by content hash, the audit log). */
export const HSMEDIA_ADMIN_PREFIX = '/_hsmedia/admin/v1';

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1_000;
/** Synapse refuses timestamps this small: they are almost surely seconds, not milliseconds. */
const MIN_PLAUSIBLE_TS = 30_000_000_000;
const USER_ID_RE = /^@[^:\s]+:[^\s]+$/;
const SHA256_RE = /^[0-9A-Fa-f]{64}$/;

/** Synapse's `order_by` names for a user's media → our sort keys. */
const USER_MEDIA_ORDER: Readonly<Record<string, MediaOrder>> = {
  media_id: 'media_id',
  upload_name: 'upload_name',
  created_ts: 'created_at',
  last_access_ts: 'last_used',
  media_length: 'size',
  media_type: 'content_type',
  // We keep no record of who quarantined, and do not sort by protection: these sort like created_ts.
  quarantined_by: 'created_at',
  safe_from_quarantine: 'created_at',
};

const USAGE_ORDER: Readonly<Record<string, NonNullable<MediaUsageQuery['orderBy']>>> = {
  user_id: 'user_id',
  // No display names here: ordering by them orders by user ID.
  displayname: 'user_id',
  media_length: 'media_length',
  media_count: 'media_count',
};

function timestamp(query: URLSearchParams, name: string): number {
  const value = nonNegativeIntParam(query, name);
  if (value === undefined) throw errors.missingParam(`Missing query parameter ${name}`);
  if (value < MIN_PLAUSIBLE_TS) {
    throw errors.invalidParam(`Query parameter ${name} is from 1970: give a timestamp in milliseconds`);
  }
  return value;
}

function page(query: URLSearchParams): { from: number; limit: number; direction: 'asc' | 'desc' } {
  const from = nonNegativeIntParam(query, 'from', 0);
  const limit = nonNegativeIntParam(query, 'limit', DEFAULT_PAGE);
  if (limit < 1 || limit > MAX_PAGE) throw errors.invalidParam(`Query parameter limit must be from 1 to ${MAX_PAGE}`);
  const dir = queryParam(query, 'dir') ?? 'f';
  if (dir !== 'f' && dir !== 'b') throw errors.invalidParam('Query parameter dir must be f or b');
  return { from, limit, direction: dir === 'f' ? 'asc' : 'desc' };
}

function enumParam<T>(query: URLSearchParams, name: string, table: Readonly<Record<string, T>>, fallback: string): T {
  const raw = queryParam(query, name) ?? fallback;
  if (!Object.hasOwn(table, raw)) throw errors.invalidParam(`Unknown value for ${name}`);
  return table[raw]!;
}

function queryOf(ctx: { readonly querystring: string }): URLSearchParams {
  return new URLSearchParams(ctx.querystring);
}

interface MediaKey {
  serverName: string;
  mediaId: string;
}

interface UserKey {
  userId: string;
}

function mediaKey(params: MediaKey): MediaKey {
  const { serverName, mediaId } = params;
  if (!isValidServerName(serverName)) throw errors.invalidParam('Invalid server name');
  if (!isValidMediaId(mediaId)) throw errors.notFound('Media not found');
  return { serverName, mediaId };
}

function userIdParam(params: UserKey): string {
  const { userId } = params;
  if (userId.length > 255 || !USER_ID_RE.test(userId)) throw errors.invalidParam('Invalid user ID');
  return userId;
}

/** Synapse's `quarantined_by` names who quarantined; we only know whether. */
function quarantinedBy(record: MediaRecord): string | null {
  return record.quarantined ? 'unknown' : null;
}

/**
 * Whether a bulk deletion also deletes quarantined, protected and profile
 * media: off unless asked, under the names of Synapse's arguments
 * (`include_quarantined_media`, `include_protected_media`, `keep_profiles=false`).
 */
function deletionScope(query: URLSearchParams): BulkDeletionScope {
  return {
    includeQuarantined: booleanParam(query, 'include_quarantined_media', false),
    includeProtected: booleanParam(query, 'include_protected_media', false),
    // Synapse's keep_profiles (default true) on its delete-by-date endpoint; here on every bulk deletion.
    includeProfiles: !booleanParam(query, 'keep_profiles', true),
  };
}

/** An item of Synapse's `GET /users/{userId}/media` list. */
function userMediaItem(record: MediaRecord): Record<string, unknown> {
  return {
    created_ts: record.createdAt,
    last_access_ts: record.lastAccessAt,
    media_id: record.mediaId,
    media_length: record.size,
    media_type: record.contentType,
    quarantined_by: quarantinedBy(record),
    safe_from_quarantine: record.protected === true,
    upload_name: record.uploadName,
  };
}

/** Synapse's `media_info` shape (a list item and where it comes from, plus `sha256` and `quarantined`). */
function mediaInfo(record: MediaRecord): Record<string, unknown> {
  return {
    media_origin: record.serverName,
    user_id: record.userId,
    ...userMediaItem(record),
    quarantined: record.quarantined,
    profile: record.profile === true,
    authenticated: record.authenticated,
    sha256: record.sha256,
  };
}

function listOptions(query: URLSearchParams): MediaListOptions {
  const { from, limit, direction } = page(query);
  return { orderBy: enumParam(query, 'order_by', USER_MEDIA_ORDER, 'created_ts'), direction, limit, offset: from };
}

/**
 * The media admin API, at Synapse's paths and with Synapse's JSON shapes
 * (`/_synapse/admin/v1/...`) so existing operator tools work, plus
 * quarantine by content hash under `/_hsmedia/admin/v1`. Every route runs
 * `authenticate`, then refuses non-admins with 403 `M_FORBIDDEN`, before it
 * looks at any parameter.
 *
 * Protection (`POST /media/protect/{mediaId}`, `/unprotect/{mediaId}`, local
 * media) exempts an item from every quarantine (by ID, user or hash); a
 * quarantine request then answers `{}` and changes nothing, as in Synapse.
 *
 * Profile media (`POST`/`DELETE /_hsmedia/admin/v1/media/{serverName}/{mediaId}/profile`,
 * 404 for unknown media) is kept by bulk deletions (delete by date or size,
 * a user's media, `purge_media_cache`) unless `keep_profiles=false`, as
 * Synapse's `keep_profiles`; quarantined and protected media unless
 * `include_quarantined_media`/`include_protected_media`. The blocked-hash
 * list (list, search, export, import, block, unblock) is under
 * `/_hsmedia/admin/v1/blocked_hashes` (`addBlockedHashListRoutes`).
 *
 * Every mutation accepts a `reason` (query parameter, or `{"reason": ...}` as
 * a JSON body; at most 1000 characters) and is recorded with the acting admin
 * in the audit log, read with `GET /_hsmedia/admin/v1/audit` (newest first;
 * `limit`, `from` = the `next_token` of the previous page, `action`, `target`).
 *
 * Errors: 400 `M_INVALID_PARAM` (malformed server name, user ID, hash,
 * paging, timestamp, reason or audit filter; deleting remote media by ID),
 * 400 `M_NOT_JSON` (a body that is not a JSON object), 400 `M_MISSING_PARAM`
 * (`before_ts`), 404 `M_NOT_FOUND` (unknown media), 405 `M_UNRECOGNIZED`
 * (wrong method).
 *
 * @example
 * ```ts
 * const adminRouter = createAdminRouter({ admin, authenticate, isAdmin: (r) => admins.has(r.userId) });
 * mountMediaRoutes(app, { media, authenticate, routers: [adminRouter] });
 * ```
 */
export function createAdminRouter(options: AdminRouterOptions): Router {
  const { admin, authenticate, isAdmin } = options;

  const guard = [authenticate, requireAdmin(isAdmin)] as const;
  // Read after the path parameters are checked and before anything changes: a bad reason changes nothing.
  const context = (ctx: MediaStateContext & Context): Promise<AdminContext> => adminContext(ctx, requesterOf(ctx).userId, queryOf(ctx));

  const router = new Router<MediaRouteState>({ methods: ALL_METHODS });
  const synapse = SYNAPSE_ADMIN_PREFIX;
  addBlockedHashListRoutes(router, { admin, guard, context, maxImportBytes: options.maxHashListBytes });

  router.get<MediaRouteState, PathParams<MediaKey>>(`${synapse}/media/:serverName/:mediaId`, ...guard, async (ctx) => {
    const { serverName, mediaId } = mediaKey(ctx.params);
    const record = await admin.getMedia(serverName, mediaId);
    if (record === null) throw errors.notFound('Media not found');
    ctx.body = { media_info: mediaInfo(record) };
  });

  for (const [action, quarantined] of [
    ['quarantine', true],
    ['unquarantine', false],
  ] as const) {
    router.post<MediaRouteState, PathParams<MediaKey>>(`${synapse}/media/${action}/:serverName/:mediaId`, ...guard, async (ctx) => {
      const { serverName, mediaId } = mediaKey(ctx.params);
      // Synapse answers {} whether or not the media exists. The acting admin is kept with the hash a quarantine blocks.
      await admin.setQuarantined(serverName, mediaId, quarantined, await context(ctx));
      ctx.body = {};
    });
    router.post<MediaRouteState, PathParams<UserKey>>(`${synapse}/user/:userId/media/${action}`, ...guard, async (ctx) => {
      const userId = userIdParam(ctx.params);
      const count = await admin.quarantineUserMedia(userId, quarantined, await context(ctx));
      ctx.body = { [quarantined ? 'num_quarantined' : 'num_unquarantined']: count };
    });
    router.post<MediaRouteState, PathParams<{ sha256: string }>>(`${HSMEDIA_ADMIN_PREFIX}/media/${action}_by_hash/:sha256`, ...guard, async (ctx) => {
      const { sha256 } = ctx.params;
      if (!SHA256_RE.test(sha256)) throw errors.invalidParam('Expected a SHA-256 as 64 hex digits');
      const count = await admin.quarantineByHash(sha256, quarantined, await context(ctx));
      ctx.body = { [quarantined ? 'num_quarantined' : 'num_unquarantined']: count };
    });
  }

  // Synapse's protect/unprotect: local media only (no server name in the path); protected media is
  // never quarantined (by ID, user or hash). Like Synapse, {} whether or not the media exists.
  for (const [action, isProtected] of [
    ['protect', true],
    ['unprotect', false],
  ] as const) {
    router.post<MediaRouteState, PathParams<{ mediaId: string }>>(`${synapse}/media/${action}/:mediaId`, ...guard, async (ctx) => {
      const { mediaId } = ctx.params;
      if (!isValidMediaId(mediaId)) throw errors.notFound('Media not found');
      await admin.setProtected(admin.serverName, mediaId, isProtected, await context(ctx));
      ctx.body = {};
    });
  }

  // Profile media (avatars, as the homeserver knows): kept by bulk deletions unless keep_profiles=false.
  router.post<MediaRouteState, PathParams<MediaKey>>(`${HSMEDIA_ADMIN_PREFIX}/media/:serverName/:mediaId/profile`, ...guard, async (ctx) => {
    const { serverName, mediaId } = mediaKey(ctx.params);
    if (!(await admin.setProfile(serverName, mediaId, true, await context(ctx)))) throw errors.notFound('Media not found');
    ctx.body = {};
  });
  router.delete<MediaRouteState, PathParams<MediaKey>>(`${HSMEDIA_ADMIN_PREFIX}/media/:serverName/:mediaId/profile`, ...guard, async (ctx) => {
    const { serverName, mediaId } = mediaKey(ctx.params);
    if (!(await admin.setProfile(serverName, mediaId, false, await context(ctx)))) throw errors.notFound('Media not found');
    ctx.body = {};
  });

  router.delete<MediaRouteState, PathParams<MediaKey>>(`${synapse}/media/:serverName/:mediaId`, ...guard, async (ctx) => {
    const { serverName, mediaId } = mediaKey(ctx.params);
    if (serverName !== admin.serverName) throw errors.invalidParam('Can only delete local media');
    if (!(await admin.deleteMedia(serverName, mediaId, await context(ctx)))) throw errors.notFound('Media not found');
    ctx.body = { deleted_media: [mediaId], total: 1 };
  });

  const deleteOld: MediaHandler<{ serverName?: string }> = async (ctx) => {
    const { serverName } = ctx.params;
    if (serverName !== undefined && serverName !== admin.serverName) {
      throw errors.invalidParam('Can only delete local media');
    }
    const query = queryOf(ctx);
    const before = timestamp(query, 'before_ts');
    const sizeGreaterThan = nonNegativeIntParam(query, 'size_gt', 0);
    const scope = deletionScope(query);
    const deleted = await admin.deleteLocalMedia({ lastUsedBefore: before, ...(sizeGreaterThan > 0 ? { sizeGreaterThan } : {}), ...scope }, await context(ctx));
    ctx.body = { deleted_media: deleted, total: deleted.length };
  };
  router.post(`${synapse}/media/delete`, ...guard, deleteOld);
  router.post(`${synapse}/media/:serverName/delete`, ...guard, deleteOld);

  router.get<MediaRouteState, PathParams<UserKey>>(`${synapse}/users/:userId/media`, ...guard, async (ctx) => {
    const userId = userIdParam(ctx.params);
    const options = listOptions(queryOf(ctx));
    const { media, total } = await admin.listUserMedia(userId, options);
    const from = options.offset ?? 0;
    ctx.body = {
      media: media.map(userMediaItem),
      total,
      ...(from + media.length < total ? { next_token: from + media.length } : {}),
    };
  });

  router.delete<MediaRouteState, PathParams<UserKey>>(`${synapse}/users/:userId/media`, ...guard, async (ctx) => {
    const query = queryOf(ctx);
    const userId = userIdParam(ctx.params);
    const options = listOptions(query);
    const scope = deletionScope(query);
    const deleted = await admin.deleteUserMedia(userId, options, scope, await context(ctx));
    ctx.body = { deleted_media: deleted, total: deleted.length };
  });

  router.post(`${synapse}/purge_media_cache`, ...guard, async (ctx) => {
    const query = queryOf(ctx);
    const before = timestamp(query, 'before_ts');
    const scope = deletionScope(query);
    ctx.body = { deleted: await admin.purgeRemoteCache(before, undefined, scope, await context(ctx)) };
  });

  router.get(`${HSMEDIA_ADMIN_PREFIX}/audit`, ...guard, async (ctx) => {
    const query = auditQuery(queryOf(ctx), MAX_PAGE, DEFAULT_PAGE);
    const entries = await admin.listAdminActions(query);
    ctx.body = {
      actions: entries.map((entry) => ({ id: entry.id, action: entry.action, actor: entry.actor, target: entry.target, reason: entry.reason, ts: entry.at })),
      // Newest first: the next page holds the entries older than the last one here.
      ...(entries.length === query.limit ? { next_token: entries.at(-1)!.id } : {}),
    };
  });

  router.get(`${synapse}/statistics/users/media`, ...guard, async (ctx) => {
    const query = queryOf(ctx);
    const { from, limit, direction } = page(query);
    const orderBy = enumParam(query, 'order_by', USAGE_ORDER, 'user_id');
    const createdFrom = nonNegativeIntParam(query, 'from_ts');
    const createdUntil = nonNegativeIntParam(query, 'until_ts');
    const searchTerm = queryParam(query, 'search_term');
    if (searchTerm !== undefined && (searchTerm === '' || searchTerm.length > 255)) {
      throw errors.invalidParam('search_term must be 1 to 255 characters');
    }
    const { users, total } = await admin.usageByUser({
      orderBy,
      direction,
      limit,
      offset: from,
      ...(createdFrom === undefined ? {} : { createdFrom }),
      ...(createdUntil === undefined ? {} : { createdUntil }),
      ...(searchTerm === undefined ? {} : { searchTerm }),
    });
    ctx.body = {
      users: users.map((usage) => ({
        user_id: usage.userId,
        displayname: null,
        media_count: usage.mediaCount,
        media_length: usage.mediaLength,
      })),
      total,
      ...(from + users.length < total ? { next_token: from + users.length } : {}),
    };
  });

  return router;
}
