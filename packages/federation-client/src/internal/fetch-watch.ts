/**
 * The overall deadline and the minimum transfer rate of one remote media fetch. A remote that
 * drips its headers (one byte at a time, each inside the idle timeout) or its body would otherwise
 * hold the fetch, and every client waiting on it, for as long as it likes.
 */
import { RemoteMediaError } from '@hsmedia/media-core';
import type { TransportResponse } from '../transport.js';

/** The limits of {@link FetchWatch}, from `FederationClientOptions.timeouts`. */
export interface FetchLimits {
  /** Whole fetch, from the first lookup to the last body byte; 0: none. */
  readonly totalMs: number;
  /** Least bytes per second a response body must bring while we wait for it; 0: no check. */
  readonly minBytesPerSecond: number;
  /** The rate is measured over windows of this much waiting time. */
  readonly rateWindowMs: number;
}

/**
 * One fetch's watch: {@link signal} aborts (with `RemoteMediaError` `timeout` as its reason) when
 * the deadline passes or a body is too slow, which fails whatever request or body read is pending.
 * {@link end} stops the timers; call it once the media body has ended, failed or been cancelled.
 */
export class FetchWatch {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #limits: FetchLimits;
  readonly #what: string;
  readonly #deadline: ReturnType<typeof setTimeout> | undefined;
  #ended = false;

  constructor(limits: FetchLimits, what: string, callerSignal: AbortSignal | undefined) {
    this.#limits = limits;
    this.#what = what;
    this.signal = callerSignal === undefined ? this.#controller.signal : AbortSignal.any([callerSignal, this.#controller.signal]);
    if (limits.totalMs > 0) {
      this.#deadline = setTimeout(() => this.#fail(`not complete within ${limits.totalMs} ms`), limits.totalMs);
      this.#deadline.unref();
    }
  }

  /** Stops watching (the fetch is over one way or the other). */
  end(): void {
    this.#ended = true;
    clearTimeout(this.#deadline);
  }

  /** `res` with its body held to the minimum rate. */
  response(res: TransportResponse): TransportResponse {
    if (this.#limits.minBytesPerSecond <= 0) return res;
    return { ...res, body: this.#rated(res.body) };
  }

  #fail(detail: string): void {
    if (this.#ended) return;
    this.#controller.abort(new RemoteMediaError('timeout', `${this.#what}: ${detail}`));
  }

  /**
   * Counts bytes and the time spent waiting for them: only while a read is pending, so a consumer
   * that reads slowly (a slow client, a busy disk) never counts against the remote. Every
   * `rateWindowMs` of waiting must bring `minBytesPerSecond × rateWindowMs / 1000` bytes; a timer
   * ends a window that the remote fills too slowly even while a read is still pending.
   */
  #rated(source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const { minBytesPerSecond, rateWindowMs } = this.#limits;
    const needed = Math.ceil((minBytesPerSecond * rateWindowMs) / 1000);
    const reader = source.getReader();
    let waited = 0; // ms of waiting in the current window, before the pending read
    let bytes = 0; // bytes in the current window
    let since = 0; // when the pending read (or the current stretch of it) started
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closeWindow = (): boolean => {
      if (bytes < needed) {
        this.#fail(`body arrived at under ${minBytesPerSecond} bytes/s (${bytes} bytes in ${rateWindowMs} ms)`);
        return false;
      }
      waited = 0;
      bytes = 0;
      return true;
    };
    const arm = (): void => {
      since = performance.now();
      timer = setTimeout(() => {
        if (closeWindow()) arm(); // the read is still pending: a new window starts now
      }, rateWindowMs - waited);
      timer.unref();
    };
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          arm();
          try {
            const { done, value } = await reader.read();
            if (done) {
              controller.close();
              return;
            }
            waited += performance.now() - since;
            bytes += value.byteLength;
            if (waited >= rateWindowMs) closeWindow();
            controller.enqueue(value);
          } finally {
            clearTimeout(timer);
          }
        },
        cancel: (reason) => reader.cancel(reason),
      },
      { highWaterMark: 0 },
    );
  }
}
