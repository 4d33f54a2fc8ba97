import { createHash } from 'node:crypto';
import { errors } from '@hsmedia/errors';
import type { Clock } from '@hsmedia/runtime';
import { KeyedMutex } from './internal/keyed-mutex.js';
import type { JobLeases } from './job-leases.js';

/** Options of a {@link DeploymentUserLock}. */
export interface DeploymentUserLockOptions {
  /** Leases in the store every process shares (a SQL database); none: this process alone. */
  readonly leases?: JobLeases | undefined;
  /** This process's name as a lease holder; unique per process. */
  readonly holder: string;
  readonly clock: Clock;
  /**
   * Lease time: a holder that died frees the user after this. The guarded
   * steps are a few statements, far below it. Default 15 s.
   */
  readonly ttlMs?: number;
  /** Longest wait for the lease; then 429 `M_LIMIT_EXCEEDED`. Default 20 s (the TTL and a margin). */
  readonly maxWaitMs?: number;
}

/** First pause between two tries of a taken lease, doubled per try up to {@link MAX_PAUSE_MS}. */
const FIRST_PAUSE_MS = 5;
const MAX_PAUSE_MS = 100;
/** The lease table's name column holds 255 characters (migration 0004). */
const MAX_LEASE_NAME = 255;

/** The lease of `key`: readable when it fits, else by the key's SHA-256 (user IDs reach 255 characters, spec "User Identifiers"). */
function leaseName(key: string): string {
  const name = `user:${key}`;
  return name.length <= MAX_LEASE_NAME && !name.includes('\0') ? name : `user-sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * Runs check-then-write steps about one user (quota check and record write,
 * pending-ID count and insert) one at a time across the deployment: in this
 * process through a mutex per key, across processes through the lease
 * `user:{key}` in the shared database (a JobLeases row), so two instances finishing uploads of
 * the same user cannot both pass a quota that has room for one. Without
 * leases (one process) the mutex alone does it.
 */
export class DeploymentUserLock {
  readonly #leases: JobLeases | undefined;
  readonly #holder: string;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #maxWaitMs: number;
  readonly #local = new KeyedMutex();

  constructor(options: DeploymentUserLockOptions) {
    this.#leases = options.leases;
    this.#holder = options.holder;
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs ?? 15_000;
    this.#maxWaitMs = options.maxWaitMs ?? 20_000;
  }

  /**
   * Runs `task` while holding `key` across the deployment. Throws 429
   * `M_LIMIT_EXCEEDED` when the lease stays taken longer than `maxWaitMs`
   * (without running `task`); a failing lease store fails the call.
   */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const leases = this.#leases;
    if (leases === undefined) return this.#local.run(key, task);
    // The mutex first: leases are re-entrant per holder, so two calls of this process must not both "take" it.
    return this.#local.run(key, async () => {
      const name = leaseName(key);
      await this.#acquire(leases, name);
      try {
        return await task();
      } finally {
        await leases.releaseLease(name, this.#holder).catch(() => false);
      }
    });
  }

  async #acquire(leases: JobLeases, name: string): Promise<void> {
    const deadline = this.#clock.now() + this.#maxWaitMs;
    let pauseMs = FIRST_PAUSE_MS;
    while (!(await leases.tryAcquireLease(name, this.#holder, this.#ttlMs))) {
      const left = deadline - this.#clock.now();
      if (left <= 0) throw errors.limitExceeded(1_000, 'Another upload of yours is still being recorded; try again');
      await new Promise((resolve) => setTimeout(resolve, Math.min(pauseMs, left)));
      pauseMs = Math.min(MAX_PAUSE_MS, pauseMs * 2);
    }
  }
}
