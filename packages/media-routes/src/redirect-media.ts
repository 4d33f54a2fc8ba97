import { contentDispositionFor, type MediaHandle } from '@hsmedia/media-core';
import type { Context } from 'koa';
import { chargeBeforeSend, type SendMediaOptions } from './send-media.js';

/** What a direct URL must make the storage answer carry, for {@link MediaRedirect.directUrl}. */
export interface DirectUrlTarget {
  readonly blobId: string;
  /** As this server would send it. */
  readonly contentType: string;
  /** As this server would send it: `attachment` for types that are not inline-safe. */
  readonly contentDisposition: string;
}

/**
 * Redirect delivery (`307` to storage), e.g. a presigned object-store URL
 * from `BlobStore.directUrl`. `directUrl` gives null to serve through the
 * server instead.
 */
export interface MediaRedirect {
  directUrl(target: DirectUrlTarget): Promise<string | null>;
}

/** What a redirect needs of a media item or a thumbnail (a media-core `MediaHandle` or `ThumbnailHandle`). */
export type RedirectableMedia = Pick<MediaHandle, 'size' | 'contentType' | 'contentDisposition' | 'discard'> & {
  /** True while the bytes are still arriving (never redirected); absent means stored. */
  readonly live?: boolean;
};

/**
 * The blob a redirect may point at: the thumbnail's own blob for a thumbnail
 * handle, the media's for a media handle; null while the bytes are still
 * arriving (a live handle has no blob yet).
 */
export function redirectBlobOf(handle: Pick<MediaHandle, 'record' | 'live'> & { readonly thumbnail?: { readonly blobId: string } }): string | null {
  if (handle.live) return null;
  return handle.thumbnail?.blobId ?? handle.record.blobId;
}

/**
 * The direct URL of a GET that may be redirected, after charging its bytes;
 * null when the answer must come from this server: not a GET, live (still
 * arriving) media, a conditional request (a 304 is cheaper here), or no URL
 * from `redirect`. Runs after the lookup (access token, policy, quarantine,
 * scan verdict and freeze checks), so a URL is never issued for media the
 * caller may not read, and charges the byte budget first, so a redirect is
 * never a way around it.
 */
export async function directUrlFor(
  ctx: Context,
  handle: RedirectableMedia,
  blobId: string | null,
  redirect: MediaRedirect,
  options: Pick<SendMediaOptions, 'fileName' | 'chargeBytes'> & { readonly contentDisposition?: string },
): Promise<string | null> {
  if (ctx.method !== 'GET' || handle.live === true || blobId === null || handle.size === null) return null;
  if (ctx.get('If-None-Match') !== '' || ctx.get('If-Modified-Since') !== '') return null;
  const contentDisposition =
    options.contentDisposition ??
    (options.fileName === undefined ? handle.contentDisposition : contentDispositionFor(handle.contentType, options.fileName));
  await chargeBeforeSend(ctx, handle, handle.size, options.chargeBytes);
  const url = await redirect.directUrl({ blobId, contentType: handle.contentType, contentDisposition });
  if (url !== null) handle.discard();
  return url;
}

/**
 * Answers a GET download or thumbnail with `307 Temporary Redirect` to a
 * direct URL when one is available (see {@link directUrlFor}), and says
 * whether it did. `Cache-Control: no-store`: the URL expires.
 */
export async function redirectMedia(
  ctx: Context,
  handle: RedirectableMedia,
  blobId: string | null,
  redirect: MediaRedirect,
  options: SendMediaOptions,
): Promise<boolean> {
  const url = await directUrlFor(ctx, handle, blobId, redirect, options);
  if (url === null) return false;
  ctx.status = 307;
  ctx.set('Location', url);
  ctx.set('Cache-Control', 'no-store');
  return true;
}

/** `allow_redirect=true` on a legacy download (spec v1.7+: the client follows redirects); anything else means no. */
export function allowsRedirect(querystring: string): boolean {
  return new URLSearchParams(querystring).get('allow_redirect') === 'true';
}
