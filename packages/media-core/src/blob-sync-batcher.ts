/**
 * Group commit for blobs written with `BlobPutOptions.deferSync`: callers
 * ask for their blob to be made durable and wait; one flush
 * (`BlobStore.syncBlobs`) at a time covers every blob asked for since the
 * previous one began. A bulk import with N items in flight then pays about
 * one round of fsyncs per N items, and each item still publishes its record
 * only after its own bytes are durable.
 */
export class BlobSyncBatcher {
  readonly #syncBlobs: (blobIds: readonly string[]) => Promise<void>;
  #waiting: { readonly blobId: string; resolve(): void; reject(err: unknown): void }[] = [];
  #flushing = false;

  constructor(syncBlobs: (blobIds: readonly string[]) => Promise<void>) {
    this.#syncBlobs = syncBlobs;
  }

  /** Resolves once the blob is durable; rejects with the flush's error. */
  sync(blobId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ blobId, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    // One turn of the event loop first, so items finishing together share the flush.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        await this.#syncBlobs(batch.map((waiter) => waiter.blobId));
        for (const waiter of batch) waiter.resolve();
      } catch (err) {
        for (const waiter of batch) waiter.reject(err);
      }
    }
    this.#flushing = false;
  }
}
