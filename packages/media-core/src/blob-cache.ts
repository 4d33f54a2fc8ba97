import { WeightedLru } from './internal/weighted-lru.js';

/** Options of a {@link BlobCache}. */
export interface BlobCacheOptions {
  /** Largest blob kept, in bytes; 0 disables the cache. */
  readonly maxItemBytes: number;
  /** Total bytes kept. */
  readonly maxTotalBytes: number;
  /** Called on every lookup that may hit (metrics). Must not throw. */
  readonly onLookup?: ((hit: boolean) => void) | undefined;
}

/**
 * Small immutable blobs kept in memory by blob ID, so a popular avatar or
 * thumbnail costs no read. Blobs never change under an ID, so entries need
 * no expiry; deletes drop them.
 */
export class BlobCache {
  readonly maxItemBytes: number;
  readonly #lru: WeightedLru<string, Uint8Array>;
  readonly #onLookup: ((hit: boolean) => void) | undefined;

  constructor(options: BlobCacheOptions) {
    this.maxItemBytes = options.maxItemBytes;
    this.#lru = new WeightedLru(options.maxItemBytes === 0 ? 0 : Number.MAX_SAFE_INTEGER, options.maxTotalBytes);
    this.#onLookup = options.onLookup;
  }

  /** The cached bytes, without counting a lookup (callers that count the miss later use {@link lookup}). */
  peek(blobId: string): Uint8Array | undefined {
    return this.#lru.get(blobId, 0);
  }

  /** The cached bytes; counts the lookup. */
  lookup(blobId: string): Uint8Array | undefined {
    const bytes = this.#lru.get(blobId, 0);
    this.#onLookup?.(bytes !== undefined);
    return bytes;
  }

  set(blobId: string, bytes: Uint8Array): void {
    if (bytes.byteLength <= this.maxItemBytes) this.#lru.set(blobId, bytes, bytes.byteLength);
  }

  delete(blobId: string): void {
    this.#lru.delete(blobId);
  }

  clear(): void {
    this.#lru.clear();
  }
}
