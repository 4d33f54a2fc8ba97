import { Router } from '@koa/router';

/**
 * The spec versions a standalone server advertises. v1.11 is the first with
 * authenticated media (MSC3916); listing it makes SDKs use
 * `/_matrix/client/v1/media/*` instead of the legacy endpoints.
 */
export const SUPPORTED_SPEC_VERSIONS: readonly string[] = Object.freeze(
  Array.from({ length: 9 }, (_, index) => `v1.${11 + index}`),
);

/**
 * A router answering `GET /_matrix/client/versions` for standalone mode (no
 * homeserver in front answering it). No authentication, as the spec says.
 * Mount it with `allowedMethods(allowedMethodsOptions)` so other methods get
 * 405 `M_UNRECOGNIZED`.
 */
export function createVersionsRouter(): Router {
  const body = JSON.stringify({
    versions: SUPPORTED_SPEC_VERSIONS,
    // Clients that predate v1.11 in /versions look for this flag instead.
    unstable_features: { 'org.matrix.msc3916.stable': true },
  });
  const router = new Router();
  router.get('/_matrix/client/versions', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = body;
  });
  return router;
}
