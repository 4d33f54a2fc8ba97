import { errors } from '@hsmedia/errors';
import type { RateLimiter } from '@hsmedia/media-core';
import type { Requester } from '@hsmedia/runtime';
import type { Context, Middleware } from 'koa';

/** Options for {@link rateLimit}. */
export interface RateLimitOptions {
  /** The budget, e.g. a `TokenBucketRateLimiter` from `@hsmedia/media-core`. */
  readonly limiter: RateLimiter;
  /**
   * The bucket a request draws from (a user ID, an origin server, an IP);
   * undefined lets the request through unlimited. Runs after authentication
   * when the middleware is placed after it.
   */
  readonly key: (ctx: Context) => string | undefined;
  /** Tokens a request costs; default 1. */
  readonly cost?: number | ((ctx: Context) => number);
}

/**
 * Koa middleware that refuses a request over its budget with 429
 * `M_LIMIT_EXCEEDED`, `retry_after_ms` and a `Retry-After` header, before the
 * handler runs (so no request body is read). Put it after the authentication
 * middleware so that the key is the authenticated user or server.
 *
 * @example
 * ```ts
 * const uploads = new TokenBucketRateLimiter({ perSecond: 1, burst: 10 });
 * router.post('/upload', authenticate, rateLimit({ limiter: uploads, key: requesterKey }), upload);
 * ```
 */
export function rateLimit(options: RateLimitOptions): Middleware {
  const { limiter, key } = options;
  const cost = options.cost ?? 1;
  if (typeof cost === 'number' && !(Number.isFinite(cost) && cost >= 0)) {
    throw new TypeError('rateLimit: cost must be a non-negative number');
  }
  return async (ctx, next) => {
    const bucket = key(ctx);
    if (bucket !== undefined) {
      const decision = limiter.take(bucket, typeof cost === 'number' ? cost : cost(ctx));
      if (!decision.allowed) {
        // A refused upload's body is never read: the connection must not carry it into another request.
        if (hasUnreadBody(ctx)) ctx.set('Connection', 'close');
        throw errors.limitExceeded(decision.retryAfterMs);
      }
    }
    await next();
  };
}

/** {@link RateLimitOptions.key} for client endpoints: the authenticated user (`ctx.state.requester`). */
export function requesterKey(ctx: Context): string | undefined {
  return (ctx.state as { requester?: Requester }).requester?.userId;
}

/** {@link RateLimitOptions.key} for federation endpoints: the X-Matrix origin (`ctx.state.origin`). */
export function originKey(ctx: Context): string | undefined {
  const origin = (ctx.state as { origin?: unknown }).origin;
  return typeof origin === 'string' ? origin : undefined;
}

/** {@link RateLimitOptions.key} for unauthenticated endpoints: the client address (`ctx.ip`; set `app.proxy` behind a proxy). */
export function clientIpKey(ctx: Context): string | undefined {
  return ctx.ip === '' ? undefined : `ip:${ctx.ip}`;
}

/** The request declares a body (length or chunked) that nobody has read to the end. */
export function hasUnreadBody(ctx: Context): boolean {
  const declared = ctx.req.headers['transfer-encoding'] !== undefined || (ctx.request.length ?? 0) > 0;
  return declared && !ctx.req.readableEnded;
}
