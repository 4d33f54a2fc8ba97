/**
 * Rate limits and download byte budgets that hold across every process of a
 * deployment (`cluster.shared_limits`): token buckets in Redis when
 * `cluster.redis_url` is set, else in the PostgreSQL database, else in the
 * supervisor for the workers of one `hsmedia-server start` (over IPC), else
 * (one process) in memory. While the shared store fails, each process falls back
 * to its own in-memory buckets: logged once per outage, the gauge
 * `hsmedia_shared_limits_degraded` set, and no request ever fails for it.
 */
import nodeCluster from 'node:cluster';
import { TokenBucketRateLimiter, type RateLimitDecision, type RateLimiter } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';
import { PostgresMetadataStore, PostgresTokenBuckets, type TokenBucketRate } from '@hsmedia/store-postgres';
import { Gauge, type Registry } from 'prom-client';
import { IpcTokenBuckets } from './cluster-ipc.js';
import type { MediaServerConfig } from './config.js';
import type { RateConfig } from './limits-config.js';
import type { OpenStores } from './stores.js';

/** A store of token buckets shared by every process. */
export interface SharedTokenBuckets {
  take(key: string, rate: TokenBucketRate, cost: number): Promise<RateLimitDecision>;
}

/** Whether the shared store answers; logs each change of state once. */
export class SharedLimitsHealth {
  readonly #logger: Logger;
  readonly #gauge: Gauge;
  readonly #backend: string;
  #degraded = false;

  constructor(backend: string, logger: Logger, registry: Registry) {
    this.#backend = backend;
    this.#logger = logger;
    this.#gauge = new Gauge({
      name: 'hsmedia_shared_limits_degraded',
      help: '1 while the shared rate-limit store (Redis, PostgreSQL or the supervisor) fails and each process counts limits alone, else 0.',
      registers: [registry],
    });
    this.#gauge.set(0);
  }

  get degraded(): boolean {
    return this.#degraded;
  }

  failed(error: unknown): void {
    if (this.#degraded) return;
    this.#degraded = true;
    this.#gauge.set(1);
    this.#logger.warn(
      { err: error, backend: this.#backend },
      'shared rate limits unavailable; each process counts its own limits until the store answers again',
    );
  }

  succeeded(): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    this.#gauge.set(0);
    this.#logger.info({ backend: this.#backend }, 'shared rate limits available again');
  }
}

/**
 * One configured limit on the shared buckets, with this process's own
 * bucket as the fallback. Keys are namespaced by the limit's name, so one
 * store holds every limit of the deployment.
 */
export class SharedRateLimiter implements RateLimiter {
  readonly #name: string;
  readonly #rate: TokenBucketRate;
  readonly #buckets: SharedTokenBuckets;
  readonly #health: SharedLimitsHealth;
  readonly #fallback: TokenBucketRateLimiter;

  constructor(name: string, rate: TokenBucketRate, buckets: SharedTokenBuckets, health: SharedLimitsHealth, fallback: TokenBucketRateLimiter) {
    this.#name = name;
    this.#rate = rate;
    this.#buckets = buckets;
    this.#health = health;
    this.#fallback = fallback;
  }

  async take(key: string, cost: number = 1): Promise<RateLimitDecision> {
    if (!(Number.isFinite(cost) && cost >= 0)) throw new TypeError(`SharedRateLimiter: bad cost ${cost}`);
    try {
      const decision = await this.#buckets.take(`${this.#name}:${key}`, this.#rate, cost);
      this.#health.succeeded();
      return decision;
    } catch (error) {
      this.#health.failed(error);
      return this.#fallback.take(key, cost);
    }
  }
}

/** The shared buckets of a server, ready for `createRateLimits`. */
export interface SharedLimits {
  readonly backend: 'redis' | 'postgres' | 'supervisor';
  readonly buckets: SharedTokenBuckets;
  readonly health: SharedLimitsHealth;
  close(): Promise<void>;
}

/** The configured limits' longest full refill: buckets idle longer are full and can be forgotten. */
function longestRefillMs(config: MediaServerConfig): number {
  const { limits } = config;
  const rates: (RateConfig | null)[] = [
    limits.create,
    limits.upload,
    limits.download,
    limits.federation,
    limits.downloadBytes.client,
    limits.downloadBytes.legacy,
    limits.downloadBytes.federation,
  ];
  return Math.max(3_600_000, ...rates.map((rate) => (rate === null ? 0 : Math.ceil((rate.burst / rate.perSecond) * 1000))));
}

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

/**
 * Opens the shared buckets `cluster.shared_limits` asks for; undefined when
 * limits stay in this process's memory (`memory`, or `auto` in a lone
 * process). `auto` in a worker without Redis or PostgreSQL draws from the
 * supervisor's buckets. Throws for a configuration that
 * cannot work (`postgres` without a PostgreSQL database).
 */
export async function openSharedLimits(
  config: MediaServerConfig,
  stores: OpenStores,
  logger: Logger,
  registry: Registry,
): Promise<SharedLimits | undefined> {
  const { cluster } = config;
  const postgres = stores.metadata instanceof PostgresMetadataStore ? stores.metadata : undefined;
  let backend: 'redis' | 'postgres' | 'memory' = cluster.sharedLimits === 'auto' ? 'memory' : cluster.sharedLimits;
  if (cluster.sharedLimits === 'auto') backend = cluster.redisUrl !== undefined ? 'redis' : postgres !== undefined ? 'postgres' : 'memory';
  if (backend === 'memory') {
    if (cluster.sharedLimits !== 'auto' || !nodeCluster.isWorker) return undefined;
    const health = new SharedLimitsHealth('supervisor', logger, registry);
    const buckets = new IpcTokenBuckets(process);
    logger.info({ backend: 'supervisor' }, 'rate limits shared through the supervisor');
    return { backend: 'supervisor', buckets, health, close: () => Promise.resolve(buckets.close()) };
  }
  const health = new SharedLimitsHealth(backend, logger, registry);
  if (backend === 'redis') {
    // Loaded only when configured: ioredis costs every start (the CLI's --help included) otherwise.
    const { RedisTokenBuckets } = await import('./redis-token-buckets.js');
    const redis = new RedisTokenBuckets({ url: cluster.redisUrl!, keyPrefix: `hsmedia:${config.serverName}:rl:` });
    if (!(await redis.connect(2_000))) health.failed(new Error('Redis did not answer at start'));
    logger.info({ backend, connected: !health.degraded }, 'rate limits shared through Redis');
    return { backend, buckets: redis, health, close: () => Promise.resolve(redis.close()) };
  }
  if (postgres === undefined) throw new Error('cluster.shared_limits is postgres, but the database is not PostgreSQL');
  const buckets = new PostgresTokenBuckets({ knex: postgres.knex });
  const idleMs = longestRefillMs(config);
  const sweep = setInterval(() => {
    buckets.sweep(idleMs).catch((error: unknown) => logger.warn({ err: error }, 'could not sweep idle rate-limit buckets'));
  }, SWEEP_INTERVAL_MS);
  sweep.unref();
  logger.info({ backend }, 'rate limits shared through PostgreSQL');
  return {
    backend,
    buckets,
    health,
    close: () => {
      clearInterval(sweep);
      return Promise.resolve();
    },
  };
}
