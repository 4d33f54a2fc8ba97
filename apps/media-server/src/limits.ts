/**
 * What the `limits:` and `quotas:` config sections compose into:
 * token-bucket rate limiters (per user on client endpoints, per origin
 * server on federation endpoints), the async upload settings and per-user
 * upload quotas of `MediaService`. The sections themselves are in
 * `limits-config.ts`, which the config loader imports without
 * `@hsmedia/media-routes`.
 *
 * Download byte budgets (`limits.download_bytes`) are token buckets whose
 * tokens are bytes: per user on client endpoints, per client IP on the
 * unauthenticated legacy endpoints, per verified origin on federation.
 *
 * Rate limits are shared by every process of a deployment when
 * `cluster.shared_limits` resolves to Redis or PostgreSQL (`shared-limits.ts`);
 * in memory (one process, SQLite) each process keeps its own buckets.
 */
import { TokenBucketRateLimiter, type AsyncUploadOptions, type RateLimiter } from '@hsmedia/media-core';
import { originKey, rateLimit, type MediaRateLimits } from '@hsmedia/media-routes';
import type { Clock } from '@hsmedia/runtime';
import { SharedRateLimiter, type SharedLimits } from './shared-limits.js';
import type { Middleware } from 'koa';
import type { LimitsConfig, RateConfig } from './limits-config.js';

export {
  LIMITS_DEFAULTS,
  limitsSchema,
  quotasSchema,
  resolveLimitsConfig,
  resolveQuotasConfig,
  type ByteRateFile,
  type DownloadBytesFile,
  type LimitsConfig,
  type LimitsFile,
  type QuotaLimitsFile,
  type QuotasConfig,
  type QuotasFile,
  type RateConfig,
  type RateFile,
} from './limits-config.js';

/** The `MediaService` options that come from `limits:`. */
export function asyncUploadOptionsOf(limits: LimitsConfig): { asyncUploads: AsyncUploadOptions; maxTimeoutMs: number } {
  return {
    asyncUploads: { maxPending: limits.maxPendingUploads, unusedExpirationMs: limits.unusedExpirationMs },
    maxTimeoutMs: limits.maxTimeoutMs,
  };
}

/** The rate limiters of a server: per user for the client routers, per origin for federation. */
export interface ServerRateLimits {
  readonly client: MediaRateLimits;
  readonly federation: RateLimiter | undefined;
  /** The federation download byte budget, per origin (`FederationMediaRouterOptions.downloadBytes`). */
  readonly federationBytes: RateLimiter | undefined;
}

/**
 * Builds one token bucket per configured limit: in memory (`clock`: the
 * buckets' time, for tests), or on `shared` buckets with an in-memory
 * fallback while they fail.
 */
export function createRateLimits(limits: LimitsConfig, clock?: Clock, shared?: SharedLimits): ServerRateLimits {
  const bucket = (name: string, rate: RateConfig | null): RateLimiter | undefined => {
    if (rate === null) return undefined;
    const local = new TokenBucketRateLimiter({ perSecond: rate.perSecond, burst: rate.burst, ...(clock === undefined ? {} : { clock }) });
    return shared === undefined ? local : new SharedRateLimiter(name, rate, shared.buckets, shared.health, local);
  };
  const client: { -readonly [K in keyof MediaRateLimits]: MediaRateLimits[K] } = {};
  const create = bucket('create', limits.create);
  const upload = bucket('upload', limits.upload);
  const download = bucket('download', limits.download);
  const downloadBytes = bucket('download_bytes', limits.downloadBytes.client);
  const legacyDownloadBytes = bucket('legacy_download_bytes', limits.downloadBytes.legacy);
  if (create !== undefined) client.create = create;
  if (upload !== undefined) client.upload = upload;
  if (download !== undefined) client.download = download;
  if (downloadBytes !== undefined) client.downloadBytes = downloadBytes;
  if (legacyDownloadBytes !== undefined) client.legacyDownloadBytes = legacyDownloadBytes;
  return {
    client,
    federation: bucket('federation', limits.federation),
    federationBytes: bucket('federation_bytes', limits.downloadBytes.federation),
  };
}

/**
 * Federation authentication followed by the per-origin rate limit: the
 * bucket is chosen by the verified X-Matrix origin, so a forged header can
 * never spend another server's budget.
 */
export function federationAuthWithRateLimit(authenticate: Middleware, limiter: RateLimiter | undefined): Middleware {
  if (limiter === undefined) return authenticate;
  const limit = rateLimit({ limiter, key: originKey });
  return (ctx, next) => authenticate(ctx, () => limit(ctx, next));
}
