/**
 * Group commit of writes made by many concurrent callers: each caller hands
 * in one item and waits for its own answer; one flush at a time covers every
 * item handed in since the previous flush began (at most `maxBatch`). A
 * failed flush rejects every caller of that flush with its error. The blob
 * syncs and row inserts of a bulk import go through one, so N items in
 * flight share one round of fsyncs and one database transaction.
 */
export class GroupCommit<T, R> {
  readonly #flush: (items: readonly T[]) => Promise<readonly R[]>;
  readonly #maxBatch: number;
  #waiting: { readonly item: T; resolve(result: R): void; reject(err: unknown): void }[] = [];
  #flushing = false;

  /** `flush` answers one result per item, in order. */
  constructor(flush: (items: readonly T[]) => Promise<readonly R[]>, maxBatch: number) {
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError('GroupCommit: maxBatch must be a positive integer');
    this.#flush = flush;
    this.#maxBatch = maxBatch;
  }

  /** Resolves with the item's result once a flush covered it; rejects with that flush's error. */
  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#flushing) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#flushing = true;
    // One turn of the event loop first, so items finishing together share the flush.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#maxBatch);
      try {
        const results = await this.#flush(batch.map((waiter) => waiter.item));
        if (results.length !== batch.length) throw new Error(`GroupCommit: the flush answered ${results.length} results for ${batch.length} items`);
        batch.forEach((waiter, index) => waiter.resolve(results[index]!));
      } catch (err) {
        for (const waiter of batch) waiter.reject(err);
      }
    }
    this.#flushing = false;
  }
}
