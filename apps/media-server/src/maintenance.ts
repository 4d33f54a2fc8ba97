import type { MediaMetadataStore } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';
import type { MediaServerConfig } from './config.js';
import { createJobScheduler, type JobScheduler } from './background-jobs.js';
import { sweepStaleStaging } from './staging-sweep.js';
import type { OpenStores } from './stores.js';

/**
 * A staging file untouched this long belongs to a dead upload. Longer than
 * the server's 30-minute request timeout, so no live upload is that old.
 */
export const STALE_STAGING_MS: number = 60 * 60 * 1000;

/** How often the staging sweep runs (on one instance of a deployment). */
export const STAGING_SWEEP_INTERVAL_MS: number = 15 * 60 * 1000;

/** Rows one statement of the pending clean-up deletes: short transactions, no long table locks. */
export const PENDING_CLEANUP_BATCH: number = 500;

/**
 * Deletes every pending `/create` record (never uploaded to) whose
 * `expiresAt` is at or before `now`, {@link PENDING_CLEANUP_BATCH} rows per
 * statement, until none is left or `signal` aborts. Such records already
 * answer 404 and do not count towards `max_pending_uploads`; this only
 * keeps the table from growing. A record completed meanwhile is never
 * deleted (the store re-checks `blob_id IS NULL` per row). Resolves with the
 * number deleted.
 */
export async function deleteExpiredPendingUploads(metadata: MediaMetadataStore, now: number, signal: AbortSignal): Promise<number> {
  let deleted = 0;
  while (!signal.aborted) {
    const batch = await metadata.deleteExpiredPendingMedia(now, PENDING_CLEANUP_BATCH);
    deleted += batch;
    if (batch < PENDING_CLEANUP_BATCH) break;
  }
  return deleted;
}

/** The background work of a running server. */
export interface Maintenance {
  readonly scheduler: JobScheduler;
  /** Staging files of crashed uploads removed at start. */
  readonly stagingFilesRemoved: number;
  /**
   * Runs the expired-pending-upload clean-up now (the `job:pending-cleanup`
   * lease permitting, as the periodic run): the number of records deleted,
   * or undefined when another instance holds the lease or the run failed
   * (logged like a periodic run).
   */
  runPendingCleanup(): Promise<number | undefined>;
}

/**
 * Start-up clean-up and periodic jobs. With SQLite (one instance per media
 * directory) every staging file at start is a leftover and goes. With
 * PostgreSQL, other instances may be writing to the same media directory
 * right now, so only stale staging files go, by one instance at a time (the
 * `job:staging-sweep` lease). The sweep then repeats every
 * {@link STAGING_SWEEP_INTERVAL_MS} on whichever instance holds the lease.
 * Expired `/create` records are deleted every `limits.pending_cleanup_interval`
 * the same way (the `job:pending-cleanup` lease).
 */
export async function startMaintenance(
  config: MediaServerConfig,
  stores: OpenStores,
  logger: Logger,
  // A cluster worker shares the media directory with its siblings even on SQLite.
  options: { readonly sharedMediaDirectory?: boolean } = {},
): Promise<Maintenance> {
  const scheduler = createJobScheduler(stores.metadata, logger);
  const mediaStore = config.mediaStore;
  // An S3 store's clean-up only aborts stale multipart uploads, so it is safe with other instances running.
  const sweepStale = (): Promise<number> =>
    mediaStore.kind === 's3' ? stores.blobs.cleanupStaging() : sweepStaleStaging(mediaStore.path, STALE_STAGING_MS);
  const sweep = async (): Promise<Record<string, unknown>> => ({ removed: await sweepStale() });
  let stagingFilesRemoved = 0;
  try {
    if (config.database.kind === 'sqlite' && options.sharedMediaDirectory !== true) {
      stagingFilesRemoved = await stores.blobs.cleanupStaging();
    } else {
      await scheduler.runOnce('staging-sweep', STAGING_SWEEP_INTERVAL_MS, async () => {
        stagingFilesRemoved = await sweepStale();
        return { removed: stagingFilesRemoved };
      });
    }
  } catch (error) {
    await scheduler.close();
    throw error;
  }
  if (stagingFilesRemoved > 0) {
    logger.info({ count: stagingFilesRemoved }, 'removed staging files of unfinished uploads');
  }
  scheduler.schedule('staging-sweep', STAGING_SWEEP_INTERVAL_MS, sweep);
  const orphanSweep = stores.orphanSweep;
  if (orphanSweep !== undefined) {
    // With or without dedup: a killed import or upload leaves unreferenced blobs on any store. One
    // instance at a time (the lease); the sweep's deletions are conditional, so uploads may run meanwhile.
    scheduler.schedule('blob-orphan-sweep', config.dedup.orphanSweepIntervalMs, async (signal) => ({ ...(await orphanSweep.sweep({ signal })) }));
  }

  const cleanupIntervalMs = config.limits.pendingCleanupIntervalMs;
  scheduler.schedule('pending-cleanup', cleanupIntervalMs, async (signal) => ({
    deleted: await deleteExpiredPendingUploads(stores.metadata, Date.now(), signal),
  }));
  const runPendingCleanup = async (): Promise<number | undefined> => {
    let deleted: number | undefined;
    await scheduler.runOnce('pending-cleanup', cleanupIntervalMs, async (signal) => {
      deleted = await deleteExpiredPendingUploads(stores.metadata, Date.now(), signal);
      return { deleted };
    });
    return deleted;
  };
  return { scheduler, stagingFilesRemoved, runPendingCleanup };
}
