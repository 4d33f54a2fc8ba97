import { abortSignalFor } from '@hsmedia/koa-matrix';
import { contentDispositionFor, type MediaHandle } from '@hsmedia/media-core';
import { signalOf, type SignalSource } from '@hsmedia/runtime';
import type { Context } from 'koa';
import { answerConditional } from './http-range.js';
import { writeStreamBody } from './internal/write-stream-body.js';
import { writeMediaHeaders } from './media-headers.js';
import type { ByteCharge } from './rate-limit.js';

/**
 * What sending needs of a media item: a `MediaHandle` or a `ThumbnailHandle`
 * of media-core, or anything that serves bytes the same way.
 */
export type SendableMedia = Pick<
  MediaHandle,
  'contentType' | 'contentDisposition' | 'size' | 'etag' | 'readSmall' | 'cachedSmall' | 'open' | 'discard'
>;

/** Options for {@link sendMedia}. */
export interface SendMediaOptions {
  /**
   * The `/{fileName}` path segment: overrides the stored name
   * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediadownloadservernamemediaidfilename).
   */
  readonly fileName?: string | undefined;
  /** The Cache-Control value. */
  readonly cacheControl: string;
  /**
   * Aborts reads of the body. Default: the request's own signal
   * (`abortSignalFor(ctx)`), created only when a read needs it, so an answer
   * from memory never makes one.
   */
  readonly signal?: SignalSource | undefined;
  /**
   * A download budget in bytes ({@link byteRateLimit}): charged the bytes a
   * GET will send (the range's length for a 206) before any header of the
   * media is written, so a refusal is a clean 429 without the media's
   * Cache-Control or ETag. HEAD and 304 cost nothing.
   */
  readonly chargeBytes?: ByteCharge | undefined;
}

/**
 * Charges `bytes` to the budget of `options`, discarding `media` when it
 * cannot pay (nobody will read it) before the 429 propagates.
 */
export async function chargeBeforeSend(
  ctx: Context,
  media: { discard(): void },
  bytes: number,
  charge: ByteCharge | undefined,
): Promise<void> {
  if (charge === undefined || ctx.method !== 'GET') return;
  try {
    await charge(ctx, bytes);
  } catch (error) {
    media.discard();
    throw error;
  }
}

/** The signal of a read: the caller's, else the request's own (made now, when a read needs it). */
export function readSignal(ctx: Context, source: SignalSource | undefined): AbortSignal {
  return signalOf(source) ?? abortSignalFor(ctx);
}

/**
 * Writes a media item to a Koa response: Content-Type as stored,
 * Content-Disposition per https://spec.matrix.org/v1.12/client-server-api/#serving-inline-content
 * (the handle's, or for the `/{fileName}` segment), the security and
 * caching headers, a strong ETag with 304s, single byte ranges (206/416)
 * and HEAD. Small media comes from memory as a Buffer; large media streams.
 * With `options.chargeBytes`, the bytes are paid for before any media header.
 */
export async function sendMedia(ctx: Context, handle: SendableMedia, options: SendMediaOptions): Promise<void> {
  const { size, etag } = handle;
  if (etag === null || size === null) {
    // A live remote body: charged what the remote declared. An undeclared length (chunked) cannot be
    // charged before sending and a refusal mid-body would only cut the answer; the item is being cached,
    // so every later download of it is charged its stored size.
    await chargeBeforeSend(ctx, handle, size ?? 0, options.chargeBytes);
    writeContentHeaders(ctx, handle, options);
    await sendLive(ctx, handle, size, options);
    return;
  }
  // Decided before any header is written: a 429 from the byte budget must not carry the media's
  // Cache-Control (a client cache would keep the refusal for max-age).
  const range = answerConditional(ctx, handle, etag, size, true);
  const start = range?.kind === 'partial' ? range.start : 0;
  const end = range?.kind === 'partial' ? range.end : size - 1;
  const length = Math.max(0, end - start + 1);
  if (range !== undefined) await chargeBeforeSend(ctx, handle, length, options.chargeBytes);
  writeContentHeaders(ctx, handle, options);
  const { res } = ctx;
  res.setHeader('Accept-Ranges', 'bytes');
  if (range === undefined) return;

  if (range.kind === 'partial') {
    ctx.status = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
  } else {
    ctx.status = 200;
  }

  if (ctx.method !== 'GET') {
    // HEAD: headers only; Koa ends the response without a body.
    ctx.length = length;
    handle.discard();
    return;
  }
  if (length === 0) {
    ctx.body = Buffer.alloc(0);
    return;
  }
  // A cache hit needs neither a promise nor an abort signal.
  const small = handle.cachedSmall?.() ?? (await handle.readSmall(readSignal(ctx, options.signal)));
  if (small !== null) {
    ctx.body = Buffer.from(small.buffer, small.byteOffset + start, length);
    return;
  }
  const body = await handle.open(range.kind === 'partial' ? range : undefined, readSignal(ctx, options.signal));
  ctx.length = length;
  await writeStreamBody(ctx, body, length);
}

/** Content-Type, Content-Disposition and the media headers of every answer about `handle` (a 304 included). */
export function writeContentHeaders(ctx: Context, handle: SendableMedia, options: SendMediaOptions): void {
  const { res } = ctx;
  const { contentType } = handle;
  writeMediaHeaders(res, options.cacheControl, handle.etag);
  res.setHeader('Content-Type', contentType);
  res.setHeader(
    'Content-Disposition',
    options.fileName === undefined ? handle.contentDisposition : contentDispositionFor(contentType, options.fileName),
  );
}

/**
 * A live handle (remote media still arriving): no ETag or ranges yet (the
 * whole body is a valid answer to a range request, RFC 9110 §14.2), the
 * length only when the remote declared it. The stream errors if the remote
 * fails, and the response is then aborted instead of ending short.
 */
async function sendLive(ctx: Context, handle: SendableMedia, size: number | null, options: SendMediaOptions): Promise<void> {
  ctx.status = 200;
  if (ctx.method !== 'GET') {
    if (size !== null) ctx.length = size;
    handle.discard();
    return;
  }
  const body = await handle.open(undefined, readSignal(ctx, options.signal));
  if (size !== null) ctx.length = size;
  await writeStreamBody(ctx, body, size);
}
