/**
 * Runs tasks one at a time per key, in this process: a check-then-write
 * (quota, pending-upload cap) cannot interleave with another for the same
 * user here. Other instances are not serialised.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    try {
      return await result;
    } finally {
      // Forget the key once nothing queued behind this task.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
