/**
 * `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}`
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid),
 * the deprecated `/_matrix/media/<v3|r0|v1>/thumbnail/...` and the
 * federation thumbnail provider. Handlers only parse the request and send;
 * every rule lives in media-core's `ThumbnailService` (which gets its image
 * code injected), so this package depends on no image library.
 */
import { errors } from '@hsmedia/errors';
import type { MediaService, ThumbnailHandle, ThumbnailService } from '@hsmedia/media-core';
import type { Router } from '@koa/router';
import type { Middleware } from 'koa';
import type { FederationThumbnailProvider } from './federation-router.js';
import { lookupQuery, thumbnailQueryParser, type ThumbnailQuery } from './internal/query-params.js';
import { accelMedia, type MediaAccel } from './accel-media.js';
import { allowsRedirect, redirectBlobOf, redirectMedia, type MediaRedirect } from './redirect-media.js';
import { accessRequestOf, clientLookup, type MediaContext, type MediaHandler, type MediaPathParams } from './route-context.js';
import { sendMedia, type SendMediaOptions } from './send-media.js';

/** Options of {@link addThumbnailRoutes}. */
export interface ThumbnailRoutesOptions {
  readonly media: MediaService;
  /** Without it, thumbnails of existing media answer 400 `M_UNKNOWN` "Cannot generate thumbnails". */
  readonly thumbnails: ThumbnailService | undefined;
  /** Client authentication: runs first on the authenticated route, before any parameter is looked at. */
  readonly authenticate: Middleware;
  readonly legacyVersions: readonly string[];
  readonly maxAgeSeconds: number;
  /** Middleware run after authentication on the client route (e.g. the download rate limit). */
  readonly clientBefore?: readonly Middleware[];
  /** Middleware run first on the legacy routes (e.g. the per-IP download rate limit). */
  readonly legacyBefore?: readonly Middleware[];
  /** How client thumbnails are sent (e.g. with the per-user byte budget); default private caching of `maxAgeSeconds`. */
  readonly clientSend?: SendMediaOptions;
  /** How legacy thumbnails are sent (e.g. with the per-IP byte budget); default public caching of `maxAgeSeconds`. */
  readonly legacySend?: SendMediaOptions;
  /** Redirect delivery: client thumbnails answer `307` to its URL; legacy ones only with `allow_redirect=true`. */
  readonly redirect?: MediaRedirect;
  /** `X-Accel-Redirect` delivery of client and legacy thumbnails. */
  readonly accel?: MediaAccel;
}

/**
 * Adds the thumbnail routes to the client router (prefix
 * `/_matrix/client/v1/media`) and the legacy router (one route per legacy
 * version). Responses are the thumbnail's real Content-Type,
 * `Content-Disposition: inline; filename=thumbnail.<ext>`, the media
 * security headers, a strong ETag with 304, as downloads.
 *
 * Errors: 401 before anything else (client route); 400 `M_MISSING_PARAM` /
 * `M_INVALID_PARAM` for `width`, `height`, `method`, `animated`,
 * `timeout_ms`; 404 `M_NOT_FOUND` (unknown, quarantined, or stored while the
 * legacy endpoints were frozen, on a legacy route); 400 `M_UNKNOWN` for
 * content that cannot be thumbnailed; 413 (502 remote) `M_TOO_LARGE`.
 */
export function addThumbnailRoutes(client: Router, legacy: Router, options: ThumbnailRoutesOptions): void {
  const { media, thumbnails, authenticate, redirect, accel } = options;
  // Shared by every answer (no per-request options object).
  const privateSend: SendMediaOptions = options.clientSend ?? { cacheControl: `private, max-age=${options.maxAgeSeconds}` };
  const publicSend: SendMediaOptions = options.legacySend ?? { cacheControl: `public, max-age=${options.maxAgeSeconds}` };

  const handler = (legacyRoute: boolean): MediaHandler<MediaPathParams> => {
    if (thumbnails === undefined) {
      return async (ctx) => {
        // Thumbnails are off: the media still has to exist for the answer to be "cannot thumbnail".
        const lookup = clientLookup(ctx, legacyRoute, lookupQuery(ctx.querystring, legacyRoute));
        const handle = await media.getMedia(ctx.params.serverName, ctx.params.mediaId, { ...lookup, allowLive: false });
        handle.discard();
        throw errors.cannotThumbnail();
      };
    }
    const parseQuery = thumbnailQueryParser(legacyRoute, thumbnails);
    const send = legacyRoute ? publicSend : privateSend;
    const direct = accel === undefined && redirect === undefined;
    const answer = async (ctx: MediaContext<MediaPathParams>, query: ThumbnailQuery, known: Promise<ThumbnailHandle> | ThumbnailHandle | undefined): Promise<void> => {
      const handle = await (known ?? thumbnails.getThumbnail(ctx.params.serverName, ctx.params.mediaId, query.spec, clientLookup(ctx, legacyRoute, query)));
      if (accel !== undefined && (await accelMedia(ctx, handle, redirectBlobOf(handle), accel, send))) return;
      if (redirect !== undefined && (!legacyRoute || allowsRedirect(ctx.querystring))) {
        if (await redirectMedia(ctx, handle, redirectBlobOf(handle), redirect, send)) return;
      }
      await sendMedia(ctx, handle, send);
    };
    return (ctx) => {
      const query = parseQuery(ctx.querystring);
      // A thumbnail answered before from memory: no lookup options, no await before sending.
      const known = thumbnails.cachedThumbnail(ctx.params.serverName, ctx.params.mediaId, query.spec, accessRequestOf(ctx, legacyRoute));
      if (direct && known !== undefined && !(known instanceof Promise)) return sendMedia(ctx, known, send);
      return answer(ctx, query, known);
    };
  };

  client.get('/thumbnail/:serverName/:mediaId', authenticate, ...(options.clientBefore ?? []), handler(false));
  for (const version of options.legacyVersions) {
    // Deprecated and unauthenticated: under the freeze, media stored while frozen is 404 here
    // (https://spec.matrix.org/v1.12/client-server-api/#content-repo-client-behaviour).
    legacy.get(`/_matrix/media/${version}/thumbnail/:serverName/:mediaId`, ...(options.legacyBefore ?? []), handler(true));
  }
}

/**
 * The federation router's thumbnail seam (`FederationMediaRouterOptions.thumbnails`)
 * over a {@link ThumbnailService}: the same stored thumbnail, hence the same
 * bytes, as the client endpoint gives for the same parameters, served
 * (streamed, or from memory when small) like a download.
 */
export function federationThumbnailProvider(thumbnails: ThumbnailService): FederationThumbnailProvider {
  return ({ media, query, signal }) => thumbnails.thumbnailFor(media.record, thumbnails.parseRequest(query), { signal });
}
