import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import type { Middleware } from 'koa';

/**
 * Options for `@koa/router`'s `allowedMethods()` that make a wrong method on a
 * known path a `405 M_UNRECOGNIZED` (https://spec.matrix.org/v1.12/client-server-api/#common-error-codes:
 * servers fall back to legacy endpoints on exactly this pair, so the errcode matters).
 *
 * @example
 * ```ts
 * app.use(router.routes()).use(router.allowedMethods(allowedMethodsOptions));
 * ```
 */
export const allowedMethodsOptions: {
  readonly throw: true;
  readonly methodNotAllowed: () => MatrixError;
  readonly notImplemented: () => MatrixError;
} = Object.freeze({
  throw: true as const,
  methodNotAllowed: (): MatrixError => errors.unrecognized('Unrecognized request: method not allowed', 405),
  // A method the router does not know at all is still "wrong method" for a Matrix client.
  notImplemented: (): MatrixError => errors.unrecognized('Unrecognized request: method not supported', 405),
});

/**
 * The catch-all at the end of the chain: `404 M_UNRECOGNIZED` for any request
 * no route answered. It sets the response instead of throwing so that the
 * routers' `allowedMethods()` (which run after it, on the way out) can still
 * turn a path match with the wrong method into a 405.
 */
export function unrecognized(): Middleware {
  const body = JSON.stringify(new MatrixError(ErrCode.UNRECOGNIZED, 'Unrecognized request').toJSON());
  return function unrecognizedMiddleware(ctx) {
    ctx.status = 404;
    ctx.type = 'application/json';
    ctx.body = body;
  };
}
