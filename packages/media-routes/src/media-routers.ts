import { allowedMethodsOptions, matrixCors, matrixErrors, unrecognized, type ErrorLogger } from '@hsmedia/koa-matrix';
import type { MediaHandle, MediaService, RateLimiter, ThumbnailService } from '@hsmedia/media-core';
import { Router } from '@koa/router';
import type Koa from 'koa';
import type { Context, Middleware } from 'koa';
import { addAsyncUploadRoutes } from './async-upload-routes.js';
import { createFederationMediaRouter, type FederationMediaRouterOptions } from './federation-router.js';
import { fileNameParam, lookupQuery, type LookupQuery } from './internal/query-params.js';
import { gatedRoutes } from './internal/router-gate.js';
import { withUploadRequest } from './internal/upload-request.js';
import { mediaSecurityHeaders } from './media-headers.js';
import { createPreviewUrlHandler, type PreviewUrlOptions } from './preview-routes.js';
import { byteRateLimit, clientIpKey, rateLimit, requesterKey, type ByteCharge } from './rate-limit.js';
import {
  ALL_METHODS,
  accessRequestOf,
  clientLookup,
  memberOf,
  requesterOf,
  type MediaContext,
  type MediaHandler,
  type MediaPathParams,
  type MediaRouteState,
} from './route-context.js';
import { sendMedia, type SendMediaOptions } from './send-media.js';
import { accelMedia, type MediaAccel } from './accel-media.js';
import { allowsRedirect, redirectBlobOf, redirectMedia, type MediaRedirect } from './redirect-media.js';
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
   * previews are disabled.
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
  /**
   * Redirect delivery of downloads and thumbnails: client answers are `307`
   * to the direct URL this gives (after every check), legacy ones only with
   * `allow_redirect=true`; federation answers carry a `Location` part (see
   * {@link mountMediaRoutes}). Without it every byte goes through the server.
   */
  readonly redirect?: MediaRedirect;
  /**
   * `X-Accel-Redirect` delivery of downloads and thumbnails (client and
   * legacy): after every check, the answer names the blob's file for the
   * reverse proxy to send. Federation answers are still sent from here (their
   * multipart framing is ours).
   */
  readonly accel?: MediaAccel;
}

/** The rate limiters {@link createMediaRouters} applies; each is optional. */
export interface MediaRateLimits {
  /** `POST /upload` and `PUT /upload/{serverName}/{mediaId}`. */
  readonly upload?: RateLimiter;
  /** Downloads (authenticated per user; legacy per IP). */
  readonly download?: RateLimiter;
  /** `POST /_matrix/media/v1/create`. */
  readonly create?: RateLimiter;
  /**
   * Bytes of client downloads and thumbnails, per user: each answer costs the
   * bytes it sends (a range its length), paid before any media header (see
   * `byteRateLimit`). Its tokens are bytes.
   */
  readonly downloadBytes?: RateLimiter;
  /** Bytes of the unauthenticated legacy downloads and thumbnails, per client IP (`ctx.ip`). */
  readonly legacyDownloadBytes?: RateLimiter;
}

/** The routers {@link createMediaRouters} builds. */
export interface MediaRouters {
  /** `/_matrix/client/v1/media/{config,download}` (authenticated, spec v1.11). */
  readonly client: Router;
  /** `/_matrix/media/<v3|r0|v1>/{upload,download,config}` (upload; deprecated download and config). */
  readonly legacy: Router;
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
  const { media, authenticate, redirect, accel } = options;
  const maxAge = options.maxAgeSeconds ?? 86_400;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) throw new TypeError('createMediaRouters: maxAgeSeconds must be >= 0');
  const legacyVersions = options.legacyVersions ?? ['v3', 'r0', 'v1'];
  for (const version of legacyVersions) {
    if (!/^[a-z0-9]+$/.test(version)) throw new TypeError(`createMediaRouters: bad legacy version ${version}`);
  }
  // Authenticated media must never sit in a shared cache (MSC3916); legacy media was public anyway.
  const privateCache = `private, max-age=${maxAge}`;
  const publicCache = `public, max-age=${maxAge}`;

  const limits = options.rateLimits ?? {};
  const bytesOf = (limiter: RateLimiter | undefined, key: (ctx: Context) => string | undefined): { chargeBytes?: ByteCharge } =>
    limiter === undefined ? {} : { chargeBytes: byteRateLimit({ limiter, key }) };
  const clientBytes = bytesOf(limits.downloadBytes, requesterKey);
  const legacyBytes = bytesOf(limits.legacyDownloadBytes, clientIpKey);

  // Shared by every answer without a `/{fileName}` (no per-request options object on the hot path).
  const privateSend: SendMediaOptions = { cacheControl: privateCache, ...clientBytes };
  const publicSend: SendMediaOptions = { cacheControl: publicCache, ...legacyBytes };

  const config: MediaHandler = (ctx) => {
    memberOf(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = media.uploadConfig();
  };

  const downloadFrom = (legacyRoute: boolean): MediaHandler<MediaPathParams> => {
    const send = legacyRoute ? publicSend : privateSend;
    const direct = accel === undefined && redirect === undefined;
    const answer = async (
      ctx: MediaContext<MediaPathParams>,
      query: LookupQuery,
      options: SendMediaOptions,
      known: Promise<MediaHandle> | MediaHandle | undefined,
    ): Promise<void> => {
      const handle = await (known ?? media.getMedia(ctx.params.serverName, ctx.params.mediaId, clientLookup(ctx, legacyRoute, query)));
      if (accel !== undefined && (await accelMedia(ctx, handle, redirectBlobOf(handle), accel, options))) return;
      if (redirect !== undefined && (!legacyRoute || allowsRedirect(ctx.querystring))) {
        if (await redirectMedia(ctx, handle, redirectBlobOf(handle), redirect, options)) return;
      }
      await sendMedia(ctx, handle, options);
    };
    return (ctx) => {
      // The authenticate middleware guarantees a requester on the client route; refuse rather than run without.
      if (!legacyRoute) requesterOf(ctx);
      const fileName = fileNameParam(ctx.params.fileName);
      const query = lookupQuery(ctx.querystring, legacyRoute);
      const options = fileName === undefined ? send : { ...send, fileName };
      // A cached record: no lookup options, no await before sending.
      const known = media.cachedMedia(ctx.params.serverName, ctx.params.mediaId, accessRequestOf(ctx, legacyRoute));
      if (direct && known !== undefined && !(known instanceof Promise)) return sendMedia(ctx, known, options);
      return answer(ctx, query, options, known);
    };
  };

  const clientDownload = downloadFrom(false);
  const legacyDownload = downloadFrom(true);

  const upload: MediaHandler = async (ctx) => {
    const { contentUri } = await withUploadRequest(ctx, (request) => media.upload(request));
    ctx.body = { content_uri: contentUri };
  };

  const limit = (limiter: RateLimiter | undefined, key: (ctx: Context) => string | undefined): Middleware[] =>
    limiter === undefined ? [] : [rateLimit({ limiter, key })];
  const uploadLimit = limit(limits.upload, requesterKey);
  const downloadLimit = limit(limits.download, requesterKey);
  const legacyDownloadLimit = limit(limits.download, clientIpKey);

  const client = new Router<MediaRouteState>({ prefix: '/_matrix/client/v1/media', methods: ALL_METHODS });
  client.get('/config', authenticate, config);
  client.get('/download/:serverName/:mediaId', authenticate, ...downloadLimit, clientDownload);
  client.get('/download/:serverName/:mediaId/:fileName', authenticate, ...downloadLimit, clientDownload);
  const previewUrl = options.preview === undefined ? undefined : createPreviewUrlHandler(options.preview);
  if (previewUrl) client.get('/preview_url', authenticate, previewUrl);

  const legacy = new Router<MediaRouteState>({ methods: ALL_METHODS });
  for (const version of legacyVersions) {
    const prefix = `/_matrix/media/${version}`;
    legacy.post(`${prefix}/upload`, authenticate, ...uploadLimit, upload);
    legacy.get(`${prefix}/config`, authenticate, config);
    legacy.get(`${prefix}/download/:serverName/:mediaId`, ...legacyDownloadLimit, legacyDownload);
    legacy.get(`${prefix}/download/:serverName/:mediaId/:fileName`, ...legacyDownloadLimit, legacyDownload);
    // Deprecated but still authenticated; it answers JSON, so the freeze does not apply
    // (https://spec.matrix.org/v1.12/client-server-api/#get_matrixmediav3preview_url).
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
    clientSend: privateSend,
    legacySend: publicSend,
    ...(redirect === undefined ? {} : { redirect }),
    ...(accel === undefined ? {} : { accel }),
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
          ...(options.redirect === undefined ? {} : { redirect: options.redirect }),
          ...options.federation,
          media: options.media,
          ...maxAgeOf(options),
        });
  app.use(matrixErrors(options.logger === undefined ? {} : { logger: options.logger }));
  app.use(matrixCors());
  app.use(mediaSecurityHeaders());
  for (const router of [routers.client, routers.legacy, ...(federation ? [federation] : []), ...(options.routers ?? [])]) {
    // Gated by the routers' shared path prefix: a federation request does not run the client and legacy matchers.
    app.use(gatedRoutes(router));
    app.use(router.allowedMethods(allowedMethodsOptions));
  }
  app.use(unrecognized());
  return { ...routers, federation };
}

function maxAgeOf(options: MountMediaRoutesOptions): { maxAgeSeconds?: number } {
  return options.maxAgeSeconds === undefined ? {} : { maxAgeSeconds: options.maxAgeSeconds };
}
