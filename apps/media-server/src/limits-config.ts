/**
 * The `limits:` and `quotas:` config sections: schemas, defaults and their
 * resolution into `LimitsConfig` and `MediaService` quota options. Pure data
 * (zod and types only): the config loader imports this module; the rate
 * limiters they compose into are built in `limits.ts` when the server starts.
 */
import type { UploadQuotaLimits, UploadQuotaOptions } from '@hsmedia/media-core';
import { z } from 'zod';
import { BYTE_SIZE_PATTERN, parseByteSize } from './byte-size.js';

/** Defaults of the `limits:` section; `config.sample.yaml` documents the same. */
export const LIMITS_DEFAULTS = {
  /** Synapse's `rc_media_create`. */
  create: { per_second: 10, burst: 50 },
  max_pending_uploads: 5,
  unused_expiration: '24h',
  pending_cleanup_interval: '5m',
  max_timeout_ms: 60_000,
  upload_idle_timeout: '60s',
} as const;

const DURATION_RE = /^\s*(\d{1,15})\s*(ms|s|m|h|d|w)\s*$/i;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

function parseDurationMs(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = DURATION_RE.exec(value);
  if (match === null) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2]!.toLowerCase()]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

const DURATION_HINT = 'Expected milliseconds, or a number with a unit (ms, s, m, h, d, w) such as "30m" or "24h"';
const positiveDuration = z
  .union([z.number().int().positive(), z.string().regex(DURATION_RE, { error: DURATION_HINT })], { error: DURATION_HINT })
  .refine((value) => (parseDurationMs(value) ?? 0) > 0, { error: 'Must be a positive duration' });

const SIZE_HINT = 'Expected a size such as 1048576, "512K", "50M" or "1G"';
const byteSize = z.union(
  [
    z.number().int().nonnegative(),
    z
      .string()
      .regex(BYTE_SIZE_PATTERN, { error: SIZE_HINT })
      .refine((value) => !BYTE_SIZE_PATTERN.test(value) || parseByteSize(value) !== undefined, { error: 'Size is too large' }),
  ],
  { error: SIZE_HINT },
);

const rateSchema = z
  .strictObject({
    per_second: z.number().positive().meta({ description: 'Sustained requests per second (fractions allowed: 0.1 = one per 10 s).' }),
    burst: z.number().int().min(1).meta({ description: 'Requests allowed at once after a quiet period.' }),
  })
  .nullable()
  .meta({ description: 'A token bucket; null turns the limit off.' });

const positiveByteSize = byteSize.refine((value) => (typeof value === 'number' ? value : (parseByteSize(value) ?? 1)) > 0, {
  error: 'Must be more than 0 bytes',
});

const byteRateSchema = z
  .strictObject({
    bytes_per_second: positiveByteSize.meta({ description: 'Sustained bytes per second (the refill), e.g. "87K" as Synapse.' }),
    burst_bytes: positiveByteSize.meta({
      description: 'Bucket size in bytes: sent at once after a quiet period, e.g. "500M". A larger file passes on a full bucket and empties it.',
    }),
  })
  .nullable()
  .meta({ description: 'A token bucket over bytes; null (the default) turns the limit off.' });

/** A `limits.download_bytes` bucket as written in the file. */
export interface ByteRateFile {
  readonly bytes_per_second: number | string;
  readonly burst_bytes: number | string;
}

/** `limits.download_bytes` after validation and defaults. */
export interface DownloadBytesFile {
  readonly client: ByteRateFile | null;
  readonly legacy: ByteRateFile | null;
  readonly federation: ByteRateFile | null;
}

const downloadBytesSchema = z
  .strictObject({
    client: byteRateSchema.default(null).meta({ description: 'Client downloads and thumbnails, per user.' }),
    legacy: byteRateSchema
      .default(null)
      .meta({ description: 'Unauthenticated legacy downloads and thumbnails (/_matrix/media/*), per client IP.' }),
    federation: byteRateSchema
      .default(null)
      .meta({ description: 'Federation downloads and thumbnails, per verified X-Matrix origin server.' }),
  })
  .meta({
    description:
      'Download limits in bytes (token buckets, as Synapse remote_media_download_per_second / _burst_count): each answer is charged the bytes it sends (a range its length) before sending; over the budget, 429 M_LIMIT_EXCEEDED with retry_after_ms. Default off.',
  });

/** A `limits:` bucket as written in the file. */
export interface RateFile {
  readonly per_second: number;
  readonly burst: number;
}

/** The `limits:` section after validation and defaults. */
export interface LimitsFile {
  readonly create: RateFile | null;
  readonly upload: RateFile | null;
  readonly download: RateFile | null;
  readonly federation: RateFile | null;
  readonly download_bytes: DownloadBytesFile;
  readonly max_pending_uploads: number;
  readonly unused_expiration: number | string;
  readonly pending_cleanup_interval: number | string;
  readonly max_timeout_ms: number;
  readonly upload_idle_timeout: number | string;
}

/** One quota entry as written in the file. */
export interface QuotaLimitsFile {
  readonly max_bytes?: number | string | null | undefined;
  readonly max_files?: number | null | undefined;
  readonly period_bytes?: number | string | null | undefined;
  readonly period_files?: number | null | undefined;
  readonly period?: number | string | null | undefined;
}

/** The `quotas:` section after validation and defaults. */
export interface QuotasFile {
  readonly default: QuotaLimitsFile;
  readonly users: Readonly<Record<string, QuotaLimitsFile>>;
  readonly info_uri?: string | undefined;
}

/** `limits:` in the config file. */
export const limitsSchema: z.ZodType<LimitsFile, unknown> = z
  .strictObject({
    create: rateSchema.default({ ...LIMITS_DEFAULTS.create }).meta({ description: 'POST /_matrix/media/v1/create, per user.' }),
    upload: rateSchema.default(null).meta({ description: 'POST and PUT uploads, per user. Default off.' }),
    download: rateSchema
      .default(null)
      .meta({ description: 'Client downloads per user (legacy unauthenticated downloads per client IP). Default off.' }),
    federation: rateSchema.default(null).meta({ description: 'Federation media requests, per origin server. Default off.' }),
    download_bytes: downloadBytesSchema.default({ client: null, legacy: null, federation: null }),
    max_pending_uploads: z
      .number()
      .int()
      .nonnegative()
      .default(LIMITS_DEFAULTS.max_pending_uploads)
      .meta({ description: 'Created-but-not-uploaded media IDs a user may hold (more: 429 M_LIMIT_EXCEEDED).' }),
    unused_expiration: positiveDuration
      .default(LIMITS_DEFAULTS.unused_expiration)
      .meta({ description: 'How long a /create ID waits for its upload (unused_expires_at).' }),
    pending_cleanup_interval: positiveDuration
      .default(LIMITS_DEFAULTS.pending_cleanup_interval)
      .meta({ description: 'How often expired /create IDs (never uploaded to) are deleted from the database.' }),
    max_timeout_ms: z
      .number()
      .int()
      .nonnegative()
      .default(LIMITS_DEFAULTS.max_timeout_ms)
      .meta({ description: 'Cap on timeout_ms of downloads waiting for an async upload (default wait 20 s, or this when lower).' }),
    upload_idle_timeout: positiveDuration
      .default(LIMITS_DEFAULTS.upload_idle_timeout)
      .meta({ description: 'Longest silence while a request body (an upload) is arriving; then the connection is closed and nothing is kept.' }),
  })
  .meta({ description: 'Rate limits (shared by every process per cluster.shared_limits) and async upload limits.' });

const quotaLimitsSchema = z.strictObject({
  max_bytes: byteSize.nullable().optional().meta({ description: 'Bytes of media a user may hold in total.' }),
  max_files: z.number().int().nonnegative().nullable().optional().meta({ description: 'Media items a user may hold in total.' }),
  period_bytes: byteSize.nullable().optional().meta({ description: 'Bytes a user may upload per `period`.' }),
  period_files: z.number().int().nonnegative().nullable().optional().meta({ description: 'Items a user may upload per `period`.' }),
  period: positiveDuration.nullable().optional().meta({ description: 'The sliding window of period_bytes and period_files.' }),
});

/** Matrix user ID: `@localpart:server_name`. */
const USER_ID_RE = /^@[\x21-\x39\x3B-\x7E]+:[^\s]+$/;

/** `quotas:` in the config file. */
export const quotasSchema: z.ZodType<QuotasFile, unknown> = z
  .strictObject({
    default: quotaLimitsSchema.default({}).meta({ description: 'Limits of every user without an entry in `users`.' }),
    users: z
      .record(z.string().regex(USER_ID_RE, { error: 'Expected a user ID such as "@alice:example.org"' }), quotaLimitsSchema)
      .default({})
      .meta({ description: 'Per-user limits; each field overrides `default` (null lifts a limit).' }),
    info_uri: z
      .url({ protocol: /^https?$/ })
      .optional()
      .meta({ description: 'When set, refusals are 403 M_USER_LIMIT_EXCEEDED with this info_uri (spec v1.18); else 403 M_FORBIDDEN.' }),
  })
  .superRefine((quotas, ctx) => {
    const entries: [string[], QuotaLimitsFile][] = [
      [['default'], quotas.default],
      ...Object.entries(quotas.users).map(([user, limits]): [string[], QuotaLimitsFile] => [['users', user], limits]),
    ];
    for (const [path, limits] of entries) {
      const fallback = path[0] === 'users' ? quotas.default : {};
      const period = limits.period !== undefined ? limits.period : fallback.period;
      const periodic = [limits.period_bytes ?? fallback.period_bytes, limits.period_files ?? fallback.period_files];
      if ((period === undefined || period === null) && periodic.some((value) => value !== undefined && value !== null)) {
        ctx.addIssue({ code: 'custom', path: [...path, 'period'], message: 'Required when period_bytes or period_files is set' });
      }
    }
  })
  .meta({ description: 'Per-user upload quotas, checked before the bytes are kept.' });

/** One bucket of `limits:`. */
export interface RateConfig {
  readonly perSecond: number;
  readonly burst: number;
}

/** The resolved `limits:` section. */
export interface LimitsConfig {
  readonly create: RateConfig | null;
  readonly upload: RateConfig | null;
  readonly download: RateConfig | null;
  readonly federation: RateConfig | null;
  /** Download byte budgets (`download_bytes`): tokens are bytes. */
  readonly downloadBytes: {
    readonly client: RateConfig | null;
    readonly legacy: RateConfig | null;
    readonly federation: RateConfig | null;
  };
  readonly maxPendingUploads: number;
  readonly unusedExpirationMs: number;
  /** How often the job deleting expired, never-uploaded `/create` records runs. */
  readonly pendingCleanupIntervalMs: number;
  readonly maxTimeoutMs: number;
  /** Longest silence while a request body is arriving (`upload_idle_timeout`). */
  readonly uploadIdleTimeoutMs: number;
}

/** The resolved `quotas:` section, in `MediaService`'s terms; undefined when no limit is set. */
export type QuotasConfig = UploadQuotaOptions | undefined;

function rateOf(rate: RateFile | null): RateConfig | null {
  return rate === null ? null : { perSecond: rate.per_second, burst: rate.burst };
}

function byteRateOf(rate: ByteRateFile | null): RateConfig | null {
  if (rate === null) return null;
  const bytes = (value: number | string): number => (typeof value === 'number' ? value : parseByteSize(value)!);
  return { perSecond: bytes(rate.bytes_per_second), burst: bytes(rate.burst_bytes) };
}

/** Turns the validated `limits:` section into {@link LimitsConfig}. */
export function resolveLimitsConfig(file: LimitsFile): LimitsConfig {
  return {
    create: rateOf(file.create),
    upload: rateOf(file.upload),
    download: rateOf(file.download),
    federation: rateOf(file.federation),
    downloadBytes: {
      client: byteRateOf(file.download_bytes.client),
      legacy: byteRateOf(file.download_bytes.legacy),
      federation: byteRateOf(file.download_bytes.federation),
    },
    maxPendingUploads: file.max_pending_uploads,
    unusedExpirationMs: parseDurationMs(file.unused_expiration)!,
    pendingCleanupIntervalMs: parseDurationMs(file.pending_cleanup_interval)!,
    maxTimeoutMs: file.max_timeout_ms,
    uploadIdleTimeoutMs: parseDurationMs(file.upload_idle_timeout)!,
  };
}

function quotaLimitsOf(limits: QuotaLimitsFile): UploadQuotaLimits {
  const bytes = (value: number | string | null | undefined): number | null | undefined =>
    value === undefined || value === null ? value : parseByteSize(value)!;
  const out: { -readonly [K in keyof UploadQuotaLimits]: UploadQuotaLimits[K] } = {};
  const maxBytes = bytes(limits.max_bytes);
  const periodBytes = bytes(limits.period_bytes);
  if (maxBytes !== undefined) out.maxBytes = maxBytes;
  if (limits.max_files !== undefined) out.maxFiles = limits.max_files;
  if (periodBytes !== undefined) out.periodBytes = periodBytes;
  if (limits.period_files !== undefined) out.periodFiles = limits.period_files;
  if (limits.period !== undefined) out.periodMs = limits.period === null ? null : parseDurationMs(limits.period)!;
  return out;
}

/** Turns the validated `quotas:` section into `MediaService` quota options (undefined: no quotas). */
export function resolveQuotasConfig(file: QuotasFile): QuotasConfig {
  const users = Object.fromEntries(Object.entries(file.users).map(([user, limits]) => [user, quotaLimitsOf(limits)]));
  const defaults = quotaLimitsOf(file.default);
  if (Object.keys(defaults).length === 0 && Object.keys(users).length === 0) return undefined;
  return { default: defaults, users, ...(file.info_uri === undefined ? {} : { infoUri: file.info_uri }) };
}
