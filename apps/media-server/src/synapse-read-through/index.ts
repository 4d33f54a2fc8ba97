/**
 * `synapse_read_through:` composed: the fallback the media service asks for
 * unknown local IDs, the background backfill, and the admin route reporting
 * progress (`GET /_hsmedia/admin/v1/import/synapse`).
 */
import { errors } from '@hsmedia/errors';
import { hasImportCursors, hasJobLeases, MediaImports, type MediaMetadataStore, type LocalMediaFallback, type MediaCatalog } from '@hsmedia/media-core';
import { HSMEDIA_ADMIN_PREFIX, type MediaRouteState } from '@hsmedia/media-routes';
import type { Clock, Logger, Requester } from '@hsmedia/runtime';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { SynapseReadThroughConfig } from '../synapse-read-through-config.js';
import { SynapseBackfill, type BackfillProgress } from './synapse-backfill.js';
import { SynapseConnection } from './synapse-item-import.js';
import { ProblemLog, SynapseReadThrough } from './synapse-read-through.js';

export { SynapseBackfill, type BackfillProgress } from './synapse-backfill.js';
export { SynapseReadThrough, type ImportProblem } from './synapse-read-through.js';

/** The route's answer (snake_case, like the other admin APIs). */
export interface SynapseImportReport {
  /** First-access imports of this process. */
  readonly read_through: { readonly imported: number; readonly not_in_synapse: number; readonly failed: number };
  readonly backfill: {
    readonly enabled: boolean;
    /** Whether this process runs it now (one process of a deployment does). */
    readonly running: boolean;
    readonly done: boolean;
    readonly imported: number;
    /** Already here when the backfill reached them (imported on first access). */
    readonly present: number;
    readonly failed: number;
    /** Items in Synapse's media tables (local and cached remote) when the job started; null before. */
    readonly total: number | null;
    readonly remaining: number | null;
    readonly files_per_second: number;
    /** Measured since this process started the job; null when it does not run it. */
    readonly measured_per_second: number | null;
  };
  /** The last problems (missing files, mismatches, thumbnails skipped, Synapse unavailable), newest last. */
  readonly errors: readonly { readonly server_name: string; readonly media_id: string; readonly code: string; readonly error: string; readonly at: number }[];
}

/** The parts of read-through a server holds. */
export interface SynapseReadThroughParts {
  /** A late-bound fallback for `MediaServiceOptions.localFallback` (the sink needs the service's catalog). */
  readonly fallback: LocalMediaFallback;
  /** Binds the sink to the media service's catalog and starts the backfill when enabled. */
  start(catalog: MediaCatalog): void;
  readonly backfill: () => SynapseBackfill | undefined;
  report(): Promise<SynapseImportReport>;
  router(authenticate: Middleware, isAdmin: (requester: Requester, ctx: Context) => boolean | Promise<boolean>): Router;
  close(): Promise<void>;
}

/** Everything `synapse_read_through:` needs from the server. */
export interface SynapseReadThroughDeps {
  readonly serverName: string;
  readonly metadata: MediaMetadataStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Wait after Synapse's database failed before the backfill tries again, in ms (tests shorten it). */
  readonly backfillRetryMs?: number;
}

/**
 * Sets read-through up. Synapse's database is opened on first use (the
 * server starts even while it is unreachable; requests then get 503).
 */
export function createSynapseReadThrough(config: SynapseReadThroughConfig, deps: SynapseReadThroughDeps): SynapseReadThroughParts {
  const { serverName, metadata, clock, logger } = deps;
  const connection = new SynapseConnection({ database: config.database, mediaStorePath: config.mediaStorePath }, logger);
  const problems = new ProblemLog();
  let readThrough: SynapseReadThrough | undefined;
  let backfill: SynapseBackfill | undefined;
  if (config.backfill.enabled && !hasImportCursors(metadata)) {
    logger.warn({}, 'the metadata store keeps no import cursors: the Synapse backfill starts from the beginning after a restart');
  }
  const report = async (): Promise<SynapseImportReport> => {
    const counts = readThrough?.counts ?? { imported: 0, notInSynapse: 0, failed: 0 };
    const progress: BackfillProgress | undefined = await backfill?.progress(true);
    return {
      read_through: { imported: counts.imported, not_in_synapse: counts.notInSynapse, failed: counts.failed },
      backfill: {
        enabled: progress !== undefined,
        running: progress?.running ?? false,
        done: progress?.done ?? false,
        imported: progress?.imported ?? 0,
        present: progress?.present ?? 0,
        failed: progress?.failed ?? 0,
        total: progress?.total ?? null,
        remaining: progress?.remaining ?? null,
        files_per_second: config.backfill.filesPerSecond,
        measured_per_second: progress?.measuredPerSecond ?? null,
      },
      errors: problems.list().map((problem) => ({ server_name: problem.serverName, media_id: problem.mediaId, code: problem.code, error: problem.message, at: problem.at })),
    };
  };
  return {
    fallback: {
      bring(mediaId) {
        if (readThrough === undefined) throw errors.unknown('Media not available yet: the server is starting', 503);
        return readThrough.bring(mediaId);
      },
    },
    start(catalog) {
      const imports = new MediaImports({ catalog, actor: 'synapse-import', logger });
      readThrough = new SynapseReadThrough({ connection, imports, serverName, problems, clock, logger, leases: hasJobLeases(metadata) ? metadata : undefined });
      if (!config.backfill.enabled) return;
      backfill = new SynapseBackfill({
        connection,
        imports,
        serverName,
        cursors: hasImportCursors(metadata) ? metadata : undefined,
        leases: hasJobLeases(metadata) ? metadata : undefined,
        filesPerSecond: config.backfill.filesPerSecond,
        problems,
        clock,
        logger,
        ...(deps.backfillRetryMs === undefined ? {} : { retryMs: deps.backfillRetryMs }),
      });
      backfill.start();
    },
    backfill: () => backfill,
    report,
    router(authenticate, isAdmin) {
      const router = new Router<MediaRouteState>();
      router.get(`${HSMEDIA_ADMIN_PREFIX}/import/synapse`, authenticate, async (ctx) => {
        const requester = ctx.state.requester;
        if (requester === undefined || requester.isGuest || !(await isAdmin(requester, ctx))) throw errors.forbidden('You are not a server admin');
        ctx.set('Cache-Control', 'no-store');
        ctx.body = await report();
      });
      return router;
    },
    async close() {
      await backfill?.close();
      await connection.close();
    },
  };
}
