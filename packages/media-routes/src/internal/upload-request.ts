import { abortSignalFor } from '@hsmedia/koa-matrix';
import type { UploadRequest } from '@hsmedia/media-core';
import { hasUnreadBody } from '../rate-limit.js';
import { requesterOf, type MediaStateContext } from '../route-context.js';
import { queryParam } from './query-params.js';

const DECIMAL = /^\d{1,15}$/;

/**
 * The upload request of `POST /upload` and `PUT /upload/{serverName}/{mediaId}`
 * (https://spec.matrix.org/v1.12/client-server-api/#post_matrixmediav3upload):
 * the body as it arrives, the requester, the `filename` query parameter,
 * Content-Type and the declared Content-Length. Then runs `upload`; if it
 * fails while part of the body is unread, the connection is closed after
 * the answer, so the rest is never parsed as the next request.
 */
export async function withUploadRequest<T>(ctx: MediaStateContext, upload: (request: UploadRequest) => Promise<T>): Promise<T> {
  const requester = requesterOf(ctx);
  const filename = queryParam(new URLSearchParams(ctx.querystring), 'filename');
  const contentType = ctx.get('Content-Type');
  const declaredLength = ctx.get('Content-Length');
  const request: UploadRequest = {
    // Not ctx.req itself: a stream pipeline that fails early would destroy the request, and with
    // it the socket, before the 413 could be sent.
    body: ctx.req.iterator({ destroyOnReturn: false }),
    requester,
    signal: abortSignalFor(ctx),
    ...(contentType === '' ? {} : { contentType }),
    ...(filename === undefined ? {} : { filename }),
    ...(DECIMAL.test(declaredLength) ? { contentLength: Number(declaredLength) } : {}),
  };
  try {
    return await upload(request);
  } catch (err) {
    if (hasUnreadBody(ctx)) ctx.set('Connection', 'close');
    throw err;
  }
}
