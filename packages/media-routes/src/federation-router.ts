import { errors } from '@hsmedia/errors';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import { contentDispositionFor, type MediaHandle, type MediaService, type RateLimiter } from '@hsmedia/media-core';
import type { SignalSource } from '@hsmedia/runtime';
import { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { nonNegativeIntParam } from './internal/query-params.js';
import { sendMultipartLocation, sendMultipartMedia } from './internal/send-multipart.js';
import { directUrlFor, redirectBlobOf, type MediaRedirect, type RedirectableMedia } from './redirect-media.js';
import {
  ALL_METHODS,
  federationLookup,
  type MediaContext,
  type MediaHandler,
  type MediaRouteState,
} from './route-context.js';
import { byteRateLimit, originKey, type ByteCharge } from './rate-limit.js';
import type { SendableMedia } from './send-media.js';

/**
 * A thumbnail as the federation thumbnail endpoint sends it: a media-core
 * `ThumbnailHandle` (what `ThumbnailService.thumbnailFor` gives), or
 * anything that serves its bytes the same way. Streamed like a download;
 * from memory when small.
 */
export type FederationThumbnail = SendableMedia;

/** The thumbnail's own blob, when the provider gave a media-core `ThumbnailHandle` (the only kind that may be redirected). */
function thumbnailBlobOf(thumb: FederationThumbnail): string | null {
  const stored = (thumb as { readonly thumbnail?: { readonly blobId?: unknown } }).thumbnail;
  return typeof stored?.blobId === 'string' ? stored.blobId : null;
}

/** A thumbnail request on `/_matrix/federation/v1/media/thumbnail/{mediaId}`. */
export interface FederationThumbnailRequest {
  /** Our own media (already checked to be local and stored). */
  readonly media: MediaHandle;
  /** The raw query (`width`, `height`, `method`, `animated`, `timeout_ms`), validated by the provider. */
  readonly query: URLSearchParams;
  /** The verified origin server asking (`ctx.state.origin`), for an access policy. */
  readonly origin: string | undefined;
  /** Aborts when the peer goes away: a signal, or a function that makes one when a wait needs it. */
  readonly signal: SignalSource;
}

/**
 * The seam the thumbnail work fills: the same thumbnail the client
 * endpoint gives for the same parameters. Throws `MatrixError` for bad
 * parameters or media that cannot be thumbnailed.
 */
export type FederationThumbnailProvider = (request: FederationThumbnailRequest) => Promise<FederationThumbnail>;

/** Options for {@link createFederationMediaRouter}. */
export interface FederationMediaRouterOptions {
  readonly media: MediaService;
  /**
   * Request authentication, run first on every route: normally
   * `createXMatrixAuth(...)` from `@hsmedia/xmatrix-auth` (injected, so this
   * package depends on no signing code). Must throw for unauthenticated
   * requests, and sets `ctx.state.origin` (passed on to the lookups).
   */
  readonly authenticate: Middleware;
  /** Thumbnails for `/thumbnail/{mediaId}`; without it that endpoint answers 400 `M_UNKNOWN`. */
  readonly thumbnails?: FederationThumbnailProvider;
  /** Cache-Control max-age of served media, in seconds. Default 86 400. */
  readonly maxAgeSeconds?: number;
  /**
   * Bytes of downloads and thumbnails per verified origin server
   * (`ctx.state.origin`, so a forged header spends no other server's budget):
   * each answer costs its content's size, paid before any media header (429
   * `M_LIMIT_EXCEEDED` with `retry_after_ms` otherwise). Its tokens are bytes.
   */
  readonly downloadBytes?: RateLimiter;
  /**
   * Redirect delivery: downloads and thumbnails answer with a `Location`
   * part naming the direct URL this gives (after every check and the byte
   * budget), instead of the bytes. Without it the bytes are always inline.
   */
  readonly redirect?: MediaRedirect;
}

/**
 * The federation media endpoints
 * (https://spec.matrix.org/v1.12/server-server-api/#content-repository), for
 * other servers fetching *our* media:
 *
 * - `GET /_matrix/federation/v1/media/download/{mediaId}`: `multipart/mixed`
 *   with `{}` metadata and the bytes, with the stored Content-Type verbatim
 *   and the Content-Disposition the client API would send (file name
 *   included). Strong ETag and 304; small media from memory, the rest
 *   streamed. `timeout_ms` waits for an async upload. Only local media:
 *   cached remote media is 404 `M_NOT_FOUND`.
 * - `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`: the same framing
 *   around a thumbnail from `options.thumbnails`, streamed the same way;
 *   without a provider, 400 `M_UNKNOWN` "Cannot generate thumbnails" (for
 *   media that exists).
 *
 * Authentication (`options.authenticate`) runs before anything else.
 *
 * @example
 * ```ts
 * const federation = createFederationMediaRouter({ media, authenticate: createXMatrixAuth({ serverName, keyRing }) });
 * mountMediaRoutes(app, { media, authenticate: clientAuth, routers: [federation] });
 * ```
 */
export function createFederationMediaRouter(options: FederationMediaRouterOptions): Router {
  const { media, authenticate, thumbnails, redirect } = options;
  const maxAge = options.maxAgeSeconds ?? 86_400;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) {
    throw new TypeError('createFederationMediaRouter: maxAgeSeconds must be >= 0');
  }
  const cacheControl = `private, max-age=${maxAge}`;
  const chargeBytes =
    options.downloadBytes === undefined ? undefined : byteRateLimit({ limiter: options.downloadBytes, key: originKey });

  const localMedia = (ctx: MediaContext<{ mediaId: string }>, query: URLSearchParams): Promise<MediaHandle> =>
    media.getMedia(media.serverName, ctx.params.mediaId, federationLookup(ctx, nonNegativeIntParam(query, 'timeout_ms')));

  const download: MediaHandler<{ mediaId: string }> = async (ctx) => {
    const handle = await localMedia(ctx, new URLSearchParams(ctx.querystring));
    const send = { cacheControl, contentDisposition: handle.contentDisposition, chargeBytes };
    if (await locationAnswer(ctx, handle, redirectBlobOf(handle), send)) return;
    await sendMultipartMedia(ctx, handle, send);
  };

  const thumbnail: MediaHandler<{ mediaId: string }> = async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    const handle = await localMedia(ctx, query);
    handle.discard();
    if (thumbnails === undefined) throw errors.cannotThumbnail('Cannot generate thumbnails');
    const thumb = await thumbnails({ media: handle, query, origin: ctx.state.origin, signal: () => abortSignalFor(ctx) });
    const send = {
      cacheControl,
      chargeBytes,
      // The part names no file, as it always has (the client endpoint says `thumbnail.<ext>`).
      contentDisposition: contentDispositionFor(thumb.contentType, null),
    };
    if (await locationAnswer(ctx, thumb, thumbnailBlobOf(thumb), send)) return;
    await sendMultipartMedia(ctx, thumb, send);
  };

  /** A `Location` part instead of the bytes, when the redirect gives a URL; says whether it answered. */
  const locationAnswer = async (
    ctx: MediaContext<{ mediaId: string }>,
    item: RedirectableMedia,
    blobId: string | null,
    send: { readonly contentDisposition: string; readonly chargeBytes: ByteCharge | undefined },
  ): Promise<boolean> => {
    if (redirect === undefined) return false;
    const url = await directUrlFor(ctx, item, blobId, redirect, send);
    if (url === null) return false;
    await sendMultipartLocation(ctx, url);
    return true;
  };

  const router = new Router<MediaRouteState>({ prefix: '/_matrix/federation/v1/media', methods: ALL_METHODS });
  router.get('/download/:mediaId', authenticate, download);
  router.get('/thumbnail/:mediaId', authenticate, thumbnail);
  return router;
}
