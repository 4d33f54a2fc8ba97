/**
 * In-process wake-ups for readers waiting on an async (`/create`) upload:
 * the upload path calls {@link UploadWaiters.notify} the moment the record
 * is completed here, so a waiting download answers at once instead of at
 * its next metadata poll. Uploads that land on another instance are seen
 * by the poll only.
 */
export class UploadWaiters {
  readonly #waiters = new Map<string, Set<() => void>>();

  /**
   * Resolves after `ms`, when `key` is notified, or rejects when `signal`
   * aborts, whichever comes first.
   */
  wait(key: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason);
        return;
      }
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const set = this.#waiters.get(key);
        set?.delete(wake);
        if (set?.size === 0) this.#waiters.delete(key);
      };
      const wake = (): void => {
        finish();
        resolve();
      };
      const onAbort = (): void => {
        finish();
        reject(signal!.reason);
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.#waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(key, set);
      }
      set.add(wake);
    });
  }

  /** Wakes every waiter of `key`. */
  notify(key: string): void {
    const set = this.#waiters.get(key);
    if (set === undefined) return;
    for (const wake of [...set]) wake();
  }

  /** Waiters currently registered (for tests). */
  get size(): number {
    let total = 0;
    for (const set of this.#waiters.values()) total += set.size;
    return total;
  }
}
