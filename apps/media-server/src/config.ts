/**
 * The config file: its zod schema, defaults, validation messages and resolution into the runtime
 * config. (Past 450 lines on purpose: the schema and the type it yields stay in one module, since
 * isolatedDeclarations would otherwise need the inferred zod types written out by hand.)
 *
 * Every one-shot command loads this module, so it imports only config parts (`*-config.ts`, the
 * `./config` subpaths of the thumbnailer and the URL previewer), never a runtime package such as
 * sharp, the previewer, the routes or the SQL drivers; test/cli-lazy-loading.test.ts holds it to that.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { isValidServerName } from '@hsmedia/media-core';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { BYTE_SIZE_PATTERN, parseByteSize } from './byte-size.js';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import { parseAddressRange } from './http-edge.js';
import { clusterSchema, resolveClusterConfig, type ClusterConfig } from './cluster-config.js';
import { limitsSchema, quotasSchema, resolveLimitsConfig, resolveQuotasConfig, type LimitsConfig, type QuotasConfig } from './limits-config.js';
import { adminConsoleSchema, adminsSchema, metricsSchema, resolveMetrics, resolveRetention, retentionSchema, type AdminConsoleConfig, type MetricsConfig } from './operations-config.js';
import type { RetentionPolicy } from './retention.js';
import { DEFAULT_APPLICATION_NAME, POSTGRES_DEFAULTS, resolvePostgresDatabase, type DatabaseConfig } from './database-config.js';
import {
  DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST,
  URL_PREVIEW_DEFAULTS,
  resolveUrlPreviewConfig,
  urlPreviewConfigProblems,
  type UrlPreviewConfig,
} from './url-preview-config.js';
import { DEFAULT_MAX_THUMBNAIL_DIMENSION, DEFAULT_THUMBNAIL_SIZES } from '@hsmedia/thumbnailer/config';
import type { AccessPolicyConfig } from './access-policy.js';
import { THUMBNAILS_DEFAULTS, resolveThumbnailsConfig, type ThumbnailsConfig } from './thumbnails-config.js';
import type { ScanningConfig } from './scanning.js';
import { homeserverAuthOptions, onlyWithHomeserver, resolveHomeserverAuthExtras, type HomeserverAuthExtras } from './homeserver-auth-config.js';
import { synapseSectionSchema, withSynapseSettings } from './synapse-config.js';
import { resolveSynapseReadThroughConfig, synapseReadThroughSchema, type SynapseReadThroughConfig } from './synapse-read-through-config.js';

/** The log levels pino knows, most to least verbose, plus `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A log level accepted by `log_level`. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Matrix user ID: `@localpart:server_name` (spec appendix "User Identifiers"; historical localparts allowed). */
const USER_ID_RE = /^@[\x21-\x39\x3B-\x7E]+:[^\s]+$/;

/** Values written into the schema as defaults; `config.sample.yaml` documents the same. */
const DEFAULTS = {
  server_name: 'localhost',
  host: '127.0.0.1',
  port: 8008,
  sqlite_path: './data/media.db',
  media_path: './data/media',
  signing_key_path: './data/signing.key',
  max_upload_size: '50M',
  log_level: 'info',
  log_buffer_size: '16M',
  cache_max_bytes: '64M',
  cache_max_item_bytes: '64K',
  shutdown_timeout_ms: 10_000,
  federation_connect_timeout_ms: 10_000,
  federation_request_timeout_ms: 30_000,
  federation_failure_cache_ms: 30_000,
  federation_fetch_deadline: '2m',
  federation_min_download_rate: '4K',
} as const;

const SIZE_HINT = 'Expected a size such as 1048576, "512K", "50M", "100MiB" or "1G"';
const byteSize = z
  .union(
    [
      z.number().int().nonnegative(),
      z
        .string()
        .regex(BYTE_SIZE_PATTERN, { error: SIZE_HINT })
        // Only a well-formed size can be too large; the pattern reports the rest.
        .refine((value) => !BYTE_SIZE_PATTERN.test(value) || parseByteSize(value) !== undefined, {
          error: 'Size is too large',
        }),
    ],
    { error: SIZE_HINT },
  )
  .meta({ description: 'Bytes as an integer, or a string with a binary unit: K/KB/KiB = 1024, M = 1024², G = 1024³, T = 1024⁴.' });

const DURATION_HINT = 'Expected milliseconds, or a number with a unit (ms, s, m, h, d, w) such as "90s" or "2m"';
const positiveDuration = z
  .union([z.number().int().positive(), z.string().regex(DURATION_PATTERN, { error: DURATION_HINT })], { error: DURATION_HINT })
  .refine((value) => (parseDuration(value) ?? 0) > 0, { error: 'Must be a positive duration' });

/**
 * Requires exactly one of `keys` to be present. Runs even when the branches
 * have their own problems, so that every problem is reported in one go.
 */
function exactlyOne<T extends object>(keys: readonly string[]) {
  return [
    (value: T) => keys.filter((key) => (value as Record<string, unknown>)[key] !== undefined).length === 1,
    {
      error: `Set exactly one of ${keys.map((key) => `\`${key}\``).join(', ')}`,
      when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null,
    },
  ] as const;
}

/** `database.postgres`. The URL is a secret (it holds the password): no message echoes it. */
const postgresDatabaseSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^postgres(?:ql)?:\/\/\S+$/, { error: 'Expected a postgres:// or postgresql:// URL' })
      .refine((value) => URL.canParse(value), { error: 'Expected a postgres:// or postgresql:// URL' })
      .meta({ description: 'postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters; ?sslmode=... goes to pg).' }),
    pool: z
      .strictObject({
        min: z.number().int().nonnegative().default(POSTGRES_DEFAULTS.pool_min).meta({ description: 'Connections kept open while idle.' }),
        max: z.number().int().positive().default(POSTGRES_DEFAULTS.pool_max).meta({ description: 'Most connections this instance opens.' }),
      })
      .refine((pool) => pool.min <= pool.max, { error: '`min` must not exceed `max`' })
      .default({ min: POSTGRES_DEFAULTS.pool_min, max: POSTGRES_DEFAULTS.pool_max }),
    statement_timeout_ms: z
      .number()
      .int()
      .nonnegative()
      .default(POSTGRES_DEFAULTS.statement_timeout_ms)
      .meta({ description: 'statement_timeout of every connection; 0 disables.' }),
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, { error: 'Expected a schema name such as "media"' })
      .optional()
      .meta({ description: "Schema of the tables (it must exist); default the role's search_path." }),
    application_name: z
      .string()
      .regex(/^[\x20-\x7E]{1,63}$/, { error: 'Expected 1 to 63 printable ASCII characters' })
      .default(DEFAULT_APPLICATION_NAME)
      .meta({ description: 'application_name in pg_stat_activity; give each instance its own to tell them apart.' }),
  })
  .meta({ description: 'PostgreSQL: for several instances sharing one database and media directory.' });

const databaseSchema = z
  .strictObject({
    sqlite: z
      .strictObject({ path: z.string().min(1).default(DEFAULTS.sqlite_path).meta({ description: 'SQLite database file.' }) })
      .optional(),
    postgres: postgresDatabaseSchema.optional(),
  })
  .refine(...exactlyOne(['sqlite', 'postgres']))
  .default({ sqlite: { path: DEFAULTS.sqlite_path } })
  .meta({ description: 'Where media metadata lives. Exactly one backend.' });

const s3MediaStoreSchema = z
  .strictObject({
    endpoint: z.url({ protocol: /^https?$/ }).optional().meta({ description: 'Service URL, e.g. http://127.0.0.1:7480; absent: AWS S3.' }),
    region: z.string().min(1).default('us-east-1').meta({ description: 'Signing region.' }),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: 'Expected an S3 bucket name' }),
    prefix: z
      .string()
      .regex(/^(?:[A-Za-z0-9!_.*'()-]+\/?)*$/, { error: 'Expected safe S3 key characters, no leading or doubled "/"' })
      .default('')
      .meta({ description: 'Key prefix, so that several deployments can share a bucket.' }),
    force_path_style: z.boolean().default(false).meta({ description: 'host/bucket/key URLs (Ceph RGW, MinIO, Garage).' }),
    access_key_id: z.string().min(1).optional().meta({ description: 'Default: AWS_ACCESS_KEY_ID (the AWS SDK default chain).' }),
    secret_access_key: z.string().min(1).optional().meta({ description: 'Default: AWS_SECRET_ACCESS_KEY.' }),
    request_timeout_ms: z.number().int().positive().default(30_000).meta({ description: 'A request silent this long fails (503).' }),
    local_cache: z
      .strictObject({
        path: z.string().min(1).meta({ description: 'Directory of the cache (this instance only; created when missing).' }),
        max_size: byteSize.meta({ description: 'Most bytes kept; least recently read blobs are evicted first.' }),
      })
      .optional()
      .meta({ description: 'A local disk cache in front of the bucket: blobs read here are kept (up to max_size) and served at local-disk speed.' }),
  })
  .refine((s3) => (s3.access_key_id === undefined) === (s3.secret_access_key === undefined), {
    error: 'Give access_key_id and secret_access_key together (or neither, to read the AWS environment variables)',
    path: ['secret_access_key'],
  })
  .meta({ description: 'S3-compatible object storage: several instances share the bucket, no shared directory needed.' });

const mediaStoreSchema = z
  .strictObject({
    filesystem: z
      .strictObject({ path: z.string().min(1).default(DEFAULTS.media_path).meta({ description: 'Directory for media files.' }) })
      .optional(),
    s3: s3MediaStoreSchema.optional(),
  })
  .refine(...exactlyOne(['filesystem', 's3']))
  .default({ filesystem: { path: DEFAULTS.media_path } })
  .meta({ description: 'Where media bytes live. Exactly one backend.' });

const authSchema = z
  .strictObject({
    tokens: z
      .record(
        z.string().regex(/^\S+$/, { error: 'Access tokens cannot be empty or contain spaces' }),
        z.string().regex(USER_ID_RE, { error: 'Expected a Matrix user ID such as "@alice:example.org"' }),
      )
      .refine((tokens) => Object.keys(tokens).length > 0, {
        error: 'Expected at least one token (leave out `auth` to get a generated admin token)',
      })
      .optional()
      .meta({ description: 'Standalone mode: a table of access token to user ID.' }),
    homeserver_url: z
      .url({ protocol: /^https?$/, error: 'Expected an http:// or https:// URL' })
      .optional()
      .meta({ description: "Homeserver mode: check tokens with this homeserver's /_matrix/client/v3/account/whoami." }),
    ...homeserverAuthOptions,
  })
  .refine(...exactlyOne(['tokens', 'homeserver_url']))
  .refine(...onlyWithHomeserver)
  .optional()
  .meta({ description: 'How access tokens are checked. Leave out for a generated admin token.' });

/** An IPv4/IPv6 address or CIDR; net-guard checks the details when the server starts. */
const cidr = z.string().regex(/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/, { error: 'Expected an IP address or CIDR such as "127.0.0.1/32"' });

const serverNameSchema = z
  .string()
  .refine(isValidServerName, { error: 'Expected a server name such as "example.org" or "example.org:8448"' });

const federationSchema = z
  .strictObject({
    destinations: z
      .record(
        serverNameSchema,
        z
          .url({ protocol: /^https?$/, error: 'Expected an http:// or https:// base URL' })
          .refine((url) => /^https?:\/\/[^/?#]+\/?$/.test(url), { error: 'Expected a base URL without a path, e.g. "https://10.0.0.5:8448"' }),
      )
      .default({})
      .meta({ description: 'Server name -> base URL, skipping server discovery (tests, private federations).' }),
    ip_range_allowlist: z
      .array(cidr)
      .default([])
      .meta({ description: 'Non-public addresses that outbound federation may connect to anyway (e.g. 127.0.0.1/32 in tests).' }),
    ip_range_denylist: z
      .array(cidr)
      .default([])
      .meta({ description: 'Public addresses refused on top of the built-in non-public ranges.' }),
    ca_file: z.string().min(1).optional().meta({ description: "PEM file of extra CA certificates trusted for federation TLS." }),
    max_download_size: byteSize.optional().meta({ description: 'Largest remote media fetched and cached; default max_upload_size.' }),
    connect_timeout_ms: z.number().int().positive().default(DEFAULTS.federation_connect_timeout_ms),
    request_timeout_ms: z
      .number()
      .int()
      .positive()
      .default(DEFAULTS.federation_request_timeout_ms)
      .meta({ description: 'Longest silence while reading a federation response (idle timeout).' }),
    failure_cache_ms: z
      .number()
      .int()
      .nonnegative()
      .default(DEFAULTS.federation_failure_cache_ms)
      .meta({ description: 'How long a failed remote fetch is remembered per media item; 0 disables.' }),
    fetch_deadline: positiveDuration
      .default(DEFAULTS.federation_fetch_deadline)
      .meta({ description: 'Longest a whole remote fetch (discovery, headers and body) may take, however steadily it trickles.' }),
    min_download_rate: byteSize
      .default(DEFAULTS.federation_min_download_rate)
      .meta({ description: 'Bytes per second a remote body must average once started (a slower remote is cut); 0 disables.' }),
    trusted_key_servers: z
      .array(
        z.strictObject({
          server_name: serverNameSchema,
          verify_keys: z.record(z.string().regex(/^ed25519:\w+$/, { error: 'Expected a key ID such as "ed25519:auto"' }), z.string().min(1)),
        }),
      )
      .default([])
      .meta({ description: 'Notaries asked for keys a server does not give itself (Synapse trusted_key_servers).' }),
    deny_origins: z.array(serverNameSchema).default([]).meta({ description: 'Servers refused (403) on the federation endpoints.' }),
  })
  .meta({ description: 'Serving our media to other servers and fetching theirs.' });

const nonNegativeDuration = z
  .union([z.number().int().nonnegative(), z.string().regex(DURATION_PATTERN, { error: DURATION_HINT })], { error: DURATION_HINT })
  .refine((value) => parseDuration(value) !== undefined, { error: 'Duration is too long' });

/** `access_policy`: who media is served to and whose media is fetched (the MSC3911 direction; see access-policy.ts). */
const accessPolicySchema = z
  .strictObject({
    deny_serving_to: z
      .array(serverNameSchema)
      .default([])
      .meta({ description: 'Servers refused (403 M_FORBIDDEN) when they ask for our media over federation.' }),
    prevent_downloads_from: z
      .array(serverNameSchema)
      .default([])
      .meta({
        description:
          "Servers whose media is never fetched (Synapse's prevent_media_downloads_from): uncached media of theirs is 404 without contacting them; media already cached is still served.",
      }),
    http: z
      .strictObject({
        url: z.url({ protocol: /^https?$/, error: 'Expected an http:// or https:// URL' }).meta({
          description: 'Asked with POST {user_id | origin, legacy, mxc, purpose} before media is served; answers {allow, errcode?, error?}.',
        }),
        cache_ttl: nonNegativeDuration.default('1m').meta({ description: 'How long an answer is reused per user or server, media and purpose; 0 asks every time.' }),
        timeout: positiveDuration.default('5s').meta({ description: 'Longest wait for an answer; slower is refused (504), never served.' }),
        token: z.string().min(1).optional().meta({ description: 'Sent as Authorization: Bearer, so the endpoint knows who asks.' }),
      })
      .optional()
      .meta({ description: 'An HTTP endpoint that decides per request (fails closed: down or nonsense is 502, slow is 504).' }),
  })
  .meta({ description: 'Access policy: applied after quarantine and the legacy freeze, on every download and thumbnail.' });

const scanPolicy = z.enum(['fail_closed', 'serve']);

/** `scanning`: the virus scan with clamd between "stored" and "visible" (off when absent; see scanning.ts). */
const scanningSchema = z
  .strictObject({
    clamd: z
      .union([
        z.strictObject({ socket: z.string().min(1).meta({ description: "clamd's LocalSocket (e.g. /run/clamav/clamd.ctl)." }) }),
        z.strictObject({
          host: z.enum(['127.0.0.1', '::1', 'localhost']).default('127.0.0.1').meta({ description: 'Loopback only: clamd has no authentication.' }),
          port: z.number().int().min(1).max(65535).meta({ description: "clamd's TCPSocket." }),
        }),
      ])
      .meta({ description: 'Where clamd listens: { socket } or { host, port }.' }),
    max_size: byteSize.optional().meta({ description: 'Largest media scanned; larger follows on_oversize. Default: no limit of ours (clamd\'s StreamMaxLength applies).' }),
    on_oversize: scanPolicy.default('fail_closed').meta({ description: 'fail_closed: never served; serve: served unscanned (logged, counted).' }),
    on_error: scanPolicy.default('fail_closed').meta({ description: 'clamd down, slow or garbled. fail_closed: not served, retried later; serve: served unscanned (logged, counted).' }),
    timeout: positiveDuration.default('60s').meta({ description: 'Longest scan of one item.' }),
    concurrency: z.number().int().min(1).max(64).default(2).meta({ description: 'Scans at once per instance.' }),
    retry_interval: positiveDuration.default('1m').meta({ description: 'How often failed scans are retried.' }),
    rescan_on_update: z.boolean().default(true).meta({ description: 'Rescan clean media when clamd reports a new signature version (VERSION).' }),
    version_poll_interval: positiveDuration.default('5m').meta({ description: 'How often clamd is asked for its VERSION.' }),
    rescans_per_second: z.number().int().min(1).default(10).meta({ description: 'Rate limit of rescans after a signature update.' }),
  })
  .meta({ description: 'Virus scanning: media is served only after clamd finds it clean; readers wait (timeout_ms, then 504 M_NOT_YET_UPLOADED).' });

/** One `url_preview.url_denylist` rule: a URL is refused when every component it names matches. */
const urlDenyRuleSchema = z
  .strictObject({
    scheme: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.union([z.number().int().min(1).max(65535), z.string().min(1)]).optional(),
    path: z.string().min(1).optional(),
    url: z.string().min(1).optional(),
  })
  .refine((rule) => Object.values(rule).some((value) => value !== undefined), {
    error: 'Name at least one of `scheme`, `host`, `port`, `path`, `url`',
  })
  .meta({ description: 'Globs (`*`, `?`), or regular expressions when they start with `^`; case-insensitive.' });

const urlPreviewSchema = z
  .strictObject({
    enabled: z.boolean().default(false).meta({ description: 'Serve preview_url (off: 404 M_UNRECOGNIZED, as Synapse).' }),
    ip_range_denylist: z
      .array(cidr)
      .default(() => [...DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST])
      .meta({ description: 'Addresses previews never connect to. Default: every non-public range. Must not be empty while enabled.' }),
    ip_range_allowlist: z
      .array(cidr)
      .default([])
      .meta({ description: 'Non-public addresses previews may connect to anyway (e.g. 127.0.0.1/32 in tests).' }),
    url_denylist: z.array(urlDenyRuleSchema).default([]).meta({ description: 'URLs never fetched (requested URL and every redirect).' }),
    max_page_size: byteSize.default(URL_PREVIEW_DEFAULTS.max_page_size).meta({ description: 'HTML bytes read at most.' }),
    max_image_size: byteSize
      .default(URL_PREVIEW_DEFAULTS.max_image_size)
      .meta({ description: 'Largest preview image (also capped at max_upload_size).' }),
    user_agent: z.string().min(1).optional().meta({ description: 'User-Agent of preview fetches.' }),
    accept_language: z.string().min(1).optional().meta({ description: 'Accept-Language of preview fetches (default "en").' }),
    timeout_ms: z.number().int().positive().default(URL_PREVIEW_DEFAULTS.timeout_ms).meta({ description: 'Per fetch, body included.' }),
    cache_ttl_ms: z
      .number()
      .int()
      .nonnegative()
      .default(URL_PREVIEW_DEFAULTS.cache_ttl_ms)
      .meta({ description: 'How long a preview is cached in memory; 0 disables.' }),
    oembed: z
      .strictObject({
        providers_file: z.string().min(1).optional().meta({ description: 'oembed.com providers.json replacing the bundled list.' }),
        discovery: z.boolean().default(true).meta({ description: 'Follow oEmbed discovery links in pages.' }),
      })
      .default({ discovery: true }),
  })
  // Checked here (not only at start) so that check-config reports them, each under its key.
  .superRefine((section, ctx) => {
    for (const problem of urlPreviewConfigProblems(resolveUrlPreviewConfig(section, (path) => path))) {
      ctx.addIssue({ code: 'custom', path: [...problem.path], message: problem.message });
    }
  })
  .meta({ description: 'URL previews (preview_url): SSRF settings and limits.' });

const thumbnailSizeSchema = z.strictObject({
  width: z.number().int().min(1).max(DEFAULT_MAX_THUMBNAIL_DIMENSION),
  height: z.number().int().min(1).max(DEFAULT_MAX_THUMBNAIL_DIMENSION),
  method: z.enum(['crop', 'scale']),
  animated: z.boolean().default(false),
});

const thumbnailsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Serve thumbnails (off: 400 M_UNKNOWN "Cannot generate thumbnails").' }),
    dynamic: z
      .boolean()
      .default(false)
      .meta({ description: 'Generate (and store) any requested size on demand; off: answer with the best of `sizes`.' }),
    sizes: z
      .array(thumbnailSizeSchema)
      .default(() => DEFAULT_THUMBNAIL_SIZES.map((size) => ({ ...size })))
      .meta({ description: 'Sizes generated once per image, off the request path. Default: the five sizes the spec recommends (client-server API, Thumbnails).' }),
    max_source_size: byteSize
      .refine((value) => (parseByteSize(value) ?? 0) > 0, { error: 'Must be more than 0' })
      .default(THUMBNAILS_DEFAULTS.max_source_size)
      .meta({ description: 'Largest image thumbnailed (bigger: 413 M_TOO_LARGE, 502 for remote media).' }),
    max_pixels: z
      .number()
      .int()
      .positive()
      .default(THUMBNAILS_DEFAULTS.max_pixels)
      .meta({ description: 'Largest width × height decoded (read from the header first: decompression bombs never decode).' }),
    max_concurrent: z
      .number()
      .int()
      .positive()
      .optional()
      .meta({ description: 'Thumbnail jobs at once (requests and background together); default the CPU cores.' }),
    remote_thumbnail_first: z
      .boolean()
      .default(true)
      .meta({
        description:
          "Thumbnail requests for uncached remote media ask the remote's federation thumbnail endpoint first instead of fetching the original.",
      }),
  })
  .meta({ description: 'Thumbnails (client-server API, Thumbnails): pre-generated sizes, dynamic sizes, limits.' });

/**
 * The YAML config file, as written by operators (snake_case keys, units as
 * strings). Every object is strict: an unknown key is an error.
 */
const configFileSchema = z
  .strictObject({
    server_name: z
      .string()
      .refine(isValidServerName, { error: 'Expected a server name such as "example.org" or "example.org:8448"' })
      .default(DEFAULTS.server_name)
      .meta({ description: 'The server name in mxc:// URIs this server hands out.' }),
    listen: z
      .strictObject({
        host: z.string().min(1).default(DEFAULTS.host).meta({ description: 'Address to bind.' }),
        port: z.number().int().min(0).max(65535).default(DEFAULTS.port).meta({ description: 'TCP port (0 picks a free one).' }),
        trusted_proxies: z
          .array(z.string().refine((value) => parseAddressRange(value) !== undefined, { error: 'Expected an IP address or CIDR such as "10.0.0.0/8"' }))
          .default([])
          .meta({
            description:
              'Reverse proxies whose X-Forwarded-For is believed (addresses or CIDRs). The client IP (per-IP limits of legacy downloads) is the nearest hop not listed. Default none: X-Forwarded-For is ignored.',
          }),
      })
      .default({ host: DEFAULTS.host, port: DEFAULTS.port, trusted_proxies: [] }),
    database: databaseSchema,
    media_store: mediaStoreSchema,
    dedup: z
      .strictObject({
        enabled: z.boolean().default(false).meta({
          description:
            'Store each distinct content once: new blobs are named by their SHA-256 and counted in the database (blob_refs); blobs stored before keep working. Run `hsmedia-server dedup` to merge existing duplicates.',
        }),
        orphan_grace: positiveDuration.default('1h').meta({
          description: 'How long a stored blob nothing references yet is spared (uploads between storing and recording), and the age before the orphan sweep removes an unreferenced object.',
        }),
        orphan_sweep_interval: positiveDuration.default('6h').meta({ description: 'How often one instance sweeps orphaned blobs (a lease job).' }),
      })
      .default({ enabled: false, orphan_grace: '1h', orphan_sweep_interval: '6h' })
      .meta({ description: 'Content-addressed blob deduplication (filesystem and S3).' }),
    delivery: z
      .enum(['proxy', 'redirect', 'x_accel'])
      .default('proxy')
      .meta({
        description:
          'redirect: downloads and thumbnails answer 307 to a presigned storage URL valid 5 minutes, federation answers a Location part (media_store.s3 only; legacy endpoints only with allow_redirect=true). x_accel: downloads and thumbnails answer X-Accel-Redirect to x_accel_location for nginx to send the file (media_store.filesystem only).',
      }),
    x_accel_location: z
      .string()
      .regex(/^\/[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/$/, { error: 'Expected a URI prefix such as "/_hsmedia_accel/"' })
      .default('/_hsmedia_accel/')
      .meta({
        description:
          'delivery: x_accel: the nginx `internal` location whose alias is media_store.filesystem.path; the server answers X-Accel-Redirect: <this><path of the blob under the store root>.',
      }),
    signing_key_path: z
      .string()
      .min(1)
      .default(DEFAULTS.signing_key_path)
      .meta({ description: "Synapse-format signing key file; created when missing, except in homeserver mode: there it must be the homeserver's own key file." }),
    max_upload_size: byteSize.default(DEFAULTS.max_upload_size),
    auth: authSchema,
    legacy_media: z
      .strictObject({
        freeze: z.boolean().default(true).meta({
          description:
            'Store new uploads (and newly cached remote media) as authenticated-only: never served on /_matrix/media/v3/*. Media stored before stays reachable there. false opts out.',
        }),
      })
      .default({ freeze: true }),
    log_level: z.enum(LOG_LEVELS).default(DEFAULTS.log_level),
    log_buffer_size: byteSize
      .refine((value) => (parseByteSize(value) ?? 0) >= 65_536, { error: 'Must be at least 64K' })
      .default(DEFAULTS.log_buffer_size)
      .meta({ description: 'Most log bytes waiting for a slow stdout; beyond, lines are dropped and counted (hsmedia_log_lines_dropped_total).' }),
    access_log_sample_rate: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .meta({ description: 'Fraction of successful request lines (status below 400) written to the access log; errors and aborted requests always are.' }),
    media_cache: z
      .strictObject({
        max_bytes: byteSize.default(DEFAULTS.cache_max_bytes).meta({ description: 'In-memory cache budget; 0 disables.' }),
        max_item_bytes: byteSize.default(DEFAULTS.cache_max_item_bytes).meta({ description: 'Largest item cached.' }),
      })
      .default({ max_bytes: DEFAULTS.cache_max_bytes, max_item_bytes: DEFAULTS.cache_max_item_bytes }),
    shutdown_timeout_ms: z
      .number()
      .int()
      .nonnegative()
      .default(DEFAULTS.shutdown_timeout_ms)
      .meta({ description: 'On SIGTERM/SIGINT, how long in-flight requests may finish before connections are cut.' }),
    federation: federationSchema.default(() => federationSchema.parse({})),
    limits: limitsSchema.default(() => limitsSchema.parse({})),
    quotas: quotasSchema.default(() => quotasSchema.parse({})),
    url_preview: urlPreviewSchema.default(() => urlPreviewSchema.parse({})),
    admins: adminsSchema,
    synapse: synapseSectionSchema,
    retention: retentionSchema.default(() => retentionSchema.parse({})),
    metrics: metricsSchema.default(() => metricsSchema.parse({})),
    workers: z
      .union([z.number().int().min(1).max(256), z.literal('auto')])
      .default('auto')
      .meta({
        description:
          'Server processes sharing the listen port (node:cluster), supervised by the main process; `auto` (the default): one per core. 1 runs a single process.',
      }),
    thumbnails: thumbnailsSchema.default(() => thumbnailsSchema.parse({})),
    access_policy: accessPolicySchema.default(() => accessPolicySchema.parse({})),
    scanning: scanningSchema.optional(),
    admin_console: adminConsoleSchema.default({ enabled: false }),
    cluster: clusterSchema.default(() => clusterSchema.parse({})),
    synapse_read_through: synapseReadThroughSchema.optional(),
  })
  .superRefine((file, ctx) => {
    if (file.delivery === 'x_accel' && file.media_store.filesystem === undefined) {
      ctx.addIssue({ code: 'custom', path: ['delivery'], message: 'x_accel needs media_store.filesystem (nginx sends files of that directory)' });
    }
  })
  .meta({ title: 'hsmedia-server configuration' });

/** The config file's shape after validation and defaults. */
type ConfigFile = z.output<typeof configFileSchema>;

/** How access tokens are checked. */
export type AuthConfig =
  /** Standalone: a fixed table (from the config). */
  | { readonly kind: 'tokens'; readonly tokens: Readonly<Record<string, string>> }
  /** Standalone: one admin token, generated on first start and kept in `tokenPath`. */
  | { readonly kind: 'generated'; readonly userId: string; readonly tokenPath: string }
  /** Beside a homeserver: ask its whoami endpoint (and, with `homeserverAdmins`, its admin API). */
  | ({ readonly kind: 'homeserver'; readonly homeserverUrl: string } & HomeserverAuthExtras);

/** Where media bytes live (`media_store`). */
export type MediaStoreConfig =
  | { readonly kind: 'filesystem'; readonly path: string }
  | {
      readonly kind: 's3';
      readonly endpoint: string | undefined;
      readonly region: string;
      readonly bucket: string;
      readonly prefix: string;
      readonly forcePathStyle: boolean;
      /** Both or neither; neither: the AWS SDK's default chain (`AWS_ACCESS_KEY_ID`, …). */
      readonly accessKeyId: string | undefined;
      readonly secretAccessKey: string | undefined;
      readonly requestTimeoutMs: number;
      /** `local_cache`: absolute directory and most bytes. */
      readonly localCache?: { readonly path: string; readonly maxBytes: number };
    };

/** The resolved configuration `startServer` runs with: absolute paths, sizes in bytes. */
export interface MediaServerConfig {
  readonly serverName: string;
  readonly listen: {
    readonly host: string;
    readonly port: number;
    /** Proxies whose `X-Forwarded-For` hops are believed (addresses or CIDRs); empty: the socket address is the client. */
    readonly trustedProxies: readonly string[];
  };
  readonly database: DatabaseConfig;
  readonly mediaStore: MediaStoreConfig;
  /** `dedup`: content-addressed blobs. */
  readonly dedup: { readonly enabled: boolean; readonly orphanGraceMs: number; readonly orphanSweepIntervalMs: number };
  /**
   * `redirect`: downloads and thumbnails answer 307 to the blob store's direct URL when it has one (federation:
   * a `Location` part); `x_accel`: they answer `X-Accel-Redirect` to {@link MediaServerConfig.xAccelLocation}.
   */
  readonly delivery: 'proxy' | 'redirect' | 'x_accel';
  /** The nginx `internal` location prefix of `delivery: x_accel` (starts and ends with `/`). */
  readonly xAccelLocation: string;
  readonly signingKeyPath: string;
  readonly maxUploadBytes: number;
  readonly auth: AuthConfig;
  readonly legacyMedia: { readonly freeze: boolean };
  readonly logLevel: LogLevel;
  /** Bound of the log buffer (`log_buffer_size`). */
  readonly logBufferBytes: number;
  /** `access_log_sample_rate`: fraction of successful request lines written. */
  readonly accessLogSampleRate: number;
  readonly mediaCache: { readonly maxBytes: number; readonly maxItemBytes: number };
  readonly shutdownTimeoutMs: number;
  readonly federation: FederationConfig;
  /** Rate limits and async upload limits (`limits:`). */
  readonly limits: LimitsConfig;
  /** Per-user upload quotas (`quotas:`); undefined when none are set. */
  readonly quotas: QuotasConfig;
  readonly urlPreview: UrlPreviewConfig;
  /** Who may use the admin API (the generated admin included). */
  readonly admins: readonly string[];
  readonly retention: RetentionPolicy;
  readonly metrics: MetricsConfig;
  /** Server processes `hsmedia-server start` runs (`workers:`; `auto` resolved to the core count). */
  readonly workers: number;
  readonly thumbnails: ThumbnailsConfig;
  readonly accessPolicy: AccessPolicyConfig;
  /** Virus scanning (`scanning:`); undefined when off. */
  readonly scanning: ScanningConfig | undefined;
  /** The browser console at `/_hsmedia/admin/` (`admin_console:`). */
  readonly adminConsole: AdminConsoleConfig;
  /** How the processes of a deployment share limits and changes (`cluster:`). */
  readonly cluster: ClusterConfig;
  /** Read-through from Synapse's media repository (`synapse_read_through:`); undefined when off. */
  readonly synapseReadThrough: SynapseReadThroughConfig | undefined;
}

/** Outbound and inbound federation settings (`federation:` in the file). */
export interface FederationConfig {
  readonly destinations: Readonly<Record<string, string>>;
  readonly ipRangeAllowlist: readonly string[];
  readonly ipRangeDenylist: readonly string[];
  /** Absolute path of a PEM file of extra CAs, or undefined. */
  readonly caFile: string | undefined;
  readonly maxDownloadBytes: number;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly failureCacheMs: number;
  /** `fetch_deadline`: the most a whole remote fetch may take. */
  readonly fetchDeadlineMs: number;
  /** `min_download_rate`: bytes per second a remote body must average; 0 disables. */
  readonly minDownloadBytesPerSecond: number;
  readonly trustedKeyServers: readonly { readonly serverName: string; readonly verifyKeys: Readonly<Record<string, string>> }[];
  readonly denyOrigins: readonly string[];
}

/** The outcome of {@link parseConfig}: a config, or every problem found. */
export type ConfigResult =
  | { readonly ok: true; readonly config: MediaServerConfig }
  | { readonly ok: false; readonly errors: readonly string[] };

/** What the command line adds to a config file. */
export interface ConfigLoadOptions {
  /** `--synapse-config`: an absolute path to Synapse's homeserver.yaml, overriding `synapse.config_path`. */
  readonly synapseConfigPath?: string;
}

/** The file holding the generated admin token: beside the signing key, which is just as secret. */
export const ADMIN_TOKEN_FILE_NAME = 'admin-token';

/**
 * Validates a parsed config document (what YAML gave, or `{}` for the
 * embedded defaults) and resolves it. Relative paths are resolved against
 * `baseDir` (the config file's directory, or the working directory for the
 * embedded defaults).
 *
 * Every problem is reported, each as `key.path: message`.
 */
export function parseConfig(document: unknown, baseDir: string, options: ConfigLoadOptions = {}): ConfigResult {
  // `synapse.config_path`: settings read from Synapse's homeserver.yaml fill what the file leaves out.
  const merged = withSynapseSettings(document ?? {}, baseDir, options.synapseConfigPath);
  if (!merged.ok) return merged;
  const input = merged.document;
  const result = configFileSchema.safeParse(input, { error: describeIssue });
  if (!result.success) {
    return { ok: false, errors: merged.annotate(result.error.issues.flatMap(formatIssue)) };
  }
  return { ok: true, config: resolveConfigFile(result.data, baseDir) };
}

/** Turns a validated config file into the runtime config. */
function resolveConfigFile(file: ConfigFile, baseDir: string): MediaServerConfig {
  const at = (path: string): string => resolve(baseDir, path);
  const bytes = (value: number | string): number => parseByteSize(value) ?? 0;
  const signingKeyPath = at(file.signing_key_path);
  let auth: AuthConfig;
  if (file.auth?.tokens !== undefined) auth = { kind: 'tokens', tokens: { ...file.auth.tokens } };
  else if (file.auth?.homeserver_url !== undefined) {
    auth = { kind: 'homeserver', homeserverUrl: file.auth.homeserver_url, ...resolveHomeserverAuthExtras(file.auth) };
  }
  else {
    auth = {
      kind: 'generated',
      userId: `@admin:${file.server_name}`,
      tokenPath: resolve(dirname(signingKeyPath), ADMIN_TOKEN_FILE_NAME),
    };
  }
  // Both are present: the schema requires exactly one backend of each.
  const { sqlite, postgres } = file.database;
  const { filesystem, s3 } = file.media_store;
  return {
    serverName: file.server_name,
    listen: { host: file.listen.host, port: file.listen.port, trustedProxies: [...file.listen.trusted_proxies] },
    database: postgres !== undefined ? resolvePostgresDatabase(postgres) : { kind: 'sqlite', path: at((sqlite as { path: string }).path) },
    dedup: {
      enabled: file.dedup.enabled,
      orphanGraceMs: parseDuration(file.dedup.orphan_grace)!,
      orphanSweepIntervalMs: parseDuration(file.dedup.orphan_sweep_interval)!,
    },
    mediaStore:
      s3 !== undefined
        ? {
            kind: 's3',
            endpoint: s3.endpoint,
            region: s3.region,
            bucket: s3.bucket,
            prefix: s3.prefix,
            forcePathStyle: s3.force_path_style,
            accessKeyId: s3.access_key_id,
            secretAccessKey: s3.secret_access_key,
            requestTimeoutMs: s3.request_timeout_ms,
            ...(s3.local_cache === undefined
              ? {}
              : { localCache: { path: at(s3.local_cache.path), maxBytes: bytes(s3.local_cache.max_size) } }),
          }
        : { kind: 'filesystem', path: at((filesystem as { path: string }).path) },
    delivery: file.delivery,
    xAccelLocation: file.x_accel_location,
    signingKeyPath,
    maxUploadBytes: bytes(file.max_upload_size),
    auth,
    legacyMedia: { freeze: file.legacy_media.freeze },
    logLevel: file.log_level,
    logBufferBytes: bytes(file.log_buffer_size),
    accessLogSampleRate: file.access_log_sample_rate,
    mediaCache: { maxBytes: bytes(file.media_cache.max_bytes), maxItemBytes: bytes(file.media_cache.max_item_bytes) },
    shutdownTimeoutMs: file.shutdown_timeout_ms,
    federation: {
      destinations: Object.fromEntries(
        Object.entries(file.federation.destinations).map(([name, url]) => [name, url.replace(/\/$/, '')]),
      ),
      ipRangeAllowlist: [...file.federation.ip_range_allowlist],
      ipRangeDenylist: [...file.federation.ip_range_denylist],
      caFile: file.federation.ca_file === undefined ? undefined : at(file.federation.ca_file),
      maxDownloadBytes: bytes(file.federation.max_download_size ?? file.max_upload_size),
      connectTimeoutMs: file.federation.connect_timeout_ms,
      requestTimeoutMs: file.federation.request_timeout_ms,
      failureCacheMs: file.federation.failure_cache_ms,
      fetchDeadlineMs: parseDuration(file.federation.fetch_deadline)!,
      minDownloadBytesPerSecond: bytes(file.federation.min_download_rate),
      trustedKeyServers: file.federation.trusted_key_servers.map((notary) => ({
        serverName: notary.server_name,
        verifyKeys: { ...notary.verify_keys },
      })),
      denyOrigins: [...file.federation.deny_origins],
    },
    limits: resolveLimitsConfig(file.limits),
    quotas: resolveQuotasConfig(file.quotas),
    urlPreview: resolveUrlPreviewConfig(file.url_preview, at),
    admins: [...new Set([...file.admins, ...(auth.kind === 'generated' ? [auth.userId] : [])])],
    retention: resolveRetention(file.retention),
    metrics: resolveMetrics(file.metrics),
    workers: file.workers === 'auto' ? availableParallelism() : file.workers,
    thumbnails: resolveThumbnailsConfig(file.thumbnails),
    adminConsole: { enabled: file.admin_console.enabled },
    accessPolicy: {
      denyServingTo: [...file.access_policy.deny_serving_to],
      preventDownloadsFrom: [...file.access_policy.prevent_downloads_from],
      http:
        file.access_policy.http === undefined
          ? undefined
          : {
              url: file.access_policy.http.url,
              cacheTtlMs: parseDuration(file.access_policy.http.cache_ttl)!,
              timeoutMs: parseDuration(file.access_policy.http.timeout)!,
              token: file.access_policy.http.token,
            },
    },
    scanning:
      file.scanning === undefined
        ? undefined
        : {
            clamd: 'socket' in file.scanning.clamd ? { socket: at(file.scanning.clamd.socket) } : { host: file.scanning.clamd.host, port: file.scanning.clamd.port },
            maxBytes: file.scanning.max_size === undefined ? undefined : bytes(file.scanning.max_size),
            onOversize: file.scanning.on_oversize,
            onError: file.scanning.on_error,
            timeoutMs: parseDuration(file.scanning.timeout)!,
            concurrency: file.scanning.concurrency,
            retryIntervalMs: parseDuration(file.scanning.retry_interval)!,
            rescanOnUpdate: file.scanning.rescan_on_update,
            versionPollMs: parseDuration(file.scanning.version_poll_interval)!,
            rescansPerSecond: file.scanning.rescans_per_second,
          },
    cluster: resolveClusterConfig(file.cluster),
    synapseReadThrough: resolveSynapseReadThroughConfig(file.synapse_read_through, baseDir),
  };
}

/**
 * Reads, parses and validates a YAML config file. YAML syntax errors and
 * schema problems all come back in `errors`; nothing throws except I/O
 * errors other than "not found".
 */
export async function loadConfigFile(path: string, options: ConfigLoadOptions = {}): Promise<ConfigResult> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, errors: [`${absolute}: file not found`] };
    if (code === 'EACCES') return { ok: false, errors: [`${absolute}: permission denied`] };
    throw error;
  }
  return parseConfigText(text, dirname(absolute), absolute, options);
}

/** Parses YAML text and validates it (see {@link parseConfig}). */
export function parseConfigText(text: string, baseDir: string, fileName: string = 'config', options: ConfigLoadOptions = {}): ConfigResult {
  let document: unknown;
  try {
    document = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    if (error instanceof YAMLParseError) {
      return { ok: false, errors: [`${fileName}: invalid YAML: ${error.message.split('\n')[0] ?? error.message}`] };
    }
    throw error;
  }
  if (document !== null && document !== undefined && (typeof document !== 'object' || Array.isArray(document))) {
    return { ok: false, errors: [`${fileName}: expected a mapping of keys at the top level`] };
  }
  return parseConfig(document, baseDir, options);
}

/** The embedded defaults: everything under `./data` of `cwd`. */
export function defaultConfig(cwd: string = process.cwd()): MediaServerConfig {
  const result = parseConfig({}, cwd);
  if (!result.ok) throw new Error(`Embedded defaults are invalid: ${result.errors.join('; ')}`);
  return result.config;
}

/** The JSON Schema (draft 2020-12) of the config file, for editors and CI checks. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configFileSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------
// Error messages
// ---------------------------------------------------------------------------

function typeOfInput(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'list';
  if (typeof input === 'object') return 'mapping';
  return typeof input;
}

/** zod's per-parse error map: short messages operators can act on. */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'Required';
    if (issue.expected === 'int') return 'Expected a whole number';
    const expected = issue.expected === 'object' ? 'mapping' : issue.expected === 'array' ? 'list' : issue.expected;
    return `Expected ${expected}, got ${typeOfInput(issue.input)}`;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `Expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
  }
  return undefined;
}

/** Renders a key path; tokens (keys under `auth.tokens`) are secrets, so only their start is shown. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((segment, index) => {
      const key = String(segment);
      if (index === 2 && path[0] === 'auth' && path[1] === 'tokens') return `"${key.slice(0, 4)}…"`;
      return key;
    })
    .join('.');
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: Unknown key`);
  }
  return [`${formatPath(issue.path)}: ${issue.message}`];
}
