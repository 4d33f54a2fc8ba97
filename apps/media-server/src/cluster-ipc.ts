/**
 * What the workers of one `hsmedia-server start` (`workers` > 1) share
 * through their supervisor when the deployment has no engine to share it
 * with (SQLite, no Redis): media changes and rate-limit buckets travel over
 * the node:cluster IPC channel every worker already has with the primary.
 *
 * - Changes: a worker publishes to its own listeners and sends the change to
 *   the supervisor, which relays it to every other worker
 *   (`SupervisorRelay.onMessage`).
 * - Limits: the supervisor holds the token buckets; a worker asks it for
 *   each draw and falls back to its own buckets when no answer comes within
 *   `TAKE_TIMEOUT_MS` (the caller, `SharedRateLimiter`, does the fallback).
 */
import type { Worker } from 'node:cluster';
import { InProcessMediaChangeFeed, parseMediaChange, TokenBucketRateLimiter, type MediaChange, type MediaChangeFeed, type MediaChangeListener, type RateLimitDecision } from '@hsmedia/media-core';
import type { TokenBucketRate } from '@hsmedia/store-postgres';
import { SUPERVISOR_MESSAGE, type SupervisorMessage, type TakeMessage, type WorkerMessage } from './worker-messages.js';

/** A draw the supervisor has not answered by then is refused locally (the worker falls back to its own buckets). */
const TAKE_TIMEOUT_MS = 1_000;

/** The IPC channel of a worker: `process` in a node:cluster worker. */
export interface WorkerChannel {
  /** `process.send`: the callback form, so a failed send is reported there and never thrown or emitted. */
  send?: ((message: WorkerMessage, callback: (error: Error | null) => void) => boolean) | undefined;
  readonly connected?: boolean;
  on(event: 'message', listener: (message: SupervisorMessage) => void): unknown;
  off(event: 'message', listener: (message: SupervisorMessage) => void): unknown;
}

function sendToSupervisor(channel: WorkerChannel, message: WorkerMessage): boolean {
  if (channel.send === undefined || channel.connected === false) return false;
  try {
    return channel.send(message, () => undefined);
  } catch {
    // The channel closed under us (the supervisor is gone): the worker is about to stop anyway.
    return false;
  }
}

/**
 * The {@link MediaChangeFeed} of a worker without PostgreSQL: changes reach
 * this worker's listeners at once and the sibling workers through the
 * supervisor, in the order each worker sent them.
 */
export class IpcMediaChangeFeed implements MediaChangeFeed {
  readonly #local = new InProcessMediaChangeFeed();
  readonly #channel: WorkerChannel;
  readonly #onMessage = (message: SupervisorMessage): void => {
    if (message?.type !== SUPERVISOR_MESSAGE.change) return;
    const change = parseMediaChange(message.change);
    if (change !== undefined) void this.#local.publish(change);
  };

  constructor(channel: WorkerChannel) {
    this.#channel = channel;
    channel.on('message', this.#onMessage);
  }

  async publish(change: MediaChange): Promise<void> {
    sendToSupervisor(this.#channel, { type: SUPERVISOR_MESSAGE.change, change });
    await this.#local.publish(change);
  }

  subscribe(listener: MediaChangeListener): () => void {
    return this.#local.subscribe(listener);
  }

  close(): void {
    this.#channel.off('message', this.#onMessage);
  }
}

interface PendingTake {
  readonly resolve: (decision: RateLimitDecision) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Token buckets held by the supervisor for every worker (a `SharedTokenBuckets` of `shared-limits.ts`). */
export class IpcTokenBuckets {
  readonly #channel: WorkerChannel;
  readonly #pending = new Map<number, PendingTake>();
  #nextId = 1;
  readonly #onMessage = (message: SupervisorMessage): void => {
    if (message?.type !== SUPERVISOR_MESSAGE.taken) return;
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    pending.resolve(message.allowed ? { allowed: true } : { allowed: false, retryAfterMs: Math.max(1, message.retryAfterMs) });
  };

  constructor(channel: WorkerChannel) {
    this.#channel = channel;
    channel.on('message', this.#onMessage);
  }

  take(key: string, rate: TokenBucketRate, cost: number): Promise<RateLimitDecision> {
    const id = this.#nextId++;
    return new Promise<RateLimitDecision>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`the supervisor did not answer a rate-limit draw within ${TAKE_TIMEOUT_MS} ms`));
      }, TAKE_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      const message: TakeMessage = { type: SUPERVISOR_MESSAGE.take, id, key, perSecond: rate.perSecond, burst: rate.burst, cost };
      if (!sendToSupervisor(this.#channel, message)) {
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(new Error('no IPC channel to the supervisor'));
      }
    });
  }

  close(): void {
    this.#channel.off('message', this.#onMessage);
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error('closed'));
      this.#pending.delete(id);
    }
  }
}

/**
 * Sends to a worker without ever throwing: a worker that exits between the
 * `isConnected` check and the send must not take the supervisor down (an
 * unhandled send error would); the callback swallows the late failure.
 */
function sendToWorker(worker: Worker, message: SupervisorMessage): void {
  if (!worker.isConnected()) return;
  try {
    worker.send(message, () => undefined);
  } catch {
    // The channel closed under us: that worker is gone and needs nothing more.
  }
}

function isFinitePositive(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

/**
 * The supervisor's side: relays each worker's media changes to the other
 * workers and answers their token-bucket draws from buckets it holds (one
 * `TokenBucketRateLimiter` per configured rate; keys carry the limit's name).
 */
export class SupervisorRelay {
  readonly #workers: () => Iterable<Worker>;
  readonly #buckets = new Map<string, TokenBucketRateLimiter>();

  /** `workers`: the live workers now (asked on each relayed change). */
  constructor(workers: () => Iterable<Worker>) {
    this.#workers = workers;
  }

  /** Handles one message of `from`; false when it is not one of the relay's. */
  onMessage(from: Worker, message: WorkerMessage): boolean {
    if (message?.type === SUPERVISOR_MESSAGE.change) {
      const change = parseMediaChange(message.change);
      if (change === undefined) return true;
      for (const worker of this.#workers()) {
        if (worker !== from) sendToWorker(worker, { type: SUPERVISOR_MESSAGE.change, change });
      }
      return true;
    }
    if (message?.type === SUPERVISOR_MESSAGE.take) {
      sendToWorker(from, this.#take(message));
      return true;
    }
    return false;
  }

  #take(message: TakeMessage): SupervisorMessage {
    const { id, key, perSecond, burst, cost } = message;
    // Workers are our own processes, but a malformed draw must answer (the worker waits), not throw here.
    if (typeof key !== 'string' || !isFinitePositive(perSecond) || !(isFinitePositive(burst) && burst >= 1) || !(typeof cost === 'number' && cost >= 0)) {
      return { type: SUPERVISOR_MESSAGE.taken, id, allowed: true, retryAfterMs: 0 };
    }
    const rateKey = `${perSecond}/${burst}`;
    let limiter = this.#buckets.get(rateKey);
    if (limiter === undefined) {
      limiter = new TokenBucketRateLimiter({ perSecond, burst });
      this.#buckets.set(rateKey, limiter);
    }
    const decision = limiter.take(key, cost);
    return { type: SUPERVISOR_MESSAGE.taken, id, allowed: decision.allowed, retryAfterMs: decision.allowed ? 0 : decision.retryAfterMs };
  }
}
