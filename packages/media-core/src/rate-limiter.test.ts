import { describe, expect, it } from 'vitest';
import { TokenBucketRateLimiter } from './rate-limiter.js';

function clockAt(start = 1_000_000): { now(): number; advance(ms: number): void } {
  let current = start;
  return { now: () => current, advance: (ms) => void (current += ms) };
}

describe('TokenBucketRateLimiter', () => {
  it('allows a burst, then refuses with the time until the next token', () => {
    const clock = clockAt();
    const limiter = new TokenBucketRateLimiter({ perSecond: 2, burst: 3, clock });
    for (let i = 0; i < 3; i++) expect(limiter.take('a')).toEqual({ allowed: true });
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterMs: 500 });
    clock.advance(499);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterMs: 1 });
    clock.advance(1);
    expect(limiter.take('a')).toEqual({ allowed: true });
  });

  it('keeps keys apart', () => {
    const limiter = new TokenBucketRateLimiter({ perSecond: 1, burst: 1, clock: clockAt() });
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true);
  });

  it('refills up to the burst only', () => {
    const clock = clockAt();
    const limiter = new TokenBucketRateLimiter({ perSecond: 10, burst: 2, clock });
    limiter.take('a');
    clock.advance(3_600_000);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('takes nothing from a refused request, and charges costs', () => {
    const clock = clockAt();
    const limiter = new TokenBucketRateLimiter({ perSecond: 1, burst: 5, clock });
    expect(limiter.take('a', 4).allowed).toBe(true);
    expect(limiter.take('a', 2)).toEqual({ allowed: false, retryAfterMs: 1000 });
    expect(limiter.take('a', 1).allowed).toBe(true);
    // A cost over the burst costs the whole bucket rather than never passing.
    clock.advance(5000);
    expect(limiter.take('a', 50).allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('mints no tokens when the clock steps back', () => {
    const clock = clockAt();
    const limiter = new TokenBucketRateLimiter({ perSecond: 1, burst: 1, clock });
    limiter.take('a');
    clock.advance(-10_000);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('bounds memory: drops refilled buckets first, never the one in use', () => {
    const clock = clockAt();
    const limiter = new TokenBucketRateLimiter({ perSecond: 1, burst: 1, clock, maxKeys: 10 });
    limiter.take('busy');
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`);
    expect(limiter.size).toBeLessThanOrEqual(10);
    // Every bucket is empty (no time passed): the oldest were dropped, the newest kept.
    expect(limiter.take('k99').allowed).toBe(false);
  });

  it('refuses bad options', () => {
    expect(() => new TokenBucketRateLimiter({ perSecond: 0, burst: 1 })).toThrow(TypeError);
    expect(() => new TokenBucketRateLimiter({ perSecond: 1, burst: 0.5 })).toThrow(TypeError);
    expect(() => new TokenBucketRateLimiter({ perSecond: Number.NaN, burst: 1 })).toThrow(TypeError);
    expect(() => new TokenBucketRateLimiter({ perSecond: 1, burst: 1, maxKeys: 0 })).toThrow(TypeError);
    expect(() => new TokenBucketRateLimiter({ perSecond: 1, burst: 1 }).take('a', -1)).toThrow(TypeError);
  });
});
