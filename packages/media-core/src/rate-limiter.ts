import { systemClock, type Clock } from '@hsmedia/runtime';

/** The outcome of {@link RateLimiter.take}. */
export type RateLimitDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** How long until the request would be allowed, in ms (for `retry_after_ms` / `Retry-After`). */
      readonly retryAfterMs: number;
    };

/**
 * Decides whether one more action of `key` is allowed now: in this process
 * ({@link TokenBucketRateLimiter}), or in a store every process of a
 * deployment shares (then the answer is a promise).
 */
export interface RateLimiter {
  /** Takes `cost` tokens (default 1) from `key`'s budget when allowed; takes nothing when refused. */
  take(key: string, cost?: number): RateLimitDecision | Promise<RateLimitDecision>;
}

/** Options for {@link TokenBucketRateLimiter}. */
export interface TokenBucketOptions {
  /** Tokens added per second (the sustained rate). Positive. */
  readonly perSecond: number;
  /** Bucket size: how many actions may happen at once after a quiet period. At least 1. */
  readonly burst: number;
  readonly clock?: Clock;
  /**
   * Buckets kept in memory at most. Full buckets carry no information and
   * are dropped first; beyond that the oldest are dropped (their keys start
   * again with a full bucket). Default 100 000.
   */
  readonly maxKeys?: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const ALLOWED: RateLimitDecision = Object.freeze({ allowed: true });

/**
 * A token bucket per key, in the memory of this process: each key holds up
 * to `burst` tokens, refilled at `perSecond`; an action costs one token (or
 * `cost`). Several instances of a server each keep their own buckets, so a
 * client spreading requests over N instances gets up to N times the rate:
 * share one budget through Redis or the database instead (the media server's
 * `cluster.shared_limits`).
 *
 * @example
 * ```ts
 * const limiter = new TokenBucketRateLimiter({ perSecond: 10, burst: 50 });
 * const decision = limiter.take('@alice:example.org');
 * if (!decision.allowed) throw errors.limitExceeded(decision.retryAfterMs);
 * ```
 */
export class TokenBucketRateLimiter implements RateLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly #clock: Clock;
  readonly #maxKeys: number;
  /** Insertion order = least recently used first (entries are re-inserted on use). */
  readonly #buckets = new Map<string, Bucket>();

  /** Throws `TypeError` for a non-positive rate, a burst below 1 or a bad `maxKeys`. */
  constructor(options: TokenBucketOptions) {
    if (!(Number.isFinite(options.perSecond) && options.perSecond > 0)) {
      throw new TypeError(`TokenBucketRateLimiter: perSecond must be a positive number, got ${options.perSecond}`);
    }
    if (!(Number.isFinite(options.burst) && options.burst >= 1)) {
      throw new TypeError(`TokenBucketRateLimiter: burst must be at least 1, got ${options.burst}`);
    }
    const maxKeys = options.maxKeys ?? 100_000;
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
      throw new TypeError(`TokenBucketRateLimiter: maxKeys must be a positive integer, got ${maxKeys}`);
    }
    this.perSecond = options.perSecond;
    this.burst = options.burst;
    this.#clock = options.clock ?? systemClock;
    this.#maxKeys = maxKeys;
  }

  /** Keys currently tracked (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, cost: number = 1): RateLimitDecision {
    if (!(Number.isFinite(cost) && cost >= 0)) throw new TypeError(`TokenBucketRateLimiter: bad cost ${cost}`);
    const now = this.#clock.now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.burst, updatedAt: now };
    // A clock that steps back must not mint tokens.
    const elapsedMs = Math.max(0, now - bucket.updatedAt);
    bucket.tokens = Math.min(this.burst, bucket.tokens + (elapsedMs * this.perSecond) / 1000);
    bucket.updatedAt = now;
    this.#buckets.delete(key);
    // Evict before re-inserting, so the bucket in use is never the one dropped.
    this.#evict(this.#maxKeys - 1);
    this.#buckets.set(key, bucket);
    // A cost above the burst could never be paid: treat it as the whole bucket.
    const needed = Math.min(cost, this.burst);
    if (bucket.tokens >= needed) {
      bucket.tokens -= needed;
      return ALLOWED;
    }
    // The epsilon absorbs floating-point dust (0.998 tokens must not round up to 2 ms).
    const retryAfterMs = Math.ceil(((needed - bucket.tokens) * 1000) / this.perSecond - 1e-6);
    return { allowed: false, retryAfterMs: Math.max(1, retryAfterMs) };
  }

  /** Forgets every bucket. */
  clear(): void {
    this.#buckets.clear();
  }

  #evict(limit: number): void {
    if (this.#buckets.size <= limit) return;
    // Shrink well below the cap so the sweep's cost is spread over many calls.
    const target = Math.floor(limit * 0.9);
    const now = this.#clock.now();
    // First drop buckets that have refilled: forgetting them changes nothing.
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.updatedAt) * this.perSecond) / 1000 >= this.burst) this.#buckets.delete(key);
    }
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= target) return;
      this.#buckets.delete(key);
    }
  }
}
