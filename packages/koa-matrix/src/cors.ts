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
  return async function matrixCorsMiddleware(ctx, next) {
    ctx.set(MATRIX_CORS_HEADERS);
    if (ctx.method === 'OPTIONS') {
      ctx.status = 204;
      return;
    }
    await next();
  };
}
