import {
  checkBlockedHash,
  checkBlockedHashPage,
  matchesBlockedHashSearch,
  SHA256_HEX_RE,
  uniqueBlockedHashes,
  type BlockedHash,
  type BlockedHashPage,
} from '../ports/index.js';

/**
 * The blocked-hash list of `MemoryMetadataStore`, with the same argument
 * checks as the SQL stores, so a caller that passes here passes there.
 */
export class BlockedHashTable {
  readonly #entries = new Map<string, BlockedHash>();

  block(entry: BlockedHash): boolean {
    checkBlockedHash(entry);
    if (this.#entries.has(entry.sha256)) return false;
    this.#entries.set(entry.sha256, { sha256: entry.sha256, reason: entry.reason, blockedBy: entry.blockedBy, blockedAt: entry.blockedAt });
    return true;
  }

  /** Checks every entry first (a bad one writes nothing), then adds the new ones; how many were new. */
  blockMany(entries: readonly BlockedHash[]): number {
    let added = 0;
    for (const entry of uniqueBlockedHashes(entries)) {
      if (this.#entries.has(entry.sha256)) continue;
      this.#entries.set(entry.sha256, entry);
      added++;
    }
    return added;
  }

  unblock(sha256: string): boolean {
    return typeof sha256 === 'string' && this.#entries.delete(sha256);
  }

  has(sha256: string): boolean {
    return typeof sha256 === 'string' && SHA256_HEX_RE.test(sha256) && this.#entries.has(sha256);
  }

  list(page: BlockedHashPage): BlockedHash[] {
    checkBlockedHashPage(page);
    const after = page.after;
    return [...this.#entries.values()]
      .filter((entry) => (after === undefined || entry.sha256 > after) && matchesBlockedHashSearch(entry, page.search))
      .map((entry) => entry.sha256)
      .sort()
      .slice(0, page.limit)
      .map((sha256) => ({ ...this.#entries.get(sha256)! }));
  }
}
