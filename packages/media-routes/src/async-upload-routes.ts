import { readJsonBody } from '@hsmedia/koa-matrix';
import type { MediaService } from '@hsmedia/media-core';
import type { Router } from '@koa/router';
import type { Middleware } from 'koa';
import { withUploadRequest } from './internal/upload-request.js';
import { requesterOf, type MediaHandler, type MediaPathParams } from './route-context.js';

/** Options for {@link addAsyncUploadRoutes}. */
export interface AsyncUploadRoutesOptions {
  readonly media: MediaService;
  /** Client authentication; sets `ctx.state.requester` or throws 401. */
  readonly authenticate: Middleware;
  /** Runs after authentication on `POST /create` (e.g. a {@link rateLimit} for creates). */
  readonly beforeCreate?: readonly Middleware[];
  /** Runs after authentication on `PUT /upload/...`, before the body is read (e.g. the upload rate limit). */
  readonly beforeUpload?: readonly Middleware[];
}

/** Largest `/create` body read: no fields are defined yet (spec v1.7), so any real body is tiny. */
const CREATE_BODY_MAX_BYTES = 16 * 1024;

/**
 * Adds the async upload endpoints (spec v1.7, MSC2246) to a router:
 * `POST /_matrix/media/v1/create` and
 * `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`.
 *
 * `/create` takes a JSON object body, possibly empty or absent, and answers
 * `{content_uri, unused_expires_at}`. The `PUT` answers `{}`; every check
 * that needs no body (owner 403, already uploaded 409, expired 404, declared
 * size 413, quota 403) runs before the first byte is read, and a refused
 * request's connection is closed rather than drained.
 */
export function addAsyncUploadRoutes(router: Router, options: AsyncUploadRoutesOptions): void {
  const { media, authenticate } = options;

  const create: MediaHandler = async (ctx) => {
    const requester = requesterOf(ctx);
    // No fields are defined; the body must still be a JSON object when present
    // (https://spec.matrix.org/v1.12/client-server-api/#post_matrixmediav1create).
    await readJsonBody(ctx, { maxBytes: CREATE_BODY_MAX_BYTES, allowEmpty: true });
    const created = await media.createMedia(requester);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { content_uri: created.contentUri, unused_expires_at: created.unusedExpiresAt };
  };

  const upload: MediaHandler<MediaPathParams> = async (ctx) => {
    const { serverName, mediaId } = ctx.params;
    await withUploadRequest(ctx, (request) => media.uploadPending({ ...request, serverName, mediaId }));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {};
  };

  router.post('/_matrix/media/v1/create', authenticate, ...(options.beforeCreate ?? []), create);
  router.put('/_matrix/media/v3/upload/:serverName/:mediaId', authenticate, ...(options.beforeUpload ?? []), upload);
}
