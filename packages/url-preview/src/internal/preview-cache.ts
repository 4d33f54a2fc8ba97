/**
 * In-memory preview cache: results and (briefly) failures per normalised
 * URL, bounded in entries, least recently used evicted first.
 */

/** A cached outcome. */
export type CachedOutcome =
  | { readonly ok: true; readonly value: Readonly<Record<string, unknown>>; readonly expiresAt: number }
  | { readonly ok: false; readonly error: unknown; readonly expiresAt: number };

export class PreviewCache {
  readonly #entries = new Map<string, CachedOutcome>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  get(key: string, now: number): CachedOutcome | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.#entries.set(key, entry); // most recently used goes last
    return entry;
  }

  set(key: string, entry: CachedOutcome): void {
    if (this.#maxEntries <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
