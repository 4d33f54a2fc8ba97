import { errors } from '@hsmedia/errors';
import { abortSignalFor, readJsonBody } from '@hsmedia/koa-matrix';
import type { MediaService } from '@hsmedia/media-core';
import type { Requester } from '@hsmedia/runtime';
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { hasUnreadBody } from './rate-limit.js';

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

function requesterOf(ctx: Context): Requester {
  const requester = (ctx.state as { requester?: Requester }).requester;
  if (!requester) throw errors.missingToken();
  return requester;
}

function filenameOf(ctx: Context): string | undefined {
  const values = new URLSearchParams(ctx.querystring).getAll('filename');
  if (values.length > 1) throw errors.invalidParam('Query parameter filename given more than once');
  return values[0];
}

function contentLengthOf(ctx: Context): number | undefined {
  const header = ctx.get('Content-Length');
  return /^\d{1,15}$/.test(header) ? Number(header) : undefined;
}

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

  const create: Middleware = async (ctx) => {
    const requester = requesterOf(ctx);
    // No fields are defined; the body must still be a JSON object when present (digest §1.7).
    await readJsonBody(ctx, { maxBytes: CREATE_BODY_MAX_BYTES, allowEmpty: true });
    const created = await media.createMedia(requester);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { content_uri: created.contentUri, unused_expires_at: created.unusedExpiresAt };
  };

  const upload: Middleware = async (ctx) => {
    const requester = requesterOf(ctx);
    const params = (ctx as Context & { params: Record<string, string> }).params;
    const filename = filenameOf(ctx);
    const contentType = ctx.get('Content-Type');
    const contentLength = contentLengthOf(ctx);
    const signal = abortSignalFor(ctx);
    try {
      await media.uploadPending({
        serverName: params['serverName']!,
        mediaId: params['mediaId']!,
        // Not ctx.req itself: an early failure must not destroy the socket before the error is sent.
        body: ctx.req.iterator({ destroyOnReturn: false }),
        requester,
        signal,
        ...(contentType === '' ? {} : { contentType }),
        ...(filename === undefined ? {} : { filename }),
        ...(contentLength === undefined ? {} : { contentLength }),
      });
      ctx.set('Cache-Control', 'no-store');
      ctx.body = {};
    } catch (err) {
      // Refused before or while reading: the rest of the body must not be parsed as the next request.
      if (hasUnreadBody(ctx)) ctx.set('Connection', 'close');
      throw err;
    }
  };

  router.post('/_matrix/media/v1/create', authenticate, ...(options.beforeCreate ?? []), create);
  router.put('/_matrix/media/v3/upload/:serverName/:mediaId', authenticate, ...(options.beforeUpload ?? []), upload);
}
