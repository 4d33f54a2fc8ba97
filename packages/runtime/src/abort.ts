/**
 * Where an operation gets its `AbortSignal`: the signal itself, or a
 * function that makes one when first asked. The function form lets a hot
 * path (a cache hit) never create a signal at all; unlike a getter, it
 * survives object spread and copying.
 */
export type SignalSource = AbortSignal | (() => AbortSignal);

/** The signal of a {@link SignalSource}; undefined stays undefined (not abortable). */
export function signalOf(source: SignalSource | undefined): AbortSignal | undefined {
  return typeof source === 'function' ? source() : source;
}

/**
 * Waits for shared work on behalf of one caller: settles with `promise`, or
 * rejects with the abort reason as soon as the caller's signal fires. The
 * shared work itself goes on (other callers may still want it).
 */
export function raceAbort<T>(promise: Promise<T>, source: SignalSource | undefined): Promise<T> {
  const signal = signalOf(source);
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as unknown);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as unknown);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
