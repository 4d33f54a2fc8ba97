import { errors } from '@hsmedia/errors';
import { formatMxcUri, isValidMediaId, isValidServerName, type AdminAction, type MediaScanStage } from '@hsmedia/media-core';
import { Router } from '@koa/router';
import { requireAdmin, type AdminCheck } from './internal/admin-guard.js';
import type { Middleware } from 'koa';
import { HSMEDIA_ADMIN_PREFIX } from './admin-routes.js';
import { adminContext } from './internal/admin-inputs.js';
import { ALL_METHODS, requesterOf, type MediaRouteState, type PathParams } from './route-context.js';

/** Options for {@link createScanAdminRouter}. */
export interface ScanAdminRouterOptions {
  /** The media service's scan stage (`MediaService.scanning`). */
  readonly scanning: Pick<MediaScanStage, 'scanNow'>;
  /** The same client authentication as the media routers. */
  readonly authenticate: Middleware;
  /** Whether an authenticated requester is a server admin. */
  readonly isAdmin: AdminCheck;
  /** Records a rescan in the audit log (`action: 'rescan'`); none: not recorded. */
  readonly recordAction?: ((entry: AdminAction) => Promise<void>) | undefined;
  /** Time of audit entries. Default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/**
 * `POST /_hsmedia/admin/v1/media/{serverName}/{mediaId}/rescan`: scans an
 * item again now (e.g. after an operator doubts a verdict) and answers
 * `{"scan_state": ..., "signature"?: ...}`; infected media is quarantined
 * and its hash blocked as on a first scan. 202 with `scan_state: "scanning"`
 * when another instance is scanning it right now. Accepts a `reason` and is
 * recorded in the audit log. Errors: 401/403 (not an admin), 400
 * `M_INVALID_PARAM` (server name, reason), 404 `M_NOT_FOUND` (unknown media).
 */
export function createScanAdminRouter(options: ScanAdminRouterOptions): Router {
  const { scanning, authenticate, isAdmin, recordAction } = options;
  const now = options.now ?? Date.now;
  const router = new Router<MediaRouteState>({ methods: ALL_METHODS });
  router.post<MediaRouteState, PathParams<{ serverName: string; mediaId: string }>>(
    `${HSMEDIA_ADMIN_PREFIX}/media/:serverName/:mediaId/rescan`,
    authenticate,
    requireAdmin(isAdmin),
    async (ctx) => {
      const { serverName, mediaId } = ctx.params;
      if (!isValidServerName(serverName)) throw errors.invalidParam('Invalid server name');
      if (!isValidMediaId(mediaId)) throw errors.notFound('Media not found');
      const context = await adminContext(ctx, requesterOf(ctx).userId, new URLSearchParams(ctx.querystring));
      const result = await scanning.scanNow(serverName, mediaId, true);
      await recordAction?.({ action: 'rescan', actor: context.by ?? null, target: formatMxcUri(serverName, mediaId), reason: context.reason ?? null, at: now() });
      if (result.state === 'busy') {
        ctx.status = 202;
        ctx.body = { scan_state: 'scanning' };
        return;
      }
      ctx.body = result.signature === undefined ? { scan_state: result.state } : { scan_state: result.state, signature: result.signature };
    },
  );
  return router;
}
