import { errors } from '@hsmedia/errors';
import type { Clock } from '@hsmedia/runtime';
import { WeightedLru } from './internal/weighted-lru.js';
import { SHA256_HEX_RE, type BlockedHash, type BlockedHashes, type MediaCandidate } from './ports/index.js';

/** Answers remembered per hash; a hot item costs one map lookup per request. */
const MAX_CACHED_ANSWERS = 50_000;

/**
 * The catalog's view of the blocked-hash list: every write to the list goes
 * through here so this process's cached answers follow at once; other
 * instances sharing the store see a change when it is announced on the
 * catalog's change feed, else within `ttlMs`.
 */
export class BlockedHashGate {
  /** The list itself, for reads that need no cache (listing pages). */
  readonly store: BlockedHashes;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #answers = new WeightedLru<string, boolean>(MAX_CACHED_ANSWERS);
  /** Bumped by every write: a lookup that overlapped one does not cache its (possibly stale) answer. */
  #generation = 0;
  readonly #onChange: ((sha256: string) => Promise<void>) | undefined;

  /** `onChange`: told after every write to the list (the catalog announces it to other processes). */
  constructor(store: BlockedHashes, clock: Clock, ttlMs: number, onChange?: (sha256: string) => Promise<void>) {
    this.store = store;
    this.#clock = clock;
    this.#ttlMs = ttlMs;
    this.#onChange = onChange;
  }

  /** Drops cached answers (of `sha256`, or all): another process changed the list. */
  forget(sha256?: string): void {
    if (sha256 !== undefined) {
      this.#forget(sha256);
      return;
    }
    this.#generation++;
    this.#answers.clear();
  }

  /** Whether `sha256` is blocked: synchronous on a cached answer, else one store lookup. */
  isBlocked(sha256: string): boolean | Promise<boolean> {
    const cached = this.#answers.get(sha256, this.#clock.now());
    if (cached !== undefined) return cached;
    return this.#lookUp(sha256);
  }

  /**
   * Refuses blocked bytes at admission: an upload with 403 `M_FORBIDDEN`
   * (the uploader learns why nothing was kept), remote media and remote
   * thumbnails with 404 `M_NOT_FOUND`, as quarantined media is answered.
   */
  async admit(candidate: MediaCandidate): Promise<void> {
    if (!(await this.#lookUp(candidate.sha256))) return;
    if (candidate.kind === 'upload') throw errors.forbidden('This content is blocked on this server');
    throw errors.notFound('Media not found');
  }

  async block(entry: BlockedHash): Promise<boolean> {
    try {
      return await this.store.blockHash(entry);
    } finally {
      this.#forget(entry.sha256);
      await this.#onChange?.(entry.sha256);
    }
  }

  /** Adds many entries, all or nothing (`BlockedHashes.blockHashes`); how many were new. */
  async blockMany(entries: readonly BlockedHash[]): Promise<number> {
    try {
      return await this.store.blockHashes(entries);
    } finally {
      // Cheaper than forgetting each of up to 100 000 hashes; the answers are refilled on demand.
      this.#generation++;
      this.#answers.clear();
    }
  }

  async unblock(sha256: string): Promise<boolean> {
    try {
      return await this.store.unblockHash(sha256);
    } finally {
      this.#forget(sha256);
      await this.#onChange?.(sha256);
    }
  }

  #forget(sha256: string): void {
    this.#generation++;
    this.#answers.delete(sha256);
  }

  async #lookUp(sha256: string): Promise<boolean> {
    if (!SHA256_HEX_RE.test(sha256)) return false;
    const generation = this.#generation;
    const blocked = await this.store.isHashBlocked(sha256);
    if (generation === this.#generation && this.#ttlMs > 0) this.#answers.set(sha256, blocked, 1, this.#clock.now() + this.#ttlMs);
    return blocked;
  }
}
