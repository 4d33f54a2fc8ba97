import type { MediaChange, MediaChangeFeed, MediaChangeListener } from './ports/index.js';

/**
 * The {@link MediaChangeFeed} of a single process (SQLite, the in-memory
 * stores): a change reaches the subscribers of this process only, on the
 * next microtask, so a publisher never runs listeners inside its own call.
 *
 * @example
 * ```ts
 * const changes = new InProcessMediaChangeFeed();
 * const media = new MediaService({ serverName, blobs, metadata, maxUploadBytes, changes });
 * ```
 */
export class InProcessMediaChangeFeed implements MediaChangeFeed {
  readonly #listeners = new Set<MediaChangeListener>();

  async publish(change: MediaChange): Promise<void> {
    await Promise.resolve();
    deliver(this.#listeners, change);
  }

  subscribe(listener: MediaChangeListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}

/** Calls every listener with `change`; one that throws does not stop the others. */
export function deliver(listeners: Iterable<MediaChangeListener>, change: MediaChange): void {
  for (const listener of [...listeners]) {
    try {
      listener(change);
    } catch {
      // Listeners must not throw (MediaChangeListener); one that does must not starve the rest.
    }
  }
}
