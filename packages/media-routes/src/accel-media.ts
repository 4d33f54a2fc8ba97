import type { Context } from 'koa';
import { answerConditional } from './http-range.js';
import { writeMediaHeaders } from './media-headers.js';
import { chargeBeforeSend, writeContentHeaders, type SendableMedia, type SendMediaOptions } from './send-media.js';

const EMPTY = Buffer.alloc(0);

/**
 * `X-Accel-Redirect` delivery: a reverse proxy in front (nginx) sends the
 * blob's file from an `internal` location once this server has answered
 * with the headers. The path comes from the blob ID alone, never from the request.
 */
export interface MediaAccel {
  /** The internal URI naming the blob's file (e.g. `/_hsmedia_accel/blobs/ab/cd/abcd…`), or null to send it from here. */
  accelPath(blobId: string): string | null;
}

/**
 * Answers a GET download or thumbnail with `X-Accel-Redirect` and says
 * whether it did. Runs after the lookup (token, policy, quarantine, scan
 * verdict, freeze), so nginx is sent only to media the caller may read. This
 * server still decides the conditional part (304 here; 416 for an
 * unsatisfiable range) and charges the byte budget the bytes nginx will send
 * (a satisfiable single range its length; with `If-Range` the whole size,
 * since nginx does not know our entity tag and may send everything); nginx
 * cuts the range itself. The media headers (type, disposition, CSP, cache,
 * ETag) are set here; the sample nginx config passes them on.
 */
export async function accelMedia(
  ctx: Context,
  handle: SendableMedia & { readonly live: boolean },
  blobId: string | null,
  accel: MediaAccel,
  options: SendMediaOptions,
): Promise<boolean> {
  const { etag, size } = handle;
  if (ctx.method !== 'GET' || handle.live || blobId === null || etag === null || size === null) return false;
  const path = accel.accelPath(blobId);
  if (path === null) return false;
  const range = answerConditional(ctx, handle, etag, size, true);
  if (range === undefined) {
    writeMediaHeaders(ctx.res, options.cacheControl, etag);
    return true;
  }
  const length = range.kind === 'partial' && ctx.get('If-Range') === '' ? range.end - range.start + 1 : size;
  await chargeBeforeSend(ctx, handle, length, options.chargeBytes);
  handle.discard();
  writeContentHeaders(ctx, handle, options);
  ctx.res.setHeader('Accept-Ranges', 'bytes');
  ctx.res.setHeader('X-Accel-Redirect', path);
  ctx.status = 200;
  // An empty body, not null: Koa would write a text body (or drop Content-Type) for null. nginx sends the file instead.
  ctx.body = EMPTY;
  return true;
}
