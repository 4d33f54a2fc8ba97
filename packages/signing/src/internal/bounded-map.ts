/**
 * A `Map` that forgets its oldest entries beyond `max`, so that a flood of
 * requests naming random servers cannot grow memory without bound.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly #max: number;

  constructor(max: number) {
    super();
    this.#max = max;
  }

  override set(key: K, value: V): this {
    // Re-inserting moves the key to the newest position.
    super.delete(key);
    super.set(key, value);
    while (this.size > this.#max) {
      const oldest = this.keys().next();
      if (oldest.done === true) break;
      super.delete(oldest.value);
    }
    return this;
  }
}
