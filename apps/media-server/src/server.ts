// The composition root of the reference server: every store, service, router, job and listener is
// wired here, in one place, in the order shutdown reverses. Past 450 lines for that reason; what can
// stand alone (config, stores, limits, jobs, health, metrics) lives in its own module.
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createClientAuth,
  StaticTokenVerifier,
  WhoamiTokenVerifier,
  type AccessTokenVerifier,
} from '@hsmedia/client-auth';
import { loadAdminConsole } from '@hsmedia/admin-console';
import { FederationClient } from '@hsmedia/federation-client';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import { hasBlobReferenceLedger, hasJobLeases, MediaService, type ThumbnailService } from '@hsmedia/media-core';
import { mountMediaRoutes, type MediaAccel, type MediaRedirect } from '@hsmedia/media-routes';
import { createAddressPolicy } from '@hsmedia/net-guard';
import { systemClock, type Clock } from '@hsmedia/runtime';
import { KeyRing } from '@hsmedia/signing';
import { createKeyServer, createXMatrixAuth, KEY_SERVER_PATH } from '@hsmedia/xmatrix-auth';
import { Router } from '@koa/router';
import Koa from 'koa';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { createAccessPolicy } from './access-policy.js';
import { loadOrCreateAdminToken } from './admin-token.js';
import { openChangeFeed, type ClusterChanges } from './cluster.js';
import { openSharedLimits, type SharedLimits } from './shared-limits.js';
import { KnexMetadataStore, KnexUrlPreviewCache } from '@hsmedia/store-knex';
import { asyncUploadOptionsOf, createRateLimits, federationAuthWithRateLimit } from './limits.js';
import type { MediaServerConfig } from './config.js';
import { createDrainer } from './drain.js';
import { applyBodyIdleTimeout, handleExpectContinue, TrustedProxies, trustedProxyAddress } from './http-edge.js';
import { accessLoggerOf, createLogger, flushLogger } from './logger.js';
import { requestLog } from './request-log.js';
import type { ServerSigningKey, SigningKeyCodec } from './signing-key-file.js';
import { checkPublishedKey, loadSigningKeyFor } from './homeserver-key.js';
import { homeserverAdminsOf } from './homeserver-admins.js';
import { startMaintenance, type Maintenance } from './maintenance.js';
import { accelDelivery, evictQuarantined, openStores, redirectDelivery, type OpenStores } from './stores.js';
import { createUrlPreviewRoute } from './url-preview.js';
import { createThumbnails } from './thumbnails.js';
import { createVersionsRouter } from './versions.js';
import { MediaMetrics } from './metrics.js';
import { createOperations, type Operations } from './operations.js';
import { scanningOptionsOf } from './scanning.js';
import { createSynapseReadThrough, type SynapseReadThroughParts } from './synapse-read-through/index.js';

/** Options for {@link createServer} and {@link startServer}; all optional. */
export interface ServerOptions {
  /** A ready logger; default: a pino logger at `config.logLevel` writing to `logDestination`. */
  readonly logger?: PinoLogger;
  /** Where the default logger writes JSON lines; default stdout. */
  readonly logDestination?: DestinationStream;
  /** Reads and writes the signing key file; default the built-in Synapse-format codec. */
  readonly signingKeyCodec?: SigningKeyCodec;
  /** The time of the rate limiters' token buckets; default the system clock (tests move one by hand). */
  readonly rateLimitClock?: Clock;
  /**
   * Other processes write to the same media directory (a cluster worker):
   * only stale staging files are swept at start, under the job lease, even
   * on SQLite. Default false.
   */
  readonly sharedMediaDirectory?: boolean;
}

/** How long shutdown waits for the last log lines to be written. */
const LOG_FLUSH_TIMEOUT_MS = 5_000;

/** The admin token of standalone mode without a token table. */
export interface GeneratedAdminToken {
  readonly userId: string;
  readonly token: string;
  readonly tokenPath: string;
  /** True on the start that created it (the CLI prints it then, and only then). */
  readonly created: boolean;
}

/** A composed server, not yet listening. */
export interface MediaServer {
  readonly config: MediaServerConfig;
  readonly app: Koa;
  readonly httpServer: Server;
  readonly logger: PinoLogger;
  readonly media: MediaService;
  /** Thumbnails; undefined while `thumbnails.enabled` is false. */
  readonly thumbnails: ThumbnailService | undefined;
  readonly signingKey: ServerSigningKey;
  /** Set in standalone mode when `auth` is not configured. */
  readonly adminToken: GeneratedAdminToken | undefined;
  /** Staging files of crashed uploads removed at start. */
  readonly stagingFilesRemoved: number;
  /** Admin API, health, metrics and retention. */
  readonly operations: Operations;
  /** Background jobs (staging sweep, expired `/create` clean-up) and their run-now hooks. */
  readonly maintenance: Maintenance;
  /** Read-through from Synapse (`synapse_read_through:`); undefined when off. */
  readonly synapseReadThrough: SynapseReadThroughParts | undefined;
  /** Listens on `config.listen` and resolves with the base URL (`http://host:port`). */
  listen(): Promise<string>;
  /**
   * Stops accepting, lets in-flight requests finish for up to
   * `config.shutdownTimeoutMs`, cuts the rest, then closes the stores.
   * Safe to call more than once.
   */
  close(): Promise<void>;
}

/** A server that listens. */
export interface StartedServer extends MediaServer {
  /** `http://host:port`, with the real port when `listen.port` is 0. */
  readonly url: string;
}

/** Node's default 5 minutes is too short for a large upload on a slow link. */
const REQUEST_TIMEOUT_MS = 30 * 60 * 1000;

function verifierFor(config: MediaServerConfig, adminToken: GeneratedAdminToken | undefined): AccessTokenVerifier {
  switch (config.auth.kind) {
    case 'homeserver':
      // cluster.token_cache_ttl: a token revoked on the homeserver keeps working this long (nothing announces revocations).
      return new WhoamiTokenVerifier({ homeserverUrl: config.auth.homeserverUrl, positiveTtlMs: config.cluster.tokenCacheTtlMs });
    case 'tokens':
      return new StaticTokenVerifier(config.auth.tokens);
    case 'generated':
      return new StaticTokenVerifier(adminToken === undefined ? {} : { [adminToken.token]: adminToken.userId });
  }
}

/**
 * What a server holds open, each part set as it opens: a start that fails
 * half-way closes what it opened, with the same list as a normal shutdown.
 */
interface OpenParts {
  federationClient?: FederationClient;
  stores?: OpenStores;
  changes?: ClusterChanges;
  sharedLimits?: SharedLimits | undefined;
  maintenance?: Maintenance;
  media?: MediaService;
  thumbnails?: ThumbnailService | undefined;
  operations?: Operations;
  synapseReadThrough?: SynapseReadThroughParts | undefined;
}

/**
 * The one shutdown list (after the in-flight requests are drained): the
 * services before the stores they write to, the scheduler before the
 * database its leases live in.
 */
async function closeParts(parts: OpenParts): Promise<void> {
  // The backfill writes through the media service: stopped before it.
  await parts.synapseReadThrough?.close();
  await parts.thumbnails?.close();
  await parts.operations?.close();
  await parts.media?.close();
  parts.federationClient?.close();
  await parts.maintenance?.scheduler.close();
  await parts.changes?.close();
  await parts.sharedLimits?.close();
  await parts.stores?.close();
}

/** `{ [key]: value }`, or nothing for undefined (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * Builds a server from a validated config: opens the stores (running
 * migrations), removes staging files of crashed uploads, loads or creates
 * the signing key (and the admin token in standalone mode without `auth`),
 * and composes the Koa app. It does not listen; see {@link startServer}.
 */
export async function createServer(config: MediaServerConfig, options: ServerOptions = {}): Promise<MediaServer> {
  // Lines dropped by a full log buffer (stdout blocked), counted off the request path and read by the metrics.
  let logLinesDropped = 0;
  const logger =
    options.logger ??
    createLogger({
      level: config.logLevel,
      buffer: { maxBufferBytes: config.logBufferBytes, onDrop: (lines) => void (logLinesDropped += lines) },
      ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
    });

  // Beside a homeserver the key must be the homeserver's: never created, and checked against what it publishes.
  const { key: signingKey, created: keyCreated } = await loadSigningKeyFor(config, options.signingKeyCodec);
  if (keyCreated) logger.info({ path: config.signingKeyPath, key_id: signingKey.keyId }, 'created signing key');
  if (config.auth.kind === 'homeserver' && !config.auth.keyPublishedElsewhere) {
    await checkPublishedKey({ homeserverUrl: config.auth.homeserverUrl, serverName: config.serverName, key: signingKey, keyPath: config.signingKeyPath });
    logger.info({ key_id: signingKey.keyId, homeserver: config.auth.homeserverUrl }, 'the homeserver publishes our signing key');
  }

  let adminToken: GeneratedAdminToken | undefined;
  if (config.auth.kind === 'generated') {
    const { token, created } = await loadOrCreateAdminToken(config.auth.tokenPath);
    adminToken = { userId: config.auth.userId, token, tokenPath: config.auth.tokenPath, created };
    logger.info(
      { user_id: adminToken.userId, path: adminToken.tokenPath, created },
      created ? 'created admin access token' : 'using stored admin access token',
    );
  }

  const open: OpenParts = {};
  try {
    const federation = config.federation;
    // Every outbound connection (federation, well-known, Location, key fetches) goes through this policy.
    const addressPolicy = createAddressPolicy({ allow: [...federation.ipRangeAllowlist], deny: [...federation.ipRangeDenylist] });
    const ca = federation.caFile === undefined ? undefined : await readFile(federation.caFile, 'utf8');
    const federationClient = (open.federationClient = new FederationClient({
      serverName: config.serverName,
      signingKey,
      addressPolicy,
      destinations: federation.destinations,
      // fetch_deadline and min_download_rate: a remote that drips its headers or body cannot hold a
      // fetch (and every client waiting on it) for minutes.
      timeouts: {
        connectMs: federation.connectTimeoutMs,
        idleMs: federation.requestTimeoutMs,
        totalMs: federation.fetchDeadlineMs,
        minBytesPerSecond: federation.minDownloadBytesPerSecond,
      },
      logger: logger.child({ component: 'federation' }),
      ...(ca === undefined ? {} : { ca }),
    }));

    const stores = (open.stores = await openStores(config, logger.child({ component: 'database' })));
    // Staging clean-up at start and periodic jobs, one instance at a time when the database is shared.
    const maintenance = (open.maintenance = await startMaintenance(config, stores, logger.child({ component: 'jobs' }), {
      sharedMediaDirectory: options.sharedMediaDirectory ?? false,
    }));
    const { stagingFilesRemoved } = maintenance;

    const metrics = new MediaMetrics();
    metrics.watchLogDrops(() => logLinesDropped);
    stores.instrumentLocalCache?.(metrics.registry, logger.child({ component: 'local-cache' }));
    if (stores.dedup !== undefined && hasBlobReferenceLedger(stores.metadata)) {
      const ledger = stores.metadata;
      metrics.watchBlobStorage(() => ledger.blobStorageStats());
    }
    // Quarantine, deletion, protection, blocked hashes, async completions: announced to every process (LISTEN/NOTIFY on PostgreSQL).
    const changes = (open.changes = await openChangeFeed(config, stores, logger.child({ component: 'cluster' }), metrics.registry));
    if (stores.evictLocalCopy !== undefined) {
      // media_store.s3.local_cache keeps no copy of quarantined media (the feed closes with the server).
      evictQuarantined(changes.feed, stores.metadata, stores.evictLocalCopy, (error) => logger.warn({ err: error }, 'local cache eviction failed'));
    }
    const remote = metrics.instrumentRemoteSource(federationClient);
    // access_policy: deny list and HTTP endpoint, asked after quarantine and the freeze; undefined allows all.
    const accessPolicy = createAccessPolicy(config.accessPolicy, logger.child({ component: 'access-policy' }));
    // synapse_read_through: unknown local IDs are imported from Synapse on first access; the rest in the background.
    const readThrough = (open.synapseReadThrough =
      config.synapseReadThrough === undefined
        ? undefined
        : createSynapseReadThrough(config.synapseReadThrough, { serverName: config.serverName, metadata: stores.metadata, clock: systemClock, logger: logger.child({ component: 'synapse-import' }) }));
    const media = (open.media = new MediaService({
      serverName: config.serverName,
      blobs: stores.blobs,
      metadata: stores.metadata,
      maxUploadBytes: config.maxUploadBytes,
      freezeLegacy: config.legacyMedia.freeze,
      remote,
      onCacheLookup: metrics.onCacheLookup,
      changes: changes.feed,
      // Several processes share the database: one fetch of an uncached remote item per deployment.
      // ... and quotas and the pending-ID cap hold for the whole deployment, not per process.
      ...(changes.multiProcess && hasJobLeases(stores.metadata) ? { remoteFetchLeases: stores.metadata, userLeases: stores.metadata } : {}),
      maxRemoteBytes: federation.maxDownloadBytes,
      remoteFailureTtlMs: federation.failureCacheMs,
      ...asyncUploadOptionsOf(config.limits),
      ...(config.quotas === undefined ? {} : { quotas: config.quotas }),
      ...(accessPolicy === undefined ? {} : { accessPolicy }),
      preventDownloadsFrom: config.accessPolicy.preventDownloadsFrom,
      ...optional('localFallback', readThrough?.fallback),
      // scanning: clamd between "stored" and "visible"; off when the section is absent.
      ...(config.scanning === undefined ? {} : { scanning: scanningOptionsOf(config.scanning, metrics.onScan) }),
      logger: logger.child({ component: 'media' }),
      cache: {
        // max_bytes 0 turns the blob cache off; MediaService spells that as a 0 item size.
        maxBlobBytes: config.mediaCache.maxBytes === 0 ? 0 : config.mediaCache.maxItemBytes,
        maxTotalBytes: config.mediaCache.maxBytes,
      },
    }));

    // Pre-generates the configured sizes of every stored image in the background; undefined when disabled.
    const thumbnails = (open.thumbnails = createThumbnails(config.thumbnails, {
      media,
      logger: logger.child({ component: 'thumbnails' }),
      // Uncached remote media: the remote's own thumbnail first (thumbnails.remote_thumbnail_first).
      remote,
      wrapGenerator: (generator) => metrics.instrumentThumbnailGenerator(generator),
    }));

    // After the thumbnail service, so imported media is announced to it like any stored media.
    readThrough?.start(media.catalog);

    // Undefined while previews are off; refuses an unsafe url_preview section (keyed errors).
    const preview = await createUrlPreviewRoute(config.urlPreview, {
      media,
      maxUploadBytes: config.maxUploadBytes,
      logger: logger.child({ component: 'url-preview' }),
      // Several processes share the database: a URL is fetched once per deployment within the cache time.
      ...(changes.multiProcess && stores.metadata instanceof KnexMetadataStore ? { sharedCache: new KnexUrlPreviewCache({ knex: stores.metadata.knex }) } : {}),
    });

    const app = new Koa();
    // The listener is attached below: `app.callback()` snapshots the middleware composed so far.
    const httpServer = createHttpServer({ requestTimeout: REQUEST_TIMEOUT_MS });
    const drainer = createDrainer(httpServer);
    const trustedProxies = new TrustedProxies(config.listen.trustedProxies);
    // Before Koa: a stalled body is cut, and an oversized one is refused before it is invited.
    const edgeLogger = logger.child({ component: 'http' });
    httpServer.on('request', (req, res) => applyBodyIdleTimeout(req, res, config.limits.uploadIdleTimeoutMs, edgeLogger));
    handleExpectContinue(httpServer, config.maxUploadBytes);
    // First, so every request is counted and timed to its last byte.
    app.use(metrics.middleware());
    // Our own logger: access lines skip its redaction pass (they carry none of its paths); see accessLoggerOf.
    const accessLogger = options.logger === undefined ? accessLoggerOf(logger) : logger;
    app.use(requestLog(accessLogger, { successSampleRate: config.accessLogSampleRate }));
    app.use(drainer.middleware);
    // Before anything keyed by the client address (the per-IP limit of legacy downloads).
    if (trustedProxies.enabled) app.use(trustedProxyAddress(trustedProxies));
    // Keys of other servers: fetched through the federation client (discovery, SSRF guard), cached in the metadata store.
    const keyRing = new KeyRing({
      ...federationClient.keyRingOptions(),
      store: stores.metadata,
      notaries: federation.trustedKeyServers,
    });
    const keyServer = new Router();
    keyServer.all(KEY_SERVER_PATH, createKeyServer({ serverName: config.serverName, signingKey }));
    // Errors, CORS, security headers, the media routers and the M_UNRECOGNIZED catch-all.
    // cluster.shared_limits: one budget for every process (Redis or PostgreSQL), or this process's own.
    const sharedLimits = (open.sharedLimits = await openSharedLimits(config, stores, logger.child({ component: 'limits' }), metrics.registry));
    const rateLimits = createRateLimits(config.limits, options.rateLimitClock, sharedLimits);
    // One client authentication (one token cache) for the media and the admin routes.
    const authenticate = createClientAuth({ verifier: verifierFor(config, adminToken) });
    // admin_console: the built console, read once into memory (a few tens of kB).
    const adminConsole = config.adminConsole.enabled ? await loadAdminConsole() : undefined;
    const operations = (open.operations = createOperations(config, {
      adminConsole,
      media,
      stores,
      metrics,
      authenticate,
      scheduler: maintenance.scheduler,
      logger: logger.child({ component: 'operations' }),
      ...optional('homeserverAdmins', homeserverAdminsOf(config)),
    }));
    mountMediaRoutes(app, {
      media,
      ...(preview === undefined ? {} : { preview }),
      ...(thumbnails === undefined ? {} : { thumbnails }),
      authenticate,
      logger,
      ...deliveryOf(config, stores),
      // Token buckets per user on client endpoints, per verified origin on federation (shared per cluster.shared_limits).
      rateLimits: rateLimits.client,
      federation: {
        // Bytes per verified origin (limits.download_bytes.federation), charged before each answer's headers.
        ...(rateLimits.federationBytes === undefined ? {} : { downloadBytes: rateLimits.federationBytes }),
        authenticate: federationAuthWithRateLimit(
          createXMatrixAuth({
            serverName: config.serverName,
            keyRing,
            denyOrigins: federation.denyOrigins,
            getSignal: abortSignalFor,
          }) as Koa.Middleware,
          rateLimits.federation,
        ),
      },
      // Beside a homeserver, the homeserver answers /versions (it knows its own spec support).
      routers: [keyServer, ...operations.routers, ...(readThrough === undefined ? [] : [readThrough.router(authenticate as Koa.Middleware, operations.isAdmin)]), ...(config.auth.kind === 'homeserver' ? [] : [createVersionsRouter()])],
    });
    httpServer.on('request', app.callback());

    let closing: Promise<void> | undefined;
    const close = async (): Promise<void> => {
      const started = Date.now();
      const drained = await drainer.drain(config.shutdownTimeoutMs);
      logger.info(
        { drained, duration_ms: Date.now() - started },
        drained ? 'in-flight requests finished' : 'shutdown deadline passed; cut remaining connections',
      );
      await closeParts(open);
      logger.info({}, 'stopped');
      // Written out before the process exits; bounded, so a blocked stdout cannot hold the shutdown.
      await flushLogger(logger, LOG_FLUSH_TIMEOUT_MS);
    };

    return {
      config,
      app,
      httpServer,
      logger,
      media,
      thumbnails,
      signingKey,
      adminToken,
      stagingFilesRemoved,
      operations,
      maintenance,
      synapseReadThrough: readThrough,
      listen: () =>
        operations.listen().then(() => new Promise<string>((resolve, reject) => {
          const onError = (error: Error): void => reject(error);
          httpServer.once('error', onError);
          httpServer.listen(config.listen.port, config.listen.host, () => {
            httpServer.off('error', onError);
            const url = urlOf(httpServer.address() as AddressInfo);
            logger.info(
              { url, server_name: config.serverName, auth: config.auth.kind, key_id: signingKey.keyId },
              `listening on ${url}`,
            );
            resolve(url);
          });
        })),
      close: () => {
        closing ??= close();
        return closing;
      },
    };
  } catch (error) {
    await closeParts(open);
    throw error;
  }
}

/**
 * {@link createServer}, then listen. What the CLI runs, and what tests (and
 * multi-server federation tests) run in-process.
 *
 * @example
 * ```ts
 * const config = parseConfig({ listen: { port: 0 }, auth: { tokens: { t: '@a:localhost' } } }, dir);
 * const server = await startServer(config.config);
 * await fetch(`${server.url}/_matrix/client/versions`);
 * await server.close();
 * ```
 */
export async function startServer(config: MediaServerConfig, options: ServerOptions = {}): Promise<StartedServer> {
  const server = await createServer(config, options);
  try {
    const url = await server.listen();
    return { ...server, url };
  } catch (error) {
    await server.close();
    throw error;
  }
}

/** The offload of `delivery` (none for `proxy`, or when the store cannot offer it). */
function deliveryOf(config: MediaServerConfig, stores: Pick<OpenStores, 'blobs' | 'files'>): { redirect?: MediaRedirect; accel?: MediaAccel } {
  const { blobs, files } = stores;
  if (config.delivery === 'redirect' && blobs.directUrl !== undefined) return { redirect: redirectDelivery(blobs) };
  return config.delivery === 'x_accel' && files !== undefined ? { accel: accelDelivery(files, config.xAccelLocation) } : {};
}
