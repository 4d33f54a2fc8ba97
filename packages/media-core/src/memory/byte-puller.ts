import type { ByteSource } from '../ports/index.js';

/**
 * Reads a {@link ByteSource} one chunk at a time, so the reader can stop
 * between chunks (limit, abort) and close the source behind it.
 */
export interface BytePuller {
  /** The next chunk; rejects with the abort reason as soon as `signal` fires, even while the source is silent. */
  next(signal?: AbortSignal): Promise<IteratorResult<unknown>>;
  /** Closes the source after a failure (best effort; the caller keeps its own error). */
  release(reason: unknown): Promise<void>;
  /** Lets go of a source read to its end. */
  finish(): void;
}

function isWebStream(source: ByteSource): source is ReadableStream<Uint8Array> {
  return typeof (source as Partial<ReadableStream<Uint8Array>>).getReader === 'function';
}

function isDestroyable(value: object): value is { destroy(): void } {
  return typeof (value as { destroy?: unknown }).destroy === 'function';
}

/** Waits for `pull()` unless `signal` is (or becomes) aborted first. */
function unlessAborted<T>(pull: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return pull();
  if (signal.aborted) return Promise.reject(signal.reason as unknown);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as unknown);
    signal.addEventListener('abort', onAbort, { once: true });
    pull().then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Closes a source nobody has started reading, so its upstream (a request body, a download) is released. */
export async function releaseUnread(source: ByteSource, reason: unknown): Promise<void> {
  try {
    if (isWebStream(source)) {
      if (!source.locked) await source.cancel(reason);
    } else if (isDestroyable(source)) {
      // No error argument: an 'error' event nobody listens to would crash the process.
      source.destroy();
    } else {
      await source[Symbol.asyncIterator]().return?.();
    }
  } catch {
    // Best effort; the caller reports its own error.
  }
}

/** A {@link BytePuller} over a Web stream (through its reader) or any async iterable. */
export function pullerOf(source: ByteSource): BytePuller {
  if (isWebStream(source)) {
    const reader = source.getReader();
    return {
      next: (signal) => unlessAborted(() => reader.read(), signal),
      // Cancelling also settles a read still pending, so this never hangs.
      release: (reason) => reader.cancel(reason).catch(() => undefined),
      finish: () => reader.releaseLock(),
    };
  }
  const iterator = source[Symbol.asyncIterator]();
  let pending = false;
  return {
    next(signal) {
      return unlessAborted(() => {
        pending = true;
        const step = iterator.next();
        void step.then(
          () => (pending = false),
          () => (pending = false),
        );
        return step;
      }, signal);
    },
    async release() {
      try {
        const closing = iterator.return?.();
        // An async generator runs return() only after the next() in flight, which may never come
        // (a silent source after an abort): then closing goes on without us.
        if (pending) void closing?.catch(() => undefined);
        else await closing;
      } catch {
        // Best effort.
      }
    },
    finish: () => undefined,
  };
}
