import { errors } from '@hsmedia/errors';
import type { Middleware } from 'koa';

/**
 * The spec versions a standalone server advertises. v1.11 is the first with
 * authenticated media (MSC3916); listing it makes SDKs use
 * `/_matrix/client/v1/media/*` instead of the legacy endpoints.
 */
export const SUPPORTED_SPEC_VERSIONS: readonly string[] = Object.freeze(
  Array.from({ length: 9 }, (_, index) => `v1.${11 + index}`),
);

/**
 * `GET /_matrix/client/versions` for standalone mode (no homeserver in
 * front answering it). No authentication, as the spec says.
 */
export function clientVersions(): Middleware {
  const body = JSON.stringify({
    versions: SUPPORTED_SPEC_VERSIONS,
    unstable_features: { 'org.matrix.msc3916.stable': true },
  });
  return async function clientVersionsMiddleware(ctx, next) {
    if (ctx.path !== '/_matrix/client/versions') return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      throw errors.unrecognized('Unrecognized request: method not allowed', 405);
    }
    ctx.type = 'application/json';
    ctx.body = body;
  };
}
