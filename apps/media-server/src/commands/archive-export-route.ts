import { PassThrough } from 'node:stream';
import { Router } from '@koa/router';
import { errors } from '@hsmedia/errors';
import type { BlobStore, MediaMetadataStore } from '@hsmedia/media-core';
import type { MediaRouteState } from '@hsmedia/media-routes';
import type { Logger, Requester } from '@hsmedia/runtime';
import type { Context, Middleware } from 'koa';
import { exportMedia } from './export.js';

/**
 * `GET /_hsmedia/admin/v1/users/{userId}/media/export`: one local user's
 * media as a one-part hsmedia archive (docs/export-format.md), streamed as
 * the answer (`application/gzip`), for an admin answering a user's data
 * request without shell access. `include_quarantined=true` adds quarantined
 * media. The archive is written while it is sent: a failure half-way cuts
 * the connection, so the client is left with a truncated gzip, never with
 * an archive that looks whole.
 */

/** What {@link createExportRouter} needs. */
export interface ExportRouterOptions {
  readonly serverName: string;
  readonly blobs: BlobStore;
  readonly metadata: MediaMetadataStore;
  /** Client authentication, the same as the admin routes'. */
  readonly authenticate: Middleware;
  readonly isAdmin: (requester: Requester, ctx: Context) => boolean | Promise<boolean>;
  readonly logger: Logger;
}

const USER_ID = /^@[^:\s]{1,255}:(.+)$/;

/** The router of the export route (mounted beside the other admin routes). */
export function createExportRouter(options: ExportRouterOptions): Router {
  const router = new Router();
  router.get('/_hsmedia/admin/v1/users/:userId/media/export', options.authenticate, async (ctx) => {
    const requester = (ctx.state as MediaRouteState).requester;
    if (requester === undefined) throw errors.missingToken();
    if (requester.isGuest || !(await options.isAdmin(requester, ctx))) throw errors.forbidden('You are not a server admin');
    const userId = ctx.params.userId;
    const server = userId === undefined ? undefined : USER_ID.exec(userId)?.[1];
    if (userId === undefined || server === undefined) throw errors.invalidParam('userId must be a user ID (@name:server)');
    if (server !== options.serverName) throw errors.invalidParam(`only local users (of ${options.serverName}) can be exported`);
    const include = ctx.query['include_quarantined'];
    if (include !== undefined && include !== 'true' && include !== 'false') throw errors.invalidParam('include_quarantined must be true or false');

    const body = new PassThrough();
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Type', 'application/gzip');
    ctx.set('Content-Disposition', 'attachment; filename="hsmedia-export-part-0001.tar.gz"');
    ctx.body = body;
    exportMedia({
      serverName: options.serverName,
      blobs: options.blobs,
      metadata: options.metadata,
      scope: { kind: 'user', userId },
      out: body,
      partSize: Number.POSITIVE_INFINITY,
      includeQuarantined: include === 'true',
    }).then(
      ({ manifest }) => options.logger.info({ user_id: userId, items: manifest.items, bytes: manifest.bytes, by: requester.userId }, 'exported user media'),
      (err: unknown) => options.logger.error({ err, user_id: userId }, 'user media export failed; the answer was cut'),
    );
  });
  return router;
}
