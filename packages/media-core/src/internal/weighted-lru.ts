/**
 * A small least-recently-used map with an entry cap, an optional total
 * weight cap (bytes) and per-entry expiry. Internal to media-core: a Map
 * keeps insertion order, so re-inserting on read makes the first key the
 * least recently used one.
 */
export class WeightedLru<K, V> {
  readonly #entries = new Map<K, { value: V; weight: number; expiresAt: number; seq: number }>();
  readonly #maxEntries: number;
  readonly #maxWeight: number;
  #weight = 0;
  /** Insertions so far; an entry's `seq` is its insertion's number, so `#seq - seq` bounds its distance from the newest. */
  #seq = 0;

  constructor(maxEntries: number, maxWeight: number = Number.POSITIVE_INFINITY) {
    this.#maxEntries = maxEntries;
    this.#maxWeight = maxWeight;
  }

  /** Entry count. */
  get size(): number {
    return this.#entries.size;
  }

  /** Sum of the entries' weights. */
  get weight(): number {
    return this.#weight;
  }

  /** The value, or undefined when absent or expired (expired entries are dropped). */
  get(key: K, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      this.#weight -= entry.weight;
      return undefined;
    }
    // Moving to the back costs a Map delete and insert on every hit; an entry among the newest
    // quarter stays put (exact LRU up to 3 entries, close to it above).
    if (this.#seq - entry.seq > this.#entries.size >> 2) {
      this.#entries.delete(key);
      entry.seq = ++this.#seq;
      this.#entries.set(key, entry);
    }
    return entry.value;
  }

  /** Stores a value; silently skipped when it alone exceeds the caps. */
  set(key: K, value: V, weight: number, expiresAt: number = Number.POSITIVE_INFINITY): void {
    this.delete(key);
    if (this.#maxEntries <= 0 || weight > this.#maxWeight) return;
    this.#entries.set(key, { value, weight, expiresAt, seq: ++this.#seq });
    this.#weight += weight;
    while (this.#entries.size > this.#maxEntries || this.#weight > this.#maxWeight) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  /** Removes an entry; true when it was present. */
  delete(key: K): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#entries.delete(key);
    this.#weight -= entry.weight;
    return true;
  }

  clear(): void {
    this.#entries.clear();
    this.#weight = 0;
  }
}
