/** Options of {@link TimeoutPolicy}, in ms. */
export interface TimeoutPolicyOptions {
  /** Used when the client gives no `timeout_ms`. Default 20 000 (Synapse's). */
  readonly defaultMs?: number;
  /** Cap on what a client may ask for. Default 60 000. */
  readonly maxMs?: number;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const MAX_TIMEOUT_MS = 60_000;

/**
 * The one answer to "how long may this request wait": for a pending async
 * upload, a remote fetch and a remote thumbnail alike. `timeout_ms` is the
 * spec's parameter on download and thumbnail requests (client-server API,
 * "Content repository", since v1.7), capped by the operator.
 */
export class TimeoutPolicy {
  readonly defaultMs: number;
  readonly maxMs: number;

  constructor(options: TimeoutPolicyOptions = {}) {
    const maxMs = options.maxMs ?? MAX_TIMEOUT_MS;
    const defaultMs = options.defaultMs ?? DEFAULT_TIMEOUT_MS;
    for (const [name, value] of [['maxMs', maxMs], ['defaultMs', defaultMs]] as const) {
      if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`TimeoutPolicy: ${name} must be a non-negative integer, got ${value}`);
    }
    this.maxMs = maxMs;
    this.defaultMs = Math.min(defaultMs, maxMs);
  }

  /** The wait for a request that asked for `requestedMs` (undefined: the default), within [0, max]. */
  waitMs(requestedMs: number | undefined): number {
    return Math.min(Math.max(0, requestedMs ?? this.defaultMs), this.maxMs);
  }

  /** As {@link waitMs}, but at least 1 ms: an outbound request always gets a chance to start. */
  fetchMs(requestedMs: number | undefined): number {
    return Math.max(1, this.waitMs(requestedMs));
  }
}
