import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { RemoteMediaError } from '@hsmedia/media-core';
import type { BlobStorageStats, RemoteMedia, RemoteMediaRequest, RemoteMediaSource, RemoteThumbnailRequest, ScanOutcome, ThumbnailGenerator } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';
import type { Context, Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { registerBlobStorageGauges } from './blob-metrics.js';
import { PendingIncrements, RouteSeriesIndex, type PendingSeries } from './pending-increments.js';
import { healthStatus, type HealthReport } from './health.js';

/**
 * The server's Prometheus metrics, on a registry of its own (never
 * prom-client's global one, so several servers in one process stay apart).
 *
 * Labels are bounded: `route` is the router's path template
 * (`/_matrix/client/v1/media/download/:serverName/:mediaId`), or `unmatched`;
 * a raw path never becomes a label.
 */
export class MediaMetrics {
  readonly registry: Registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly requestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly requestsInFlight: Gauge;
  readonly bytesIn: Counter<'route'>;
  readonly bytesOut: Counter<'route'>;
  readonly remoteFetches: Counter<'outcome'>;
  readonly remoteFetchesInFlight: Gauge;
  readonly cacheLookups: Counter<'cache' | 'result'>;
  readonly thumbnailDuration: Histogram<'outcome'>;
  readonly retentionDeleted: Counter<'rule'>;
  readonly adminActions: Counter<'action'>;
  readonly scans: Counter<'verdict'>;
  readonly scanDuration: Histogram<'verdict'>;
  readonly scanQueue: Gauge;
  readonly thumbnailJobs: Gauge<'state'>;
  readonly uploadWaiters: Gauge;
  /** Log lines dropped because the log buffer was full (stdout slow or blocked); see `log_buffer_size`. */
  readonly logLinesDropped: Counter;
  // Per-request increments, summed here and added when the counters are read (see PendingIncrements).
  readonly #pendingRequests = new PendingIncrements<'method' | 'route' | 'status'>();
  readonly #pendingBytesIn = new PendingIncrements<'route'>();
  readonly #pendingBytesOut = new PendingIncrements<'route'>();
  readonly #pendingCacheLookups = new PendingIncrements<'cache' | 'result'>();
  /** Read at scrape time: the thumbnailer's job slots (set by {@link instrumentThumbnailGenerator}). */
  #thumbnailLoad: (() => { readonly running: number; readonly waiting: number }) | undefined;
  /** Read at scrape time: requests waiting for pending uploads (set by {@link watchUploadWaiters}). */
  #uploadWaiterCount: (() => number) | undefined;
  /** Read at scrape time: media queued for or in a virus scan (set by {@link watchScanQueue}). */
  #scanQueueDepth: (() => number) | undefined;
  /** Read at scrape time: log lines dropped so far (set by {@link watchLogDrops}). */
  #logDrops: (() => number) | undefined;

  constructor(options: { readonly defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'hsmedia_http_requests_total',
      help: 'HTTP requests answered, by method, route template and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
      collect: () => this.#pendingRequests.flushInto(this.requests),
    });
    this.requestDuration = new Histogram({
      name: 'hsmedia_http_request_duration_seconds',
      help: 'Time from request to the last response byte, by method, route template and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.requestsInFlight = new Gauge({
      name: 'hsmedia_http_requests_in_flight',
      help: 'Requests being answered now.',
      registers,
    });
    this.bytesIn = new Counter({
      name: 'hsmedia_http_received_bytes_total',
      help: 'Bytes received on request connections (headers and bodies), by route template.',
      labelNames: ['route'],
      registers,
      collect: () => this.#pendingBytesIn.flushInto(this.bytesIn),
    });
    this.bytesOut = new Counter({
      name: 'hsmedia_http_sent_bytes_total',
      help: 'Bytes sent in responses (headers and bodies), by route template.',
      labelNames: ['route'],
      registers,
      collect: () => this.#pendingBytesOut.flushInto(this.bytesOut),
    });
    this.remoteFetches = new Counter({
      name: 'hsmedia_remote_fetches_total',
      help: 'Fetches of remote media from other servers, by outcome (ok, not_found, timeout, too_large, ... or error).',
      labelNames: ['outcome'],
      registers,
    });
    this.remoteFetchesInFlight = new Gauge({
      name: 'hsmedia_remote_fetches_in_flight',
      help: 'Remote media fetches waiting for their response headers.',
      registers,
    });
    this.cacheLookups = new Counter({
      name: 'hsmedia_media_cache_lookups_total',
      help: 'In-memory cache lookups (record: metadata, blob: small media bytes), by result (hit or miss).',
      labelNames: ['cache', 'result'],
      registers,
      collect: () => this.#pendingCacheLookups.flushInto(this.cacheLookups),
    });
    this.thumbnailDuration = new Histogram({
      name: 'hsmedia_thumbnail_generation_seconds',
      help: 'Time to generate the thumbnails of one source image, by outcome (ok or error).',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.retentionDeleted = new Counter({
      name: 'hsmedia_retention_deleted_total',
      help: 'Media deleted by the retention job, by rule.',
      labelNames: ['rule'],
      registers,
    });
    const logDrops = (): number => this.#logDrops?.() ?? 0;
    let logDropsCounted = 0;
    this.logLinesDropped = new Counter({
      name: 'hsmedia_log_lines_dropped_total',
      help: 'Log lines dropped because the log buffer was full (stdout slow or blocked; log_buffer_size).',
      registers,
      collect() {
        // The destination counts drops off the request path; the counter catches up when scraped.
        const total = logDrops();
        if (total > logDropsCounted) this.inc(total - logDropsCounted);
        logDropsCounted = total;
      },
    });
    this.adminActions = new Counter({
      name: 'hsmedia_admin_actions_total',
      help: 'Admin actions recorded in the audit log (quarantine, protect, delete, purge, hash blocks...), by action.',
      labelNames: ['action'],
      registers,
    });
    this.scans = new Counter({
      name: 'hsmedia_scans_total',
      help: 'Virus scans finished, by verdict (clean, infected, failed, oversize, served_unscanned).',
      labelNames: ['verdict'],
      registers,
    });
    this.scanDuration = new Histogram({
      name: 'hsmedia_scan_duration_seconds',
      help: 'Time of one virus scan (reading the blob and clamd), by verdict.',
      labelNames: ['verdict'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const scanQueueDepth = (): number => this.#scanQueueDepth?.() ?? 0;
    this.scanQueue = new Gauge({
      name: 'hsmedia_scan_queue_depth',
      help: 'Media queued for or in a virus scan in this process.',
      registers,
      collect() {
        this.set(scanQueueDepth());
      },
    });
    // Queue depths are read when scraped, so they never drift from the queues they describe.
    const thumbnailLoad = (): { readonly running: number; readonly waiting: number } | undefined => this.#thumbnailLoad?.();
    this.thumbnailJobs = new Gauge({
      name: 'hsmedia_thumbnail_jobs',
      help: 'Thumbnail generations (background and on demand) by state: running, or waiting for a slot.',
      labelNames: ['state'],
      registers,
      collect() {
        const load = thumbnailLoad() ?? { running: 0, waiting: 0 };
        this.set({ state: 'running' }, load.running);
        this.set({ state: 'waiting' }, load.waiting);
      },
    });
    const uploadWaiterCount = (): number => this.#uploadWaiterCount?.() ?? 0;
    this.uploadWaiters = new Gauge({
      name: 'hsmedia_upload_waiters',
      help: 'Downloads and thumbnail requests waiting for a pending async upload (/create without its PUT yet).',
      registers,
      collect() {
        this.set(uploadWaiterCount());
      },
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'hsmedia_' });
  }

  /** The four series of cache lookups, made once: a lookup adds 1 to one of them. */
  readonly #cacheSeries = {
    record: { hit: this.#cacheSeriesOf('record', 'hit'), miss: this.#cacheSeriesOf('record', 'miss') },
    blob: { hit: this.#cacheSeriesOf('blob', 'hit'), miss: this.#cacheSeriesOf('blob', 'miss') },
  };

  #cacheSeriesOf(cache: 'record' | 'blob', result: 'hit' | 'miss'): PendingSeries<'cache' | 'result'> {
    return this.#pendingCacheLookups.seriesOf(`${cache} ${result}`, { cache, result });
  }

  /** For `MediaService`'s `onCacheLookup` option. No key or labels built per lookup. */
  readonly onCacheLookup = (cache: 'record' | 'blob', hit: boolean): void => {
    const series = this.#cacheSeries[cache];
    (hit ? series.hit : series.miss).value += 1;
  };

  /** The request and byte series of every route template (no key or labels built per request). */
  readonly #routes = new RouteSeriesIndex(this.#pendingRequests, this.#pendingBytesIn, this.#pendingBytesOut);

  /**
   * Koa middleware counting every request once its response is over (so a
   * streamed download is timed to its last byte): on the response's `close`,
   * which Node emits once the response is finished or the connection is
   * gone. Mount it first. Bytes are the connection's byte counters since its
   * previous request ended, headers included. Per request: one state object
   * and a shared listener (no closure, no async wrapper).
   */
  middleware(): Middleware {
    return (ctx, next) => {
      const res = ctx.res as MeasuredResponse;
      res[MEASURE] = { ctx, started: process.hrtime.bigint() };
      this.requestsInFlight.inc();
      res.on('close', this.#finishMeasure);
      return next();
    };
  }

  /** The responses' `close` listener, one per metrics object: counts a request once. */
  readonly #finishMeasure = ((metrics: MediaMetrics) =>
    function finishMeasure(this: MeasuredResponse): void {
      const measure = this[MEASURE];
      if (measure === undefined) return;
      this[MEASURE] = undefined;
      metrics.#count(measure.ctx, measure.started);
    })(this);

  #count(ctx: Context, started: bigint): void {
    this.requestsInFlight.dec();
    const route = routeOf(ctx);
    const method = methodLabel(ctx.method);
    const status = ctx.res.statusCode;
    const routeSeries = this.#routes.of(route);
    const series = routeSeries.requestsOf(method, status);
    series.value += 1;
    this.requestDuration.observe(series.labels, Number(process.hrtime.bigint() - started) / 1e9);
    // Since the previous request on this connection ended: the request line, headers and body
    // often arrive in one read before this middleware runs, so a snapshot at the start would miss them.
    const socket = ctx.req.socket as CountedSocket;
    let last = socket[BYTE_COUNTS];
    if (last === undefined) last = socket[BYTE_COUNTS] = { read: 0, written: 0 };
    const { bytesRead, bytesWritten } = socket;
    routeSeries.bytesIn.value += Math.max(0, bytesRead - last.read);
    routeSeries.bytesOut.value += Math.max(0, bytesWritten - last.written);
    last.read = bytesRead;
    last.written = bytesWritten;
  }

  /** Counts the fetches (and their outcomes) of a remote media source. */
  instrumentRemoteSource(source: RemoteMediaSource): RemoteMediaSource {
    // One wrapper for both kinds of fetch, so remote thumbnails are counted like downloads.
    const counted = async <T>(fetch: () => Promise<T>): Promise<T> => {
      this.remoteFetchesInFlight.inc();
      try {
        const media = await fetch();
        this.remoteFetches.inc({ outcome: 'ok' });
        return media;
      } catch (err) {
        const failure = err instanceof RemoteMediaError ? err.code : undefined;
        this.remoteFetches.inc({ outcome: failure ?? 'error' });
        throw err;
      } finally {
        this.remoteFetchesInFlight.dec();
      }
    };
    const fetchThumbnail = source.fetchThumbnail?.bind(source);
    return {
      fetchMedia: (request: RemoteMediaRequest): Promise<RemoteMedia> => counted(() => source.fetchMedia(request)),
      ...(fetchThumbnail === undefined
        ? {}
        : { fetchThumbnail: (request: RemoteThumbnailRequest): Promise<RemoteMedia> => counted(() => fetchThumbnail(request)) }),
    };
  }

  /** Reports `count()` (e.g. `MediaService.uploadWaiters`) as `hsmedia_upload_waiters`. */
  /** Reads the number of dropped log lines when scraped (the logger's destination counts them). */
  watchLogDrops(count: () => number): void {
    this.#logDrops = count;
  }

  watchUploadWaiters(count: () => number): void {
    this.#uploadWaiterCount = count;
  }

  /** Adds the dedup gauges (`hsmedia_blob_*`), read from the blob ledger's totals when scraped. */
  watchBlobStorage(read: () => Promise<BlobStorageStats>): void {
    registerBlobStorageGauges(this.registry, read);
  }

  /** Reads the virus-scan queue depth at scrape time. */
  watchScanQueue(depth: () => number): void {
    this.#scanQueueDepth = depth;
  }

  /** Counts and times one finished virus scan (the scan stage's `onScan`). */
  readonly onScan = (outcome: ScanOutcome, ms: number): void => {
    this.scans.inc({ verdict: outcome });
    this.scanDuration.observe({ verdict: outcome }, ms / 1000);
  };

  /**
   * Times a thumbnail generator's work; when it reports its job slots
   * (`SharpThumbnailer.load`), they become `hsmedia_thumbnail_jobs`.
   */
  instrumentThumbnailGenerator(generator: ThumbnailGenerator): ThumbnailGenerator {
    const loaded = generator as ThumbnailGenerator & { readonly load?: { readonly running: number; readonly waiting: number } };
    if (loaded.load !== undefined) this.#thumbnailLoad = () => loaded.load!;
    return {
      supports: (contentType) => generator.supports(contentType),
      generate: async (source, contentType, specs, options) => {
        const end = this.thumbnailDuration.startTimer();
        try {
          const result = await generator.generate(source, contentType, specs, options);
          end({ outcome: 'ok' });
          return result;
        } catch (err) {
          end({ outcome: 'error' });
          throw err;
        }
      },
    };
  }

  /** The exposition text (Prometheus text format). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Byte counters of a connection when its last request ended, kept on the socket (mutated in place). */
const BYTE_COUNTS: unique symbol = Symbol('hsmedia.byteCounts');
type CountedSocket = Socket & { [BYTE_COUNTS]?: { read: number; written: number } };

/** What the metrics need of one request, kept on its response under a symbol until it closes. */
const MEASURE: unique symbol = Symbol('hsmedia.measure');
type MeasuredResponse = ServerResponse & { [MEASURE]?: { readonly ctx: Context; readonly started: bigint } | undefined };

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER';
}

/** The matched route template (set by @koa/router), never the raw path. */
function routeOf(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
  return typeof matched === 'string' ? matched : 'unmatched';
}

/** What the metrics listener serves: one server's {@link MediaMetrics}, or a cluster's aggregate. */
export interface MetricsSource {
  scrape(): Promise<string>;
  readonly registry: { readonly contentType: string };
}

/** Options for {@link startMetricsServer}. */
export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: MetricsSource;
  /** Also answer `GET /health` here. */
  readonly health?: () => Promise<HealthReport>;
  readonly logger?: Logger;
}

/** A listening metrics server. */
export interface MetricsServer {
  readonly server: Server;
  /** `http://host:port` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A separate HTTP listener for `GET /metrics` (and `GET /health`), so the
 * scrape endpoint can stay on a private interface while the media API is
 * public. Everything else is 404.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { metrics, health, logger } = options;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('Method Not Allowed\n');
      return;
    }
    if (path === '/metrics') {
      const body = await metrics.scrape();
      res.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/health' && health !== undefined) {
      const report = await health();
      res.writeHead(healthStatus(report), { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(report));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found\n');
  };
  const server = createHttpServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger?.error({ err }, 'metrics endpoint failed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
