/**
 * The `cluster:` config section: how the processes of one deployment (several
 * instances behind a load balancer, or several workers of one) share limits
 * and caches, and how fast a change made by one reaches the others.
 */
import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.js';

/** Defaults of `cluster:`; `config.sample.yaml` documents the same. */
export const CLUSTER_DEFAULTS = {
  shared_limits: 'auto',
  token_cache_ttl: '60s',
} as const;

/** Where rate limits are counted. */
export type SharedLimitsBackend = 'auto' | 'redis' | 'postgres' | 'memory';

/** `cluster:` as written in the file, after validation and defaults. */
export interface ClusterFile {
  readonly redis_url?: string | undefined;
  readonly shared_limits: SharedLimitsBackend;
  readonly token_cache_ttl: number | string;
}

const DURATION_HINT = 'Expected milliseconds, or a number with a unit (ms, s, m, h, d, w) such as "10s"';
const duration = z
  .union([z.number().int().nonnegative(), z.string().regex(DURATION_PATTERN, { error: DURATION_HINT })], { error: DURATION_HINT })
  .refine((value) => parseDuration(value) !== undefined, { error: 'Duration is too long' });

/** `cluster:` in the config file. */
export const clusterSchema: z.ZodType<ClusterFile, unknown> = z
  .strictObject({
    redis_url: z
      .url({ protocol: /^rediss?$/, error: 'Expected a redis:// or rediss:// URL' })
      .optional()
      .meta({ description: 'Redis shared by every process of the deployment: rate limits are counted there (the usual engine for this).' }),
    shared_limits: z
      .enum(['auto', 'redis', 'postgres', 'memory'])
      .default(CLUSTER_DEFAULTS.shared_limits)
      .meta({
        description:
          'Where rate limits and download byte budgets are counted: redis (needs redis_url), postgres (needs database.postgres), memory (each process alone). auto: redis when redis_url is set, else postgres when the database is, else the supervisor for the workers of one server on SQLite (over IPC), else memory.',
      }),
    token_cache_ttl: duration.default(CLUSTER_DEFAULTS.token_cache_ttl).meta({
      description:
        "Homeserver mode: how long a token the homeserver's whoami accepted is trusted without asking again. A token revoked on the homeserver keeps working this long on every process (revocation is not announced to media servers); 0 asks every time.",
    }),
  })
  .refine((cluster) => cluster.shared_limits !== 'redis' || cluster.redis_url !== undefined, {
    path: ['redis_url'],
    error: 'Required when shared_limits is redis',
  })
  .meta({ description: 'How the processes of one deployment share limits, caches and changes.' });

/** The resolved `cluster:` section. */
export interface ClusterConfig {
  /** Secret when it carries a password: never log it. */
  readonly redisUrl: string | undefined;
  readonly sharedLimits: SharedLimitsBackend;
  readonly tokenCacheTtlMs: number;
}

/** Turns the validated `cluster:` section into {@link ClusterConfig}. */
export function resolveClusterConfig(file: ClusterFile): ClusterConfig {
  return { redisUrl: file.redis_url, sharedLimits: file.shared_limits, tokenCacheTtlMs: parseDuration(file.token_cache_ttl)! };
}
