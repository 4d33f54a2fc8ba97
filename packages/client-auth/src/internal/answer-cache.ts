import { raceAbort } from '@hsmedia/runtime';

/** Options for {@link AnswerCache}. */
export interface AnswerCacheOptions<V> {
  /** How long an answer is believed, by answer (e.g. shorter for "no"); 0 caches nothing. */
  readonly ttlMsOf: (answer: V) => number;
  /** Capacity: the oldest entries are evicted first. */
  readonly maxEntries: number;
  readonly now: () => number;
}

/**
 * What the homeserver answered about a token, by a key the caller derives (a hash, never the
 * token): answers are believed for their time to live, and concurrent questions with one key share
 * one request. A failed question is not cached. Shared by the whoami verifier and the admin check.
 */
export class AnswerCache<V> {
  readonly #options: AnswerCacheOptions<V>;
  readonly #cache = new Map<string, { readonly answer: V; readonly expiresAt: number }>();
  readonly #inFlight = new Map<string, Promise<V>>();

  constructor(options: AnswerCacheOptions<V>) {
    this.#options = options;
  }

  /** The cached answer for `key`, or the one `ask` gives (asked once for concurrent callers). */
  /** The unexpired answer for `key`, or undefined (an expired one is dropped); never asks. */
  peek(key: string): V | undefined {
    const cached = this.#cache.get(key);
    if (cached === undefined) return undefined;
    if (cached.expiresAt > this.#options.now()) return cached.answer;
    this.#cache.delete(key);
    return undefined;
  }

  get(key: string, ask: () => Promise<V>, signal?: AbortSignal): Promise<V> {
    const cached = this.#cache.get(key);
    if (cached) {
      if (cached.expiresAt > this.#options.now()) return Promise.resolve(cached.answer);
      this.#cache.delete(key);
    }
    let pending = this.#inFlight.get(key);
    if (!pending) {
      // Shared by every caller, so one caller's abort must not cancel it; the asker's timeout bounds it.
      pending = ask().then((answer) => {
        this.#remember(key, answer);
        return answer;
      });
      const forget = (): void => void this.#inFlight.delete(key);
      pending.then(forget, forget);
      this.#inFlight.set(key, pending);
    }
    return raceAbort(pending, signal);
  }

  #remember(key: string, answer: V): void {
    const ttl = this.#options.ttlMsOf(answer);
    if (ttl <= 0) return;
    this.#cache.delete(key);
    while (this.#cache.size >= this.#options.maxEntries) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    this.#cache.set(key, { answer, expiresAt: this.#options.now() + ttl });
  }
}
