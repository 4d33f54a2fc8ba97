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

/**
 * Answers a GET download with `307 Temporary Redirect` to a direct URL when
 * one is available, and says whether it did. Runs after `getMedia` (access
 * token, policy, quarantine and freeze checks) and charges the byte budget
 * first, so a redirect is never a way around either. Live (still arriving)
 * media, HEAD and conditional requests (a 304 is cheaper here) are served
 * as usual. `Cache-Control: no-store`: the URL expires.
 */
export async function redirectMedia(
  ctx: Context,
  handle: Pick<MediaHandle, 'record' | 'live' | 'size' | 'contentType' | 'contentDisposition' | 'discard'>,
  redirect: MediaRedirect,
  options: SendMediaOptions,
): Promise<boolean> {
  const blobId = handle.record.blobId;
  if (ctx.method !== 'GET' || handle.live || blobId === null || handle.size === null) return false;
  if (ctx.get('If-None-Match') !== '' || ctx.get('If-Modified-Since') !== '') return false;
  const contentDisposition =
    options.fileName === undefined ? handle.contentDisposition : contentDispositionFor(handle.contentType, options.fileName);
  chargeBeforeSend(ctx, handle, handle.size, options.chargeBytes);
  const url = await redirect.directUrl({ blobId, contentType: handle.contentType, contentDisposition });
  if (url === null) return false;
  handle.discard();
  ctx.status = 307;
  ctx.set('Location', url);
  ctx.set('Cache-Control', 'no-store');
  return true;
}

/** `allow_redirect=true` on a legacy download (spec v1.7+: the client follows redirects); anything else means no. */
export function allowsRedirect(querystring: string): boolean {
  return new URLSearchParams(querystring).get('allow_redirect') === 'true';
}
