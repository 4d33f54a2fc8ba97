import type { Router } from '@koa/router';
import type { Middleware } from 'koa';

/**
 * The literal start every route of `router` shares (up to its last `/`, before any parameter or
 * group), or '' when the routes share none (a RegExp path, a bare `use`).
 */
export function literalPrefixOf(router: Router): string {
  const paths = router.stack.map((layer) => layer.path);
  let prefix: string | undefined;
  for (const path of paths) {
    if (typeof path !== 'string') return '';
    const cut = path.search(/[:({*?+]/);
    const literal = cut < 0 ? path : path.slice(0, cut);
    if (prefix === undefined) {
      prefix = literal;
      continue;
    }
    let i = 0;
    while (i < prefix.length && i < literal.length && prefix[i] === literal[i]) i++;
    prefix = prefix.slice(0, i);
  }
  if (prefix === undefined) return '';
  // Whole segments only: `/_matrix/media/v3/up` must not be taken for a segment of its own.
  return prefix.slice(0, prefix.lastIndexOf('/') + 1);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `router.routes()` behind a test of the path's start: a request outside every route of the router
 * skips its per-request matching (a loop over every layer, arrays and a middleware chain built per
 * request). Case-insensitive like the router's own matching (`sensitive` is off by default), so
 * every request the router would match still reaches it; a path under none of its routes gets the
 * answer it got before (the router matches nothing and passes it on).
 */
export function gatedRoutes(router: Router): Middleware {
  const routes = router.routes() as Middleware;
  const prefix = literalPrefixOf(router);
  if (prefix.length <= 1) return routes;
  const start = new RegExp(`^${escapeRegExp(prefix)}`, 'i');
  return function gatedRoutesMiddleware(ctx, next) {
    return start.test(ctx.path) ? routes(ctx, next) : next();
  };
}
