import { takeFileBody } from '@hsmedia/media-core';
import { encodeMultipart, multipartFrame, type EncodedMultipart } from '@hsmedia/multipart';
import type { SignalSource } from '@hsmedia/runtime';
import type { Context } from 'koa';
import { answerConditional } from '../http-range.js';
import { writeMediaHeaders } from '../media-headers.js';
import type { ByteCharge } from '../rate-limit.js';
import { chargeBeforeSend, readSignal, type SendableMedia } from '../send-media.js';
import { writeFileBody } from './write-file-body.js';
import { writeStreamBody } from './write-stream-body.js';

/** Options of {@link sendMultipartMedia}. */
export interface MultipartSendOptions {
  readonly cacheControl: string;
  /** The content part's Content-Disposition. */
  readonly contentDisposition: string;
  readonly signal?: SignalSource | undefined;
  /** The origin's download budget in bytes, charged the content's size before any header is written. */
  readonly chargeBytes?: ByteCharge | undefined;
}

/** The bytes of small media as the content part's source. */
function bytesSource(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

function frame(media: SendableMedia, stream: ReadableStream<Uint8Array>, length: number | null, disposition: string): EncodedMultipart {
  return encodeMultipart({
    content: {
      stream,
      contentType: media.contentType,
      contentDisposition: disposition,
      ...(length === null ? {} : { contentLength: length }),
    },
  });
}

/**
 * Answers a federation media request with `multipart/mixed`: `{}` metadata,
 * then the media with its Content-Type verbatim
 * (https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediadownloadmediaid).
 * The same headers, ETag and 304 as a client download (no ranges: they
 * would cut the framing), the same small-body path (bytes from memory), and
 * larger media streamed straight into the response like downloads.
 */
export async function sendMultipartMedia(ctx: Context, media: SendableMedia, options: MultipartSendOptions): Promise<void> {
  const { etag, size } = media;
  const { res } = ctx;
  // Local media and thumbnails are stored, so they have their validators; anything else is sent whole.
  if (etag !== null && size !== null && answerConditional(ctx, media, etag, size, false) === undefined) {
    writeMediaHeaders(res, options.cacheControl, etag);
    return;
  }
  // The content's bytes (the framing is not media), paid before any header so a 429 carries none of
  // the media's. Federation serves stored media only, so the size is known.
  await chargeBeforeSend(ctx, media, size ?? 0, options.chargeBytes);
  writeMediaHeaders(res, options.cacheControl, etag);
  ctx.status = 200;
  if (ctx.method !== 'GET') {
    // HEAD: the framing's headers (its length counts the content) and no body; the content is never read.
    media.discard();
    const encoded = frame(media, bytesSource(new Uint8Array(0)), size, options.contentDisposition);
    void encoded.body.cancel().catch(() => undefined);
    res.setHeader('Content-Type', encoded.contentType);
    if (encoded.contentLength !== undefined) ctx.length = encoded.contentLength;
    return;
  }
  const small = media.cachedSmall?.() ?? (await media.readSmall(readSignal(ctx, options.signal)));
  if (small !== null) {
    const encoded = frame(media, bytesSource(small), small.byteLength, options.contentDisposition);
    res.setHeader('Content-Type', encoded.contentType);
    if (encoded.contentLength !== undefined) ctx.length = encoded.contentLength;
    await writeStreamBody(ctx, encoded.body, null);
    return;
  }
  const stream = await media.open(undefined, readSignal(ctx, options.signal));
  const file = size === null ? undefined : takeFileBody(stream);
  if (file !== undefined && size !== null) {
    // A stored file: the same writer as a download, between the framing's head and tail.
    const framing = multipartFrame({
      content: { contentType: media.contentType, contentDisposition: options.contentDisposition },
    });
    res.setHeader('Content-Type', framing.contentType);
    ctx.length = framing.head.byteLength + size + framing.tail.byteLength;
    ctx.respond = false;
    await writeFileBody(res, file, size, framing);
    return;
  }
  const encoded = frame(media, stream, size, options.contentDisposition);
  res.setHeader('Content-Type', encoded.contentType);
  if (encoded.contentLength !== undefined) ctx.length = encoded.contentLength;
  await writeStreamBody(ctx, encoded.body, null);
}

/**
 * Answers a federation media request with `multipart/mixed` whose second part
 * is a `Location` header and no bytes
 * (https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediadownloadmediaid):
 * the requesting server fetches `location` itself, without X-Matrix auth.
 * `Cache-Control: no-store`, since the URL expires.
 */
export async function sendMultipartLocation(ctx: Context, location: string): Promise<void> {
  const encoded = encodeMultipart({ content: { location } });
  writeMediaHeaders(ctx.res, 'no-store', null);
  ctx.status = 200;
  ctx.res.setHeader('Content-Type', encoded.contentType);
  if (encoded.contentLength !== undefined) ctx.length = encoded.contentLength;
  await writeStreamBody(ctx, encoded.body, null);
}
