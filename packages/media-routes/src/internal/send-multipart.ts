import { takeFileBody } from '@hsmedia/media-core';
import { encodeMultipart, multipartFrame, type EncodedMultipart, type MultipartFrame } from '@hsmedia/multipart';
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

/** The framing around content the server writes itself (bytes from memory, a file): no Web stream. */
function framing(media: SendableMedia, disposition: string): MultipartFrame {
  return multipartFrame({ content: { contentType: media.contentType, contentDisposition: disposition } });
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
    const frame = framing(media, options.contentDisposition);
    res.setHeader('Content-Type', frame.contentType);
    if (size !== null) ctx.length = frame.head.byteLength + size + frame.tail.byteLength;
    return;
  }
  // Small media (a cache hit needs no promise): one buffer of framing and bytes, sent by Koa like a
  // client download's, with no Web stream per answer.
  const small = media.cachedSmall?.() ?? (await media.readSmall(readSignal(ctx, options.signal)));
  if (small !== null) {
    const frame = framing(media, options.contentDisposition);
    res.setHeader('Content-Type', frame.contentType);
    ctx.body = Buffer.concat([frame.head, small, frame.tail], frame.head.byteLength + small.byteLength + frame.tail.byteLength);
    return;
  }
  const stream = await media.open(undefined, readSignal(ctx, options.signal));
  const file = size === null ? undefined : takeFileBody(stream);
  if (file !== undefined && size !== null) {
    // A stored file: the same writer as a download, between the framing's head and tail.
    const frame = framing(media, options.contentDisposition);
    res.setHeader('Content-Type', frame.contentType);
    ctx.length = frame.head.byteLength + size + frame.tail.byteLength;
    ctx.respond = false;
    await writeFileBody(res, file, size, frame);
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
