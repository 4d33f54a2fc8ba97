import { MatrixError, ErrCode } from '@hsmedia/errors';
import { contentDispositionFor, type MediaHandle } from '@hsmedia/media-core';
import type { Context } from 'koa';
import { decideRange, ifNoneMatchMatches, ifRangeAllows } from './http-range.js';
import { writeStreamBody } from './internal/write-stream-body.js';
import { MEDIA_SECURITY_HEADERS } from './media-headers.js';

/** Options for {@link sendMedia}. */
export interface SendMediaOptions {
  /** The `/{fileName}` path segment: overrides the stored name (spec §1.2). */
  readonly fileName?: string | undefined;
  /** The Cache-Control value. */
  readonly cacheControl: string;
  readonly signal?: AbortSignal;
}

const SECURITY_HEADER_ENTRIES: readonly (readonly [string, string])[] = Object.entries(MEDIA_SECURITY_HEADERS);

/** Content-Disposition of a handle's stored name, per handle (media services reuse handles of cached records). */
const dispositions = new WeakMap<MediaHandle, string>();

function storedDisposition(handle: MediaHandle): string {
  let disposition = dispositions.get(handle);
  if (disposition === undefined) {
    disposition = contentDispositionFor(handle.contentType, handle.uploadName);
    dispositions.set(handle, disposition);
  }
  return disposition;
}

/**
 * Writes a media handle to a Koa response: Content-Type as stored,
 * Content-Disposition per spec v1.12 (inline only for the safe list),
 * hardening headers, a strong ETag with 304s, single byte ranges (206/416)
 * and HEAD. Small media comes from memory as a Buffer; large media streams.
 */
export async function sendMedia(ctx: Context, handle: MediaHandle, options: SendMediaOptions): Promise<void> {
  const { size, etag, contentType } = handle;
  // Straight to Node (nothing is sent yet): Koa's ctx.set adds two calls and checks per header.
  const { res } = ctx;
  for (const [name, value] of SECURITY_HEADER_ENTRIES) res.setHeader(name, value);
  res.setHeader('Content-Type', contentType);
  res.setHeader(
    'Content-Disposition',
    options.fileName === undefined ? storedDisposition(handle) : contentDispositionFor(contentType, options.fileName),
  );
  res.setHeader('Cache-Control', options.cacheControl);
  if (etag === null || size === null) {
    await sendLive(ctx, handle, size, options);
    return;
  }
  res.setHeader('ETag', etag);
  res.setHeader('Accept-Ranges', 'bytes');

  if (ifNoneMatchMatches(ctx.get('If-None-Match') || undefined, etag)) {
    ctx.status = 304;
    handle.discard();
    return;
  }

  const isGet = ctx.method === 'GET';
  const range =
    isGet && ifRangeAllows(ctx.get('If-Range') || undefined, etag)
      ? decideRange(ctx.get('Range') || undefined, size)
      : ({ kind: 'full' } as const);
  if (range.kind === 'unsatisfiable') {
    handle.discard();
    throw new MatrixError(ErrCode.UNKNOWN, 'Requested range not satisfiable', {
      httpStatus: 416,
      headers: { 'Content-Range': `bytes */${size}` },
    });
  }
  const start = range.kind === 'partial' ? range.start : 0;
  const end = range.kind === 'partial' ? range.end : size - 1;
  const length = Math.max(0, end - start + 1);
  if (range.kind === 'partial') {
    ctx.status = 206;
    ctx.set('Content-Range', `bytes ${start}-${end}/${size}`);
  } else {
    ctx.status = 200;
  }

  if (!isGet) {
    // HEAD: headers only; Koa ends the response without a body.
    ctx.length = length;
    handle.discard();
    return;
  }
  if (length === 0) {
    ctx.body = Buffer.alloc(0);
    return;
  }
  // A cache hit needs neither a promise nor the abort signal (options.signal may be created lazily).
  const small = handle.cachedSmall?.() ?? (await handle.readSmall(options.signal));
  if (small !== null) {
    ctx.body = Buffer.from(small.buffer, small.byteOffset + start, length);
    return;
  }
  const body = await handle.open(range.kind === 'partial' ? { start, end } : undefined, options.signal);
  ctx.length = length;
  await writeStreamBody(ctx, body);
}

/**
 * A live handle (remote media still arriving): no ETag or ranges yet (the
 * whole body is a valid answer to a range request, RFC 9110 §14.2), the
 * length only when the remote declared it. The stream errors if the remote
 * fails, and the response is then aborted instead of ending short.
 */
async function sendLive(ctx: Context, handle: MediaHandle, size: number | null, options: SendMediaOptions): Promise<void> {
  ctx.status = 200;
  if (ctx.method !== 'GET') {
    if (size !== null) ctx.length = size;
    handle.discard();
    return;
  }
  const body = await handle.open(undefined, options.signal);
  if (size !== null) ctx.length = size;
  await writeStreamBody(ctx, body);
}
