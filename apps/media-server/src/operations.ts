import { hasAdminAuditLog, MediaAdmin, type AdminAction, type MediaService } from '@hsmedia/media-core';
import { systemClock, type Clock, type Logger, type Requester } from '@hsmedia/runtime';
import type { AdminConsole } from '@hsmedia/admin-console';
import { createAdminConsoleRouter as createConsoleApiRouter, createAdminRouter, createScanAdminRouter } from '@hsmedia/media-routes';
import type { Router } from '@koa/router';
import { createExportRouter } from './commands/archive-export-route.js';
import type { Context, Middleware } from 'koa';
import { createAdminConsoleRouter } from './admin-console.js';
import type { JobScheduler } from './background-jobs.js';
import type { MediaServerConfig } from './config.js';
import { createHealthCheck, createHealthRouter, type HealthReport } from './health.js';
import { startMetricsServer, type MediaMetrics, type MetricsServer } from './metrics.js';
import { hasRetentionRules, runRetention, type RetentionResult } from './retention.js';
import type { OpenStores } from './stores.js';

/** What {@link createOperations} needs from the composed server. */
export interface OperationsDeps {
  readonly media: MediaService;
  readonly stores: OpenStores;
  readonly metrics: MediaMetrics;
  /** Client authentication, the same as the media routers'. */
  readonly authenticate: Middleware;
  /** Where retention runs (leased: one instance at a time on a shared database). */
  readonly scheduler: JobScheduler;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** `auth.homeserver_admins`: asks the homeserver whether a requester not in `admins` is a server admin. */
  readonly homeserverAdmins?: (requester: Requester, ctx: Context) => Promise<boolean>;
  /** The console's built files, loaded when `admin_console.enabled`. */
  readonly adminConsole?: AdminConsole | undefined;
}

/** The operations side of a server: admin API, health, metrics listener, retention. */
export interface Operations {
  readonly admin: MediaAdmin;
  readonly metrics: MediaMetrics;
  readonly health: () => Promise<HealthReport>;
  /** Whether a requester is a server admin (`admins`, then the homeserver with auth.homeserver_admins). */
  readonly isAdmin: (requester: Requester, ctx: Context) => boolean | Promise<boolean>;
  /** Routers for the main listener: the admin API and `GET /health`. */
  readonly routers: readonly Router[];
  /** Applies the retention rules now (what the periodic job runs). */
  runRetention(): Promise<RetentionResult>;
  /** The metrics listener's URL once listening; undefined when metrics are off. */
  metricsUrl(): string | undefined;
  /** Starts the metrics listener when `metrics.enabled`. */
  listen(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Composes the admin API (admins from `config.admins`), the health check,
 * the metrics listener and the retention job over a server's media service
 * and stores. The retention job is scheduled only when a rule is set.
 */
export function createOperations(config: MediaServerConfig, deps: OperationsDeps): Operations {
  const { media, stores, metrics, logger } = deps;
  const clock = deps.clock ?? systemClock;
  metrics.watchUploadWaiters(() => media.uploadWaiters);
  const admin = new MediaAdmin({ media, queries: stores.metadata, logger, onAction: (entry) => metrics.adminActions.inc({ action: entry.action }) });
  const admins = new Set(config.admins);
  // The `admins` list first; then, with auth.homeserver_admins, the homeserver (asked with the caller's token).
  const isAdmin = (requester: Requester, ctx: Context): boolean | Promise<boolean> =>
    admins.has(requester.userId) || (deps.homeserverAdmins?.(requester, ctx) ?? false);
  const health = createHealthCheck({ metadata: stores.metadata, blobs: stores.blobs });
  const adminRouter = createAdminRouter({
    admin,
    authenticate: deps.authenticate,
    isAdmin,
  });
  const scanning = media.scanning;
  if (scanning !== undefined) metrics.watchScanQueue(() => scanning.queueDepth);
  const auditLog = hasAdminAuditLog(stores.metadata) ? stores.metadata : undefined;
  const recordAction = async (entry: AdminAction): Promise<void> => {
    await auditLog?.recordAdminAction(entry);
    metrics.adminActions.inc({ action: entry.action });
  };
  // POST /_hsmedia/admin/v1/media/{serverName}/{mediaId}/rescan, beside the other admin routes.
  const scanRouters = scanning === undefined ? [] : [createScanAdminRouter({ scanning, authenticate: deps.authenticate, isAdmin, recordAction, now: () => clock.now() })];
  // The console's read-only API (media listing, storage statistics): admin API like the rest, always on.
  const consoleApiRouter = createConsoleApiRouter({
    serverName: config.serverName,
    queries: stores.metadata,
    authenticate: deps.authenticate,
    isAdmin,
    remoteCacheBudgetBytes: config.retention.remoteCacheMaxBytes,
    now: () => clock.now(),
  });
  const consoleRouters = deps.adminConsole === undefined ? [] : [createAdminConsoleRouter(deps.adminConsole)];
  // GET /_hsmedia/admin/v1/users/{userId}/media/export: a user's media as a streamed archive.
  const exportRouter = createExportRouter({ serverName: config.serverName, blobs: stores.blobs, metadata: stores.metadata, authenticate: deps.authenticate, isAdmin, logger });
  const retention = (): Promise<RetentionResult> => runRetention(admin, config.retention, clock, metrics);
  if (hasRetentionRules(config.retention)) {
    deps.scheduler.schedule('retention', config.retention.intervalMs, async () => ({ ...(await retention()) }));
  }
  let metricsServer: MetricsServer | undefined;
  let starting: Promise<void> | undefined;
  return {
    admin,
    isAdmin,
    metrics,
    health,
    routers: [adminRouter, ...scanRouters, consoleApiRouter, ...consoleRouters, exportRouter, createHealthRouter(health)],
    runRetention: retention,
    metricsUrl: () => metricsServer?.url,
    listen() {
      if (!config.metrics.enabled) return Promise.resolve();
      starting ??= startMetricsServer({ ...config.metrics.listen, metrics, health, logger }).then((server) => {
        metricsServer = server;
        logger.info({ url: `${server.url}/metrics` }, 'metrics listening');
      });
      return starting;
    },
    async close() {
      await starting?.catch(() => undefined);
      await metricsServer?.close();
    },
  };
}
