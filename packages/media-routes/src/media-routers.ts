import { METHODS } from 'node:http';
import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import {
  abortSignalFor,
  allowedMethodsOptions,
  matrixCors,
  matrixErrors,
  unrecognized,
  type ErrorLogger,
} from '@hsmedia/koa-matrix';
import type { MediaService, RateLimiter, ThumbnailService } from '@hsmedia/media-core';
import type { Requester } from '@hsmedia/runtime';
import { Router } from '@koa/router';
import type Koa from 'koa';
import type { Context, Middleware } from 'koa';
import { createFederationMediaRouter, type FederationMediaRouterOptions } from './federation-router.js';
import { createPreviewUrlHandler, type PreviewUrlOptions } from './preview-routes.js';
import { addAsyncUploadRoutes } from './async-upload-routes.js';
import { clientIpKey, rateLimit, requesterKey } from './rate-limit.js';
import { mediaSecurityHeaders } from './media-headers.js';
import { sendMedia } from './send-media.js';
import { LazyMediaLookup, LazySendOptions } from './internal/lazy-signal.js';
import { addThumbnailRoutes, federationThumbnailProvider } from './thumbnail-routes.js';

/** Options for {@link createMediaRouters}. */
export interface MediaRoutersOptions {
  readonly media: MediaService;
  /**
   * Client authentication (e.g. `@hsmedia/client-auth`'s `createClientAuth`):
   * must set `ctx.state.requester` or throw 401. It runs first on every
   * authenticated route, before any parameter is looked at.
   */
  readonly authenticate: Middleware;
  /** Cache-Control max-age of served media, in seconds. Default 86 400. */
  readonly maxAgeSeconds?: number;
  /** Legacy `/_matrix/media/<version>` prefixes served. Default `['v3', 'r0', 'v1']` (Synapse's set). */
  readonly legacyVersions?: readonly string[];
  /**
   * Serve `preview_url` (client v1 and legacy) with this previewer. Without it the
   * endpoints are not routed and answer 404 `M_UNRECOGNIZED`, as Synapse does when
   * previews are disabled (digest §6.1).
   */
  readonly preview?: PreviewUrlOptions;
  /**
   * Per-user request budgets (429 `M_LIMIT_EXCEEDED` with `retry_after_ms`
   * and `Retry-After`), checked after authentication and before any body is
   * read. Unauthenticated legacy downloads draw from `download` per client IP.
   */
  readonly rateLimits?: MediaRateLimits;
  /** Serve async uploads (`/_matrix/media/v1/create` and `PUT /_matrix/media/v3/upload/...`). Default true. */
  readonly asyncUploads?: boolean;
  /**
   * Thumbnails (client v1, legacy, and the federation seam in {@link mountMediaRoutes}).
   * Without it, thumbnails of existing media answer 400 `M_UNKNOWN`.
   */
  readonly thumbnails?: ThumbnailService;
}

/** The rate limiters {@link createMediaRouters} applies; each is optional. */
export interface MediaRateLimits {
  /** `POST /upload` and `PUT /upload/{serverName}/{mediaId}`. */
  readonly upload?: RateLimiter;
  /** Downloads (authenticated per user; legacy per IP). */
  readonly download?: RateLimiter;
  /** `POST /_matrix/media/v1/create`. */
  readonly create?: RateLimiter;
}

/** The routers {@link createMediaRouters} builds. */
export interface MediaRouters {
  /** `/_matrix/client/v1/media/{config,download}` (authenticated, spec v1.11). */
  readonly client: Router;
  /** `/_matrix/media/<v3|r0|v1>/{upload,download,config}` (upload; deprecated download and config). */
  readonly legacy: Router;
}

// Every method Node parses, so @koa/router never answers "501 not implemented":
// an unknown method on a known path is a 405 M_UNRECOGNIZED like any wrong method.
const ALL_METHODS: string[] = [...METHODS];

const MAX_FILENAME_LENGTH = 255;

function requesterOf(ctx: Context): Requester {
  const requester = (ctx.state as { requester?: Requester }).requester;
  // The authenticate middleware guarantees this; refuse rather than run unauthenticated.
  if (!requester) throw errors.missingToken();
  return requester;
}

function forbidGuests(ctx: Context): void {
  if (requesterOf(ctx).isGuest) {
    throw new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guest access not allowed');
  }
}

/** A single-valued query parameter; form-decoded (`+` is a space); undefined when absent. */
function queryParam(ctx: Context, name: string): string | undefined {
  const values = new URLSearchParams(ctx.querystring).getAll(name);
  if (values.length > 1) throw errors.invalidParam(`Query parameter ${name} given more than once`);
  return values[0];
}

function parseTimeoutMs(ctx: Context): number | undefined {
  const raw = queryParam(ctx, 'timeout_ms');
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw errors.invalidParam('timeout_ms must be a non-negative integer');
  return Number(raw);
}

function parseBoolean(ctx: Context, name: string, fallback: boolean): boolean {
  const raw = queryParam(ctx, name);
  if (raw === undefined) return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw errors.invalidParam(`${name} must be true or false`);
}

function fileNameParam(ctx: Context): string | undefined {
  const fileName = (ctx as Context & { params?: Record<string, string> }).params?.['fileName'];
  if (fileName === undefined) return undefined;
  if (fileName.length > MAX_FILENAME_LENGTH) throw errors.invalidParam('fileName is too long');
  return fileName;
}

function contentLengthOf(ctx: Context): number | undefined {
  const header = ctx.get('Content-Length');
  return /^\d{1,15}$/.test(header) ? Number(header) : undefined;
}

/**
 * Builds the media routers over a {@link MediaService}. Handlers never touch
 * a store; every rule lives in the service.
 *
 * Error choices: an invalid server name is 400 `M_INVALID_PARAM`; an invalid
 * or unknown media ID is 404 `M_NOT_FOUND` (as Synapse answers); guests on
 * `config` are 403 `M_GUEST_ACCESS_FORBIDDEN`; bad `timeout_ms`/`allow_remote`
 * are 400 `M_INVALID_PARAM`; an unsatisfiable range is 416 with `Content-Range: bytes *\/size`.
 *
 * @example
 * ```ts
 * const { client, legacy } = createMediaRouters({ media, authenticate });
 * app.use(client.routes()).use(client.allowedMethods(allowedMethodsOptions));
 * app.use(legacy.routes()).use(legacy.allowedMethods(allowedMethodsOptions));
 * ```
 */
export function createMediaRouters(options: MediaRoutersOptions): MediaRouters {
  const { media, authenticate } = options;
  const maxAge = options.maxAgeSeconds ?? 86_400;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) throw new TypeError('createMediaRouters: maxAgeSeconds must be >= 0');
  const legacyVersions = options.legacyVersions ?? ['v3', 'r0', 'v1'];
  for (const version of legacyVersions) {
    if (!/^[a-z0-9]+$/.test(version)) throw new TypeError(`createMediaRouters: bad legacy version ${version}`);
  }
  // Authenticated media must never sit in a shared cache (MSC3916); legacy media was public anyway.
  const privateCache = `private, max-age=${maxAge}`;
  const publicCache = `public, max-age=${maxAge}`;

  const config: Middleware = (ctx) => {
    forbidGuests(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = media.uploadConfig();
  };

  const authenticatedDownload: Middleware = async (ctx) => {
    requesterOf(ctx);
    const params = (ctx as Context & { params: Record<string, string> }).params;
    const fileName = fileNameParam(ctx);
    const timeoutMs = parseTimeoutMs(ctx);
    // The abort signal is created only if read (a cache hit does not): see LazyMediaLookup.
    const lookup = new LazyMediaLookup(ctx, false, true, timeoutMs);
    const handle = await media.getMedia(params['serverName']!, params['mediaId']!, lookup);
    await sendMedia(ctx, handle, new LazySendOptions(ctx, privateCache, fileName));
  };

  const legacyDownload: Middleware = async (ctx) => {
    const params = (ctx as Context & { params: Record<string, string> }).params;
    const fileName = fileNameParam(ctx);
    const timeoutMs = parseTimeoutMs(ctx);
    const allowRemote = parseBoolean(ctx, 'allow_remote', true);
    // allow_redirect is accepted and ignored: we always answer with the bytes, which every value permits.
    const lookup = new LazyMediaLookup(ctx, true, allowRemote, timeoutMs);
    const handle = await media.getMedia(params['serverName']!, params['mediaId']!, lookup);
    await sendMedia(ctx, handle, new LazySendOptions(ctx, publicCache, fileName));
  };

  const upload: Middleware = async (ctx) => {
    const requester = requesterOf(ctx);
    const filename = queryParam(ctx, 'filename');
    const contentType = ctx.get('Content-Type');
    const contentLength = contentLengthOf(ctx);
    const signal = abortSignalFor(ctx);
    try {
      const { contentUri } = await media.upload({
        // Not ctx.req itself: a stream pipeline that fails early would destroy the request, and with
        // it the socket, before the 413 could be sent. The connection is closed after the answer instead.
        body: ctx.req.iterator({ destroyOnReturn: false }),
        requester,
        signal,
        ...(contentType === '' ? {} : { contentType }),
        ...(filename === undefined ? {} : { filename }),
        ...(contentLength === undefined ? {} : { contentLength }),
      });
      ctx.body = { content_uri: contentUri };
    } catch (err) {
      // The body may be partly unread: do not let the connection carry it into the next request.
      if (!ctx.req.readableEnded) ctx.set('Connection', 'close');
      throw err;
    }
  };

  const limits = options.rateLimits ?? {};
  const limit = (limiter: RateLimiter | undefined, key: (ctx: Context) => string | undefined): Middleware[] =>
    limiter === undefined ? [] : [rateLimit({ limiter, key })];
  const uploadLimit = limit(limits.upload, requesterKey);
  const downloadLimit = limit(limits.download, requesterKey);
  const legacyDownloadLimit = limit(limits.download, clientIpKey);

  const client = new Router({ prefix: '/_matrix/client/v1/media', methods: ALL_METHODS });
  client.get('/config', authenticate, config);
  client.get('/download/:serverName/:mediaId', authenticate, ...downloadLimit, authenticatedDownload);
  client.get('/download/:serverName/:mediaId/:fileName', authenticate, ...downloadLimit, authenticatedDownload);
  const previewUrl = options.preview === undefined ? undefined : createPreviewUrlHandler(options.preview);
  if (previewUrl) client.get('/preview_url', authenticate, previewUrl);

  const legacy = new Router({ methods: ALL_METHODS });
  for (const version of legacyVersions) {
    const prefix = `/_matrix/media/${version}`;
    legacy.post(`${prefix}/upload`, authenticate, ...uploadLimit, upload);
    legacy.get(`${prefix}/config`, authenticate, config);
    legacy.get(`${prefix}/download/:serverName/:mediaId`, ...legacyDownloadLimit, legacyDownload);
    legacy.get(`${prefix}/download/:serverName/:mediaId/:fileName`, ...legacyDownloadLimit, legacyDownload);
    // Deprecated but still authenticated (it answers JSON, so the freeze does not apply; digest §6.1).
    if (previewUrl) legacy.get(`${prefix}/preview_url`, authenticate, previewUrl);
  }
  if (options.asyncUploads !== false) {
    addAsyncUploadRoutes(legacy, {
      media,
      authenticate,
      beforeCreate: limit(limits.create, requesterKey),
      beforeUpload: uploadLimit,
    });
  }
  addThumbnailRoutes(client, legacy, {
    media,
    thumbnails: options.thumbnails,
    authenticate,
    legacyVersions,
    maxAgeSeconds: maxAge,
    clientBefore: downloadLimit,
    legacyBefore: legacyDownloadLimit,
  });
  return { client, legacy };
}

/** Options for {@link mountMediaRoutes}. */
export interface MountMediaRoutesOptions extends MediaRoutersOptions {
  /** Where unexpected errors are logged. */
  readonly logger?: ErrorLogger;
  /** More routers (e.g. health, versions) mounted before the `M_UNRECOGNIZED` catch-all. */
  readonly routers?: readonly Router[];
  /**
   * Serve our media over federation (`/_matrix/federation/v1/media/*`, see
   * {@link createFederationMediaRouter}) with this X-Matrix authentication.
   */
  readonly federation?: Omit<FederationMediaRouterOptions, 'media'>;
}

/** What {@link mountMediaRoutes} mounted. */
export interface MountedMediaRouters extends MediaRouters {
  /** Present when `options.federation` was given. */
  readonly federation: Router | undefined;
}

/**
 * Installs a complete media front on a Koa app, in order: Matrix JSON errors,
 * CORS (OPTIONS answered without endpoint logic), media security headers,
 * the client and legacy routers (405 `M_UNRECOGNIZED` for wrong methods),
 * the federation router (when `options.federation` is set), `options.routers`, then the 404 `M_UNRECOGNIZED` catch-all. Call it after
 * any other `app.use`, since the catch-all answers everything left.
 *
 * @example
 * ```ts
 * const app = new Koa();
 * mountMediaRoutes(app, { media, authenticate: createClientAuth({ verifier }) });
 * app.listen(8008);
 * ```
 */
export function mountMediaRoutes(app: Koa, options: MountMediaRoutesOptions): MountedMediaRouters {
  const routers = createMediaRouters(options);
  const federation =
    options.federation === undefined
      ? undefined
      : createFederationMediaRouter({
          ...(options.thumbnails === undefined ? {} : { thumbnails: federationThumbnailProvider(options.thumbnails) }),
          ...options.federation,
          media: options.media,
          ...maxAgeOf(options),
        });
  app.use(matrixErrors(options.logger === undefined ? {} : { logger: options.logger }));
  app.use(matrixCors());
  app.use(mediaSecurityHeaders());
  for (const router of [routers.client, routers.legacy, ...(federation ? [federation] : []), ...(options.routers ?? [])]) {
    app.use(router.routes());
    app.use(router.allowedMethods(allowedMethodsOptions));
  }
  app.use(unrecognized());
  return { ...routers, federation };
}

function maxAgeOf(options: MountMediaRoutesOptions): { maxAgeSeconds?: number } {
  return options.maxAgeSeconds === undefined ? {} : { maxAgeSeconds: options.maxAgeSeconds };
}
