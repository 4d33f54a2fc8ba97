import { METHODS } from 'node:http';
import { errors } from '@hsmedia/errors';
import { isValidMediaId, isValidServerName, type MediaAdmin, type MediaListOptions, type MediaOrder, type MediaRecord, type MediaUsageQuery } from '@hsmedia/media-core';
import type { Requester } from '@hsmedia/runtime';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';

/** Options for {@link createAdminRouter}. */
export interface AdminRouterOptions {
  readonly admin: MediaAdmin;
  /** The same client authentication as the media routers: sets `ctx.state.requester` or throws 401. */
  readonly authenticate: Middleware;
  /** Whether an authenticated requester is a server admin (e.g. a configured list of user IDs). */
  readonly isAdmin: (requester: Requester) => boolean | Promise<boolean>;
}

/** Synapse's admin API prefix: operators' existing tools call these paths. */
export const SYNAPSE_ADMIN_PREFIX = '/_synapse/admin/v1';
/** Our own admin endpoints, for what Synapse has no path for (quarantine by content hash). */
export const HSMEDIA_ADMIN_PREFIX = '/_hsmedia/admin/v1';

const ALL_METHODS: string[] = [...METHODS];
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

function query(ctx: Context, name: string): string | undefined {
  const values = new URLSearchParams(ctx.querystring).getAll(name);
  if (values.length > 1) throw errors.invalidParam(`Query parameter ${name} given more than once`);
  return values[0];
}

function nonNegativeInt(ctx: Context, name: string, fallback?: number): number | undefined {
  const raw = query(ctx, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,15}$/.test(raw)) throw errors.invalidParam(`Query parameter ${name} must be a non-negative integer`);
  return Number(raw);
}

function timestamp(ctx: Context, name: string, required: boolean): number | undefined {
  const value = nonNegativeInt(ctx, name);
  if (value === undefined) {
    if (required) throw errors.missingParam(`Missing query parameter ${name}`);
    return undefined;
  }
  if (value < MIN_PLAUSIBLE_TS) {
    throw errors.invalidParam(`Query parameter ${name} is from 1970: give a timestamp in milliseconds`);
  }
  return value;
}

function booleanParam(ctx: Context, name: string, fallback: boolean): boolean {
  const raw = query(ctx, name);
  if (raw === undefined) return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw errors.invalidParam(`Query parameter ${name} must be true or false`);
}

function page(ctx: Context): { from: number; limit: number; direction: 'asc' | 'desc' } {
  const from = nonNegativeInt(ctx, 'from', 0)!;
  const limit = nonNegativeInt(ctx, 'limit', DEFAULT_PAGE)!;
  if (limit < 1 || limit > MAX_PAGE) throw errors.invalidParam(`Query parameter limit must be from 1 to ${MAX_PAGE}`);
  const dir = query(ctx, 'dir') ?? 'f';
  if (dir !== 'f' && dir !== 'b') throw errors.invalidParam('Query parameter dir must be f or b');
  return { from, limit, direction: dir === 'f' ? 'asc' : 'desc' };
}

function enumParam<T>(ctx: Context, name: string, table: Readonly<Record<string, T>>, fallback: string): T {
  const raw = query(ctx, name) ?? fallback;
  if (!Object.hasOwn(table, raw)) throw errors.invalidParam(`Unknown value for ${name}`);
  return table[raw]!;
}

function params(ctx: Context): Record<string, string> {
  return (ctx as Context & { params: Record<string, string> }).params;
}

function mediaKey(ctx: Context): { serverName: string; mediaId: string } {
  const { serverName, mediaId } = params(ctx);
  if (serverName === undefined || !isValidServerName(serverName)) throw errors.invalidParam('Invalid server name');
  if (mediaId === undefined || !isValidMediaId(mediaId)) throw errors.notFound('Media not found');
  return { serverName, mediaId };
}

function userIdParam(ctx: Context): string {
  const userId = params(ctx)['userId'];
  if (userId === undefined || userId.length > 255 || !USER_ID_RE.test(userId)) throw errors.invalidParam('Invalid user ID');
  return userId;
}

/** Synapse's `quarantined_by` names who quarantined; we only know whether. */
function quarantinedBy(record: MediaRecord): string | null {
  return record.quarantined ? 'unknown' : null;
}

/** Synapse's `media_info` shape (plus `sha256` and `quarantined`). */
function mediaInfo(record: MediaRecord): Record<string, unknown> {
  return {
    media_origin: record.serverName,
    user_id: record.userId,
    media_id: record.mediaId,
    media_type: record.contentType,
    media_length: record.size,
    upload_name: record.uploadName,
    created_ts: record.createdAt,
    last_access_ts: record.lastAccessAt,
    quarantined_by: quarantinedBy(record),
    quarantined: record.quarantined,
    safe_from_quarantine: record.protected === true,
    authenticated: record.authenticated,
    sha256: record.sha256,
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

function listOptions(ctx: Context): MediaListOptions {
  const { from, limit, direction } = page(ctx);
  return { orderBy: enumParam(ctx, 'order_by', USER_MEDIA_ORDER, 'created_ts'), direction, limit, offset: from };
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
 * Errors: 400 `M_INVALID_PARAM` (malformed server name, user ID, hash,
 * paging or timestamp; deleting remote media by ID), 400 `M_MISSING_PARAM`
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

  const requireAdmin: Middleware = async (ctx, next) => {
    const requester = (ctx.state as { requester?: Requester }).requester;
    if (!requester) throw errors.missingToken();
    if (requester.isGuest || !(await isAdmin(requester))) throw errors.forbidden('You are not a server admin');
    ctx.set('Cache-Control', 'no-store');
    await next();
  };
  const guard = [authenticate, requireAdmin] as const;

  const router = new Router({ methods: ALL_METHODS });
  const synapse = SYNAPSE_ADMIN_PREFIX;

  router.get(`${synapse}/media/:serverName/:mediaId`, ...guard, async (ctx) => {
    const { serverName, mediaId } = mediaKey(ctx);
    const record = await admin.getMedia(serverName, mediaId);
    if (record === null) throw errors.notFound('Media not found');
    ctx.body = { media_info: mediaInfo(record) };
  });

  for (const [action, quarantined] of [
    ['quarantine', true],
    ['unquarantine', false],
  ] as const) {
    router.post(`${synapse}/media/${action}/:serverName/:mediaId`, ...guard, async (ctx) => {
      const { serverName, mediaId } = mediaKey(ctx);
      // Synapse answers {} whether or not the media exists.
      await admin.setQuarantined(serverName, mediaId, quarantined);
      ctx.body = {};
    });
    router.post(`${synapse}/user/:userId/media/${action}`, ...guard, async (ctx) => {
      const count = await admin.quarantineUserMedia(userIdParam(ctx), quarantined);
      ctx.body = { [quarantined ? 'num_quarantined' : 'num_unquarantined']: count };
    });
    router.post(`${HSMEDIA_ADMIN_PREFIX}/media/${action}_by_hash/:sha256`, ...guard, async (ctx) => {
      const sha256 = params(ctx)['sha256'] ?? '';
      if (!SHA256_RE.test(sha256)) throw errors.invalidParam('Expected a SHA-256 as 64 hex digits');
      const count = await admin.quarantineByHash(sha256, quarantined);
      ctx.body = { [quarantined ? 'num_quarantined' : 'num_unquarantined']: count };
    });
  }

  // Synapse's protect/unprotect: local media only (no server name in the path); protected media is
  // never quarantined (by ID, user or hash). Like Synapse, {} whether or not the media exists.
  for (const [action, isProtected] of [
    ['protect', true],
    ['unprotect', false],
  ] as const) {
    router.post(`${synapse}/media/${action}/:mediaId`, ...guard, async (ctx) => {
      const mediaId = params(ctx)['mediaId'];
      if (mediaId === undefined || !isValidMediaId(mediaId)) throw errors.notFound('Media not found');
      await admin.setProtected(admin.serverName, mediaId, isProtected);
      ctx.body = {};
    });
  }

  router.delete(`${synapse}/media/:serverName/:mediaId`, ...guard, async (ctx) => {
    const { serverName, mediaId } = mediaKey(ctx);
    if (serverName !== admin.serverName) throw errors.invalidParam('Can only delete local media');
    if (!(await admin.deleteMedia(serverName, mediaId))) throw errors.notFound('Media not found');
    ctx.body = { deleted_media: [mediaId], total: 1 };
  });

  const deleteOld: Middleware = async (ctx) => {
    const serverName = params(ctx)['serverName'];
    if (serverName !== undefined && serverName !== admin.serverName) {
      throw errors.invalidParam('Can only delete local media');
    }
    const before = timestamp(ctx, 'before_ts', true)!;
    const sizeGreaterThan = nonNegativeInt(ctx, 'size_gt', 0)!;
    // Accepted for compatibility; we do not know which media are avatars, so nothing is kept for it.
    booleanParam(ctx, 'keep_profiles', true);
    const deleted = await admin.deleteLocalMedia({
      lastUsedBefore: before,
      ...(sizeGreaterThan > 0 ? { sizeGreaterThan } : {}),
    });
    ctx.body = { deleted_media: deleted, total: deleted.length };
  };
  router.post(`${synapse}/media/delete`, ...guard, deleteOld);
  router.post(`${synapse}/media/:serverName/delete`, ...guard, deleteOld);

  router.get(`${synapse}/users/:userId/media`, ...guard, async (ctx) => {
    const userId = userIdParam(ctx);
    const options = listOptions(ctx);
    const { media, total } = await admin.listUserMedia(userId, options);
    const from = options.offset ?? 0;
    ctx.body = {
      media: media.map(userMediaItem),
      total,
      ...(from + media.length < total ? { next_token: from + media.length } : {}),
    };
  });

  router.delete(`${synapse}/users/:userId/media`, ...guard, async (ctx) => {
    const deleted = await admin.deleteUserMedia(userIdParam(ctx), listOptions(ctx));
    ctx.body = { deleted_media: deleted, total: deleted.length };
  });

  router.post(`${synapse}/purge_media_cache`, ...guard, async (ctx) => {
    const before = timestamp(ctx, 'before_ts', true)!;
    ctx.body = { deleted: await admin.purgeRemoteCache(before) };
  });

  router.get(`${synapse}/statistics/users/media`, ...guard, async (ctx) => {
    const { from, limit, direction } = page(ctx);
    const orderBy = enumParam(ctx, 'order_by', USAGE_ORDER, 'user_id');
    const createdFrom = nonNegativeInt(ctx, 'from_ts');
    const createdUntil = nonNegativeInt(ctx, 'until_ts');
    const searchTerm = query(ctx, 'search_term');
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
