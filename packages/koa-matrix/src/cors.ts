import type { Middleware } from 'koa';

/**
 * The CORS headers the client-server spec asks for on every response
 * (https://spec.matrix.org/v1.12/client-server-api/#web-browser-clients).
 */
export const MATRIX_CORS_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'X-Requested-With, Content-Type, Authorization',
});

const CORS_ENTRIES: readonly (readonly [string, string])[] = Object.entries(MATRIX_CORS_HEADERS);

/**
 * Adds the Matrix CORS headers to every response and answers `OPTIONS`
 * (204, no body) without running any endpoint logic, as the spec requires.
 *
 * @example
 * ```ts
 * app.use(matrixErrors());
 * app.use(matrixCors());
 * ```
 */
export function matrixCors(): Middleware {
  // Straight to Node (nothing is sent yet) and no async wrapper: on every request, Koa's `ctx.set`
  // and an extra promise per layer are measurable (docs/small-media-profile.md).
  return function matrixCorsMiddleware(ctx, next) {
    const { res } = ctx;
    for (const [name, value] of CORS_ENTRIES) res.setHeader(name, value);
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      return Promise.resolve();
    }
    return next();
  };
}
