import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { hasJobLeases, type MediaMetadataStore } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';

/** A periodic job: resolves with something to log (counts), or throws. */
export type BackgroundJob = (signal: AbortSignal) => Promise<Record<string, unknown>>;

/** Runs periodic jobs; with a shared database, one instance at a time per job. */
export interface JobScheduler {
  /** This instance's lease holder name (`host:pid:random`). */
  readonly holder: string;
  /**
   * Runs `job` every `intervalMs` (first run after `firstDelayMs`, default
   * `intervalMs`) on whichever instance holds the lease `job:<name>`.
   */
  schedule(name: string, intervalMs: number, job: BackgroundJob, firstDelayMs?: number): void;
  /**
   * Runs `job` now if this instance gets the lease (true), or not at all
   * (false). The lease lasts `leaseMs`.
   */
  runOnce(name: string, leaseMs: number, job: BackgroundJob): Promise<boolean>;
  /** Stops the timers, aborts running jobs, waits for them and releases this instance's leases. */
  close(): Promise<void>;
}

/**
 * A {@link JobScheduler} on the metadata store's {@link JobLeases}. Each run
 * takes the lease `job:<name>` for the job's interval and keeps it (no early
 * release), so across all instances a job runs at most about once per
 * interval, and the instance that ran it last usually runs it again (it
 * renews its own lease). A store without leases (a custom adapter) means a
 * single instance: jobs then simply run.
 */
export function createJobScheduler(metadata: MediaMetadataStore, logger: Logger): JobScheduler {
  const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`.slice(0, 255);
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const running = new Set<Promise<unknown>>();
  const held = new Set<string>();
  const shutdown = new AbortController();

  const runOnce = async (name: string, leaseMs: number, job: BackgroundJob): Promise<boolean> => {
    if (shutdown.signal.aborted) return false;
    const lease = `job:${name}`;
    if (hasJobLeases(metadata)) {
      let acquired: boolean;
      try {
        acquired = await metadata.tryAcquireLease(lease, holder, leaseMs);
      } catch (err) {
        logger.warn({ err, job: name }, 'could not take the job lease; skipping this run');
        return false;
      }
      if (!acquired) {
        logger.debug({ job: name }, 'job lease held by another instance; skipping');
        return false;
      }
      held.add(lease);
    }
    const started = Date.now();
    const run = job(shutdown.signal).then(
      (result) => logger.info({ job: name, duration_ms: Date.now() - started, ...result }, 'background job finished'),
      (err: unknown) => logger.error({ err, job: name }, 'background job failed'),
    );
    running.add(run);
    try {
      await run;
    } finally {
      running.delete(run);
    }
    return true;
  };

  return {
    holder,
    runOnce,
    schedule(name, intervalMs, job, firstDelayMs = intervalMs) {
      const tick = (delay: number): void => {
        if (shutdown.signal.aborted) return;
        const timer = setTimeout(() => {
          timers.delete(timer);
          void runOnce(name, intervalMs, job).finally(() => tick(intervalMs));
        }, delay);
        timer.unref();
        timers.add(timer);
      };
      tick(firstDelayMs);
    },
    async close() {
      shutdown.abort(new Error('shutting down'));
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...running]);
      if (hasJobLeases(metadata)) {
        for (const lease of held) await metadata.releaseLease(lease, holder).catch(() => false);
      }
      held.clear();
    },
  };
}
