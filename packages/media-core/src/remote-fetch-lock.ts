import type { Clock, Logger } from '@hsmedia/runtime';
import { RemoteMediaError } from './errors.js';
import type { JobLeases } from './job-leases.js';

/** Options of a {@link DeploymentFetchLock}. */
export interface DeploymentFetchLockOptions {
  /** Leases in the store every process shares (a SQL database). */
  readonly leases: JobLeases;
  /** This process's name as a lease holder; unique per process. */
  readonly holder: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often a waiting process looks for the record (and for a free lease). Default 200 ms. */
  readonly pollMs?: number | undefined;
  /** Lease time, renewed every third of it while the fetch runs (a crashed holder frees it after this). Default 30 s. */
  readonly ttlMs?: number | undefined;
}

/** What {@link DeploymentFetchLock.once} does for one remote item. */
export interface FetchOnce<T> {
  /** Fetches and stores the item (only the lease holder runs it). */
  readonly fetch: () => Promise<T>;
  /** The item as another process stored it, or null while it is not there. */
  readonly stored: () => Promise<T | null>;
  /** Give up waiting at this time (the caller's `timeout_ms`): 504. */
  readonly deadline: number;
  readonly signal: AbortSignal;
}

/**
 * One fetch of a remote media item per deployment, not per process: the
 * process that takes the item's lease (`remote-fetch:{server}/{mediaId}`)
 * fetches it; the others wait for the record it stores and serve the stored
 * blob, and take over if the lease is freed without a record (the fetch
 * failed, the holder died). In-process callers are already one fetch
 * (`RemoteMediaFetcher`), so a process waits with one poll loop per item.
 */
export class DeploymentFetchLock {
  readonly #leases: JobLeases;
  readonly #holder: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #pollMs: number;
  readonly #ttlMs: number;

  constructor(options: DeploymentFetchLockOptions) {
    this.#leases = options.leases;
    this.#holder = options.holder;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#pollMs = options.pollMs ?? 200;
    this.#ttlMs = options.ttlMs ?? 30_000;
  }

  async once<T>(name: string, work: FetchOnce<T>): Promise<T> {
    for (;;) {
      let acquired: boolean;
      try {
        acquired = await this.#leases.tryAcquireLease(name, this.#holder, this.#ttlMs);
      } catch (err) {
        // The shared store failing must not make the media unreachable: fetch without the lease.
        this.#logger.warn({ err, lease: name }, 'could not take the remote-fetch lease; fetching without it');
        return work.fetch();
      }
      if (acquired) return this.#holding(name, work);
      const theirs = await work.stored();
      if (theirs !== null) return theirs;
      const left = work.deadline - this.#clock.now();
      if (left <= 0) throw new RemoteMediaError('timeout', 'Another instance is still fetching this media');
      await pause(Math.min(this.#pollMs, left), work.signal);
    }
  }

  async #holding<T>(name: string, work: FetchOnce<T>): Promise<T> {
    const renew = setInterval(() => {
      this.#leases.tryAcquireLease(name, this.#holder, this.#ttlMs).catch(() => undefined);
    }, Math.max(1, Math.floor(this.#ttlMs / 3)));
    renew.unref();
    try {
      // The previous holder may have stored it just before freeing the lease.
      const theirs = await work.stored();
      if (theirs !== null) return theirs;
      return await work.fetch();
    } finally {
      clearInterval(renew);
      await this.#leases.releaseLease(name, this.#holder).catch(() => undefined);
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
