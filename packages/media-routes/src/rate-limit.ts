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
      const decision = await limiter.take(bucket, typeof cost === 'number' ? cost : cost(ctx));
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

/**
 * Charges the bytes an answer is about to send to a budget, before any
 * header of the media is written; throws 429 `M_LIMIT_EXCEEDED` (with
 * `retry_after_ms` and `Retry-After`) when the budget cannot pay. Made by
 * {@link byteRateLimit}.
 */
export type ByteCharge = (ctx: Context, bytes: number) => Promise<void>;

/** Options for {@link byteRateLimit}. */
export interface ByteRateLimitOptions {
  /** A budget in bytes, e.g. `new TokenBucketRateLimiter({ perSecond: 1 << 20, burst: 100 << 20 })`. */
  readonly limiter: RateLimiter;
  /** The bucket the bytes are drawn from ({@link requesterKey}, {@link clientIpKey}, {@link originKey}); undefined: unlimited. */
  readonly key: (ctx: Context) => string | undefined;
}

/**
 * A download budget in bytes (as Synapse's `remote_media_download_per_second`
 * and matrix-media-repo's download buckets), on top of the request-count
 * limits of {@link rateLimit}: each answer costs the bytes of media it sends
 * (the range's length for a 206). With a token bucket, a download larger
 * than the burst is let through when the bucket is full and empties it, so
 * no file is ever unreachable; the next one waits for the refill.
 *
 * @example
 * ```ts
 * const bytes = new TokenBucketRateLimiter({ perSecond: 1 << 20, burst: 64 << 20 });
 * createMediaRouters({ media, authenticate, rateLimits: { downloadBytes: bytes } });
 * ```
 */
export function byteRateLimit(options: ByteRateLimitOptions): ByteCharge {
  const { limiter, key } = options;
  return async (ctx, bytes) => {
    if (bytes <= 0) return;
    const bucket = key(ctx);
    if (bucket === undefined) return;
    const decision = await limiter.take(bucket, bytes);
    if (!decision.allowed) throw errors.limitExceeded(decision.retryAfterMs);
  };
}
