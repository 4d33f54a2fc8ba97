import type { RateLimitDecision } from '@hsmedia/media-core';
import type { TokenBucketRate } from '@hsmedia/store-postgres';
import { Redis } from 'ioredis';

// The token bucket of TokenBucketRateLimiter, run inside Redis so that every process draws from
// one budget: read, refill, charge and write are one script (atomic), on the Redis server's clock.
// KEYS[1] the bucket; ARGV: tokens per ms, burst, cost (at most the burst), expiry in ms.
const TAKE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1])
local at = tonumber(stored[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if allowed == 1 then return {1, 0} end
return {0, math.max(1, math.ceil((cost - tokens) / rate - 0.000001))}
`;

interface TakeCommand {
  hsmediaTakeTokens(key: string, rate: string, burst: string, cost: string, ttlMs: string): Promise<[number, number]>;
}

const ALLOWED: RateLimitDecision = Object.freeze({ allowed: true });

/** Options for {@link RedisTokenBuckets}. */
export interface RedisTokenBucketsOptions {
  /** `redis://` or `rediss://` URL. Secret: never logged. */
  readonly url: string;
  /** Prefix of every key (the deployment's name), e.g. `hsmedia:example.org:rl:`. */
  readonly keyPrefix: string;
  /** Longest wait for one command; then the caller falls back. Default 1 000 ms. */
  readonly commandTimeoutMs?: number;
}

/**
 * Token buckets in Redis (ioredis). Commands fail at once while Redis is
 * unreachable (no offline queue) or after `commandTimeoutMs`, so a caller
 * can fall back instead of waiting; the client reconnects in the background.
 */
export class RedisTokenBuckets {
  readonly client: Redis;
  readonly #commands: TakeCommand;

  constructor(options: RedisTokenBucketsOptions) {
    this.client = new Redis(options.url, {
      keyPrefix: options.keyPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 1_000,
      retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), 5_000),
      lazyConnect: true,
    });
    // Errors are reported through the failing commands (the caller logs once); an 'error' event without a listener would crash.
    this.client.on('error', () => undefined);
    this.client.defineCommand('hsmediaTakeTokens', { numberOfKeys: 1, lua: TAKE_LUA });
    this.#commands = this.client as unknown as TakeCommand;
  }

  /** Connects, waiting at most `timeoutMs`; false (the client keeps trying) when Redis is not reachable by then. */
  async connect(timeoutMs: number): Promise<boolean> {
    const connected = this.client.connect().then(
      () => true,
      () => false,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([connected, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async take(key: string, rate: TokenBucketRate, cost: number): Promise<RateLimitDecision> {
    const needed = Math.min(cost, rate.burst);
    const ratePerMs = rate.perSecond / 1000;
    // Long enough for an idle bucket to refill completely: after that, forgetting it changes nothing.
    const ttlMs = Math.ceil(rate.burst / ratePerMs) + 1_000;
    const [allowed, retryAfterMs] = await this.#commands.hsmediaTakeTokens(key, String(ratePerMs), String(rate.burst), String(needed), String(ttlMs));
    return allowed === 1 ? ALLOWED : { allowed: false, retryAfterMs: Math.max(1, retryAfterMs) };
  }

  close(): void {
    this.client.disconnect();
  }
}
