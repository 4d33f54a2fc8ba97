import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import { contentDispositionFor, type MediaHandle, type MediaService } from '@hsmedia/media-core';
import { encodeMultipart } from '@hsmedia/multipart';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { METHODS } from 'node:http';
import { ifNoneMatchMatches } from './http-range.js';
import { MEDIA_SECURITY_HEADERS } from './media-headers.js';

/** A thumbnail as the federation thumbnail endpoint sends it. */
export interface FederationThumbnail {
  /** The thumbnail's real type (image/jpeg, image/png, ...). */
  readonly contentType: string;
  readonly bytes: Uint8Array;
  /** Strong entity tag (quoted), for `If-None-Match`; optional. */
  readonly etag?: string;
}

/** A thumbnail request on `/_matrix/federation/v1/media/thumbnail/{mediaId}`. */
export interface FederationThumbnailRequest {
  /** Our own media ID (already checked to be local and stored). */
  readonly media: MediaHandle;
  /** The raw query (`width`, `height`, `method`, `animated`, `timeout_ms`), validated by the provider. */
  readonly query: URLSearchParams;
  readonly signal: AbortSignal;
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
   * package depends on no signing code). Must throw for unauthenticated requests.
   */
  readonly authenticate: Middleware;
  /** Thumbnails for `/thumbnail/{mediaId}`; without it that endpoint answers 400 `M_UNKNOWN`. */
  readonly thumbnails?: FederationThumbnailProvider;
  /** Cache-Control max-age of served media, in seconds. Default 86 400. */
  readonly maxAgeSeconds?: number;
}

const ALL_METHODS: string[] = [...METHODS];

function timeoutMsOf(ctx: Context): number | undefined {
  const values = new URLSearchParams(ctx.querystring).getAll('timeout_ms');
  if (values.length > 1) throw errors.invalidParam('Query parameter timeout_ms given more than once');
  const raw = values[0];
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw errors.invalidParam('timeout_ms must be a non-negative integer');
  return Number(raw);
}

/** A stream that opens the media only when first read (HEAD never opens it). */
function lazyContent(handle: MediaHandle, signal: AbortSignal): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (reader === undefined) {
          const small = await handle.readSmall(signal);
          if (small !== null) {
            if (small.byteLength > 0) controller.enqueue(small);
            controller.close();
            return;
          }
          reader = (await handle.open(undefined, signal)).getReader();
        }
        const next = await reader.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel(reason) {
        if (reader !== undefined) await reader.cancel(reason);
        else handle.discard();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Writes a `multipart/mixed` federation media response (spec §3.3): `{}` metadata, then the bytes. */
function sendMultipart(
  ctx: Context,
  content: { stream: ReadableStream<Uint8Array>; contentType: string; contentDisposition: string; contentLength?: number },
  etag: string | undefined,
  cacheControl: string,
  signal: AbortSignal,
): void {
  const encoded = encodeMultipart({ content, signal });
  ctx.set(MEDIA_SECURITY_HEADERS);
  ctx.set('Cache-Control', cacheControl);
  if (etag !== undefined) ctx.set('ETag', etag);
  ctx.status = 200;
  ctx.type = encoded.contentType;
  if (ctx.method !== 'GET') {
    if (encoded.contentLength !== undefined) ctx.length = encoded.contentLength;
    void encoded.body.cancel().catch(() => undefined);
    return;
  }
  ctx.body = encoded.body;
  if (encoded.contentLength !== undefined) ctx.length = encoded.contentLength;
}

/**
 * The federation media endpoints of spec v1.11 (MSC3916), for other servers
 * fetching *our* media:
 *
 * - `GET /_matrix/federation/v1/media/download/{mediaId}`: `multipart/mixed`
 *   with `{}` metadata and the bytes, streamed, with the stored Content-Type
 *   verbatim and the Content-Disposition the client API would send (file
 *   name included). Strong ETag and 304. `timeout_ms` waits for an async
 *   upload. Only local media: cached remote media is 404 `M_NOT_FOUND`.
 * - `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`: the same framing
 *   around a thumbnail from `options.thumbnails`; without a provider, 400
 *   `M_UNKNOWN` "Cannot generate thumbnails" (for media that exists).
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
  const { media, authenticate, thumbnails } = options;
  const maxAge = options.maxAgeSeconds ?? 86_400;
  if (!Number.isSafeInteger(maxAge) || maxAge < 0) {
    throw new TypeError('createFederationMediaRouter: maxAgeSeconds must be >= 0');
  }
  const cacheControl = `private, max-age=${maxAge}`;

  const localMedia = async (ctx: Context, signal: AbortSignal): Promise<MediaHandle> => {
    const mediaId = (ctx as Context & { params: Record<string, string> }).params['mediaId']!;
    const timeoutMs = timeoutMsOf(ctx);
    return media.getMedia(media.serverName, mediaId, {
      localOnly: true,
      signal,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
  };

  const download: Middleware = async (ctx) => {
    const signal = abortSignalFor(ctx);
    const handle = await localMedia(ctx, signal);
    // Local media is always stored, so it has its entity tag; a live handle cannot happen here.
    const etag = handle.etag ?? undefined;
    if (etag !== undefined && ifNoneMatchMatches(ctx.get('If-None-Match') || undefined, etag)) {
      ctx.set(MEDIA_SECURITY_HEADERS);
      ctx.set('Cache-Control', cacheControl);
      ctx.set('ETag', etag);
      ctx.status = 304;
      handle.discard();
      return;
    }
    sendMultipart(
      ctx,
      {
        stream: lazyContent(handle, signal),
        contentType: handle.contentType,
        contentDisposition: contentDispositionFor(handle.contentType, handle.uploadName),
        ...(handle.size === null ? {} : { contentLength: handle.size }),
      },
      etag,
      cacheControl,
      signal,
    );
  };

  const thumbnail: Middleware = async (ctx) => {
    const signal = abortSignalFor(ctx);
    const handle = await localMedia(ctx, signal);
    handle.discard();
    if (thumbnails === undefined) {
      throw new MatrixError(ErrCode.UNKNOWN, 'Cannot generate thumbnails', { httpStatus: 400 });
    }
    const thumb = await thumbnails({ media: handle, query: new URLSearchParams(ctx.querystring), signal });
    if (thumb.etag !== undefined && ifNoneMatchMatches(ctx.get('If-None-Match') || undefined, thumb.etag)) {
      ctx.set(MEDIA_SECURITY_HEADERS);
      ctx.set('Cache-Control', cacheControl);
      ctx.set('ETag', thumb.etag);
      ctx.status = 304;
      return;
    }
    const bytes = thumb.bytes;
    sendMultipart(
      ctx,
      {
        stream: new ReadableStream<Uint8Array>({
          start(controller) {
            if (bytes.byteLength > 0) controller.enqueue(bytes);
            controller.close();
          },
        }),
        contentType: thumb.contentType,
        contentDisposition: contentDispositionFor(thumb.contentType, null),
        contentLength: bytes.byteLength,
      },
      thumb.etag,
      cacheControl,
      signal,
    );
  };

  const router = new Router({ prefix: '/_matrix/federation/v1/media', methods: ALL_METHODS });
  router.get('/download/:mediaId', authenticate, download);
  router.get('/thumbnail/:mediaId', authenticate, thumbnail);
  return router;
}
