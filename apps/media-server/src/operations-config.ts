import { z } from 'zod';
import { BYTE_SIZE_PATTERN, parseByteSize } from './byte-size.js';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import type { RetentionPolicy } from './retention.js';

/**
 * The operations sections of the config file (`admins`, `retention`,
 * `metrics`): their schemas and how they resolve. Kept apart from
 * `config.ts`, which composes them.
 */

const USER_ID_RE = /^@[\x21-\x39\x3B-\x7E]+:[^\s]+$/;

type DurationSchema = z.ZodUnion<readonly [z.ZodNumber, z.ZodString]>;
type RulesSchema = z.ZodObject<{ max_idle: z.ZodDefault<z.ZodNullable<DurationSchema>>; max_age: z.ZodDefault<z.ZodNullable<DurationSchema>> }, z.core.$strict>;

const duration: DurationSchema = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(DURATION_PATTERN, { error: 'Expected a duration such as 3600000, "90s", "15m", "12h", "30d" or "2w"' }),
  ])
  .refine((value) => parseDuration(value) !== undefined, { error: 'Duration is too long' })
  .meta({ description: 'Milliseconds as an integer, or a string with a unit: ms, s, m, h, d, w.' });

const byteSize: DurationSchema = z
  .union([z.number().int().nonnegative(), z.string().regex(BYTE_SIZE_PATTERN, { error: 'Expected a size such as "512M" or "10G"' })])
  .refine((value) => parseByteSize(value) !== undefined, { error: 'Size is too large' });

/** `admins`: who may use the admin API. */
export const adminsSchema: z.ZodDefault<z.ZodArray<z.ZodString>> = z
  .array(z.string().regex(USER_ID_RE, { error: 'Expected a Matrix user ID such as "@admin:example.org"' }))
  .default([])
  .meta({
    description:
      'User IDs allowed on the admin API (/_synapse/admin/v1/media..., /_hsmedia/admin/v1/...). The generated admin of standalone mode is always one.',
  });

const mediaRulesSchema: RulesSchema = z.strictObject({
  max_idle: duration.nullable().default(null).meta({ description: 'Delete when not used (downloaded, else stored) for this long; null: never.' }),
  max_age: duration.nullable().default(null).meta({ description: 'Delete when stored longer ago than this; null: never.' }),
});

/** `retention`: periodic clean-up (off until a rule is set). */
export const retentionSchema: z.ZodObject<
  {
    interval: z.ZodDefault<DurationSchema>;
    remote_media: z.ZodDefault<RulesSchema>;
    local_media: z.ZodDefault<RulesSchema>;
    remote_cache_max_size: z.ZodDefault<z.ZodNullable<DurationSchema>>;
    keep_profiles: z.ZodDefault<z.ZodBoolean>;
  },
  z.core.$strict
> = z
  .strictObject({
    interval: duration
      .refine((value) => (parseDuration(value) ?? 0) >= 1_000, { error: 'Must be at least 1s' })
      .default('1h')
      .meta({ description: 'How often the clean-up runs (on one instance at a time when the database is shared).' }),
    remote_media: mediaRulesSchema.default({ max_idle: null, max_age: null }).meta({ description: 'Cached media of other servers.' }),
    local_media: mediaRulesSchema
      .default({ max_idle: null, max_age: null })
      .meta({ description: "This server's uploads. Deleting them breaks old messages: think twice." }),
    remote_cache_max_size: byteSize
      .nullable()
      .default(null)
      .meta({ description: 'Space budget of the remote cache; over it, the least recently used remote media goes first. null: none.' }),
    keep_profiles: z
      .boolean()
      .default(true)
      .meta({ description: 'Keep profile media (avatars flagged by the homeserver or an admin) out of every rule, as Synapse keeps avatars.' }),
  })
  .meta({ description: 'Clean-up of the remote cache and of local media by last use, age and space.' });

/** `metrics`: the Prometheus listener. */
export const metricsSchema: z.ZodObject<
  {
    enabled: z.ZodDefault<z.ZodBoolean>;
    listen: z.ZodDefault<z.ZodObject<{ host: z.ZodDefault<z.ZodString>; port: z.ZodDefault<z.ZodNumber> }, z.core.$strict>>;
  },
  z.core.$strict
> = z
  .strictObject({
    enabled: z.boolean().default(false).meta({ description: 'Serve /metrics (and /health) on a separate listener.' }),
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1').meta({ description: 'Address of the metrics listener; keep it private.' }),
        port: z.number().int().min(0).max(65535).default(9102).meta({ description: 'TCP port (0 picks a free one).' }),
      })
      .default({ host: '127.0.0.1', port: 9102 }),
  })
  .meta({ description: 'Prometheus metrics.' });

/** The resolved `metrics` section. */
export interface MetricsConfig {
  readonly enabled: boolean;
  readonly listen: { readonly host: string; readonly port: number };
}

/** Resolves `retention` into a {@link RetentionPolicy} (null rules left out). */
export function resolveRetention(section: z.output<typeof retentionSchema>): RetentionPolicy {
  const ms = (value: number | string | null): number | undefined => (value === null ? undefined : parseDuration(value));
  const entries: [keyof RetentionPolicy, number | undefined][] = [
    ['remoteMaxIdleMs', ms(section.remote_media.max_idle)],
    ['remoteMaxAgeMs', ms(section.remote_media.max_age)],
    ['localMaxIdleMs', ms(section.local_media.max_idle)],
    ['localMaxAgeMs', ms(section.local_media.max_age)],
    ['remoteCacheMaxBytes', section.remote_cache_max_size === null ? undefined : parseByteSize(section.remote_cache_max_size)],
  ];
  return {
    intervalMs: parseDuration(section.interval) ?? 3_600_000,
    ...(section.keep_profiles ? {} : { keepProfiles: false }),
    ...Object.fromEntries(entries.filter(([, value]) => value !== undefined)),
  };
}

/** Resolves `metrics`. */
export function resolveMetrics(section: z.output<typeof metricsSchema>): MetricsConfig {
  return { enabled: section.enabled, listen: { host: section.listen.host, port: section.listen.port } };
}

/** `admin_console`: the browser console at /_hsmedia/admin/ (off by default). */
export const adminConsoleSchema: z.ZodObject<{ enabled: z.ZodDefault<z.ZodBoolean> }, z.core.$strict> = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .meta({ description: 'Serve the moderation and operations console at /_hsmedia/admin/ (sign in with an admin access token).' }),
  })
  .meta({ description: 'The admin console in the browser.' });

/** The resolved `admin_console` section. */
export interface AdminConsoleConfig {
  readonly enabled: boolean;
}
