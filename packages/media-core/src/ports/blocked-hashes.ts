/**
 * A list of content hashes that are never stored or served again: the part
 * of a quarantine that outlives every record (a re-upload of the same bytes,
 * remote media fetched again after a purge). Quarantine by ID, user or hash
 * adds to it (`MediaAdmin`); the catalog refuses blocked bytes at admission
 * and when serving.
 */

/** One entry of the list. */
export interface BlockedHash {
  /** SHA-256 of the bytes, 64 lower-case hex characters. */
  readonly sha256: string;
  /** Why it was blocked (free text); null when no reason was given. */
  readonly reason: string | null;
  /** Who blocked it (a Matrix user ID, or a tool's name); null when unknown. */
  readonly blockedBy: string | null;
  /** When, in ms since the epoch. */
  readonly blockedAt: number;
}

/** A page of {@link BlockedHashes.listBlockedHashes}: entries ordered by `sha256`, keyset-paged. */
export interface BlockedHashPage {
  /** Entries to return, 1 to 10 000. */
  readonly limit: number;
  /** Only entries whose `sha256` sorts after this one (the last of the previous page). */
  readonly after?: string | undefined;
  /**
   * Only entries whose `sha256` starts with this text (lower-case hex) or
   * whose reason contains it (ASCII case-insensitive); 1 to 255 characters.
   */
  readonly search?: string | undefined;
}

/** Longest {@link BlockedHashPage.search}. */
export const MAX_BLOCKED_HASH_SEARCH = 255;

/** Most entries one {@link BlockedHashes.blockHashes} call takes. */
export const MAX_BLOCKED_HASH_IMPORT = 100_000;

/**
 * The blocked-hash list. An optional capability of a `MediaMetadataStore`
 * (check with `hasBlockedHashes`): the SQL stores and the in-memory store
 * implement it. Hashes are lower-case hex; a malformed hash is a `TypeError`
 * for writes and "not blocked" for reads.
 */
export interface BlockedHashes {
  /** Adds an entry; false (the first entry kept unchanged) when the hash is already blocked. */
  blockHash(entry: BlockedHash): Promise<boolean>;
  /**
   * Adds many entries at once, all or nothing (one transaction): every entry
   * is checked before anything is written, a hash already listed keeps its
   * first entry, and a hash given twice counts once (its first entry). How
   * many were newly added. At most {@link MAX_BLOCKED_HASH_IMPORT} entries.
   */
  blockHashes(entries: readonly BlockedHash[]): Promise<number>;
  /** Removes an entry; true when it existed. */
  unblockHash(sha256: string): Promise<boolean>;
  /** Whether the hash is on the list. */
  isHashBlocked(sha256: string): Promise<boolean>;
  /** A page of the list, ordered by `sha256`. */
  listBlockedHashes(page: BlockedHashPage): Promise<BlockedHash[]>;
}

/** SHA-256 as the list stores it. */
export const SHA256_HEX_RE: RegExp = /^[0-9a-f]{64}$/;

/** Whether `store` also implements {@link BlockedHashes}. */
export function hasBlockedHashes<T extends object>(store: T): store is T & BlockedHashes {
  const candidate = store as Partial<BlockedHashes>;
  return (
    typeof candidate.blockHash === 'function' &&
    typeof candidate.blockHashes === 'function' &&
    typeof candidate.unblockHash === 'function' &&
    typeof candidate.isHashBlocked === 'function' &&
    typeof candidate.listBlockedHashes === 'function'
  );
}

/** Throws `TypeError` for an entry no store can keep faithfully (shared by the store implementations). */
export function checkBlockedHash(entry: BlockedHash): void {
  if (typeof entry?.sha256 !== 'string' || !SHA256_HEX_RE.test(entry.sha256)) throw new TypeError('sha256 must be 64 lower-case hex characters');
  if (entry.reason !== null && (typeof entry.reason !== 'string' || entry.reason.includes('\0') || entry.reason.length > 1000)) {
    throw new TypeError('reason must be null or a string of at most 1000 characters without NUL');
  }
  if (entry.blockedBy !== null && (typeof entry.blockedBy !== 'string' || entry.blockedBy.includes('\0') || entry.blockedBy.length > 255)) {
    throw new TypeError('blockedBy must be null or a string of at most 255 characters without NUL');
  }
  if (!Number.isSafeInteger(entry.blockedAt) || entry.blockedAt < 0) throw new TypeError('blockedAt must be a non-negative safe integer');
}

/** Throws `TypeError` for a page that is not `1..10000` entries or an `after` that is no hash. */
export function checkBlockedHashPage(page: BlockedHashPage): void {
  if (!Number.isSafeInteger(page?.limit) || page.limit < 1 || page.limit > 10_000) throw new TypeError('limit must be an integer from 1 to 10000');
  if (page.after !== undefined && (typeof page.after !== 'string' || !SHA256_HEX_RE.test(page.after))) {
    throw new TypeError('after must be 64 lower-case hex characters');
  }
  if (page.search !== undefined && (typeof page.search !== 'string' || page.search === '' || page.search.length > MAX_BLOCKED_HASH_SEARCH || page.search.includes('\0'))) {
    throw new TypeError(`search must be 1 to ${MAX_BLOCKED_HASH_SEARCH} characters without NUL`);
  }
}

/**
 * Checks every entry of a bulk import (`TypeError` naming the first bad
 * one's index) and gives them without repeated hashes, first entry kept.
 */
export function uniqueBlockedHashes(entries: readonly BlockedHash[]): BlockedHash[] {
  if (!Array.isArray(entries)) throw new TypeError('entries must be an array');
  if (entries.length > MAX_BLOCKED_HASH_IMPORT) throw new TypeError(`at most ${MAX_BLOCKED_HASH_IMPORT} entries at once`);
  const unique = new Map<string, BlockedHash>();
  entries.forEach((entry, index) => {
    try {
      checkBlockedHash(entry);
    } catch (err) {
      throw new TypeError(`entry ${index}: ${(err as Error).message}`);
    }
    if (!unique.has(entry.sha256)) unique.set(entry.sha256, { sha256: entry.sha256, reason: entry.reason, blockedBy: entry.blockedBy, blockedAt: entry.blockedAt });
  });
  return [...unique.values()];
}

/** Whether `entry` matches {@link BlockedHashPage.search} (the in-memory form of the SQL condition). */
export function matchesBlockedHashSearch(entry: BlockedHash, search: string | undefined): boolean {
  if (search === undefined) return true;
  if (entry.sha256.startsWith(asciiLower(search))) return true;
  return entry.reason !== null && asciiLower(entry.reason).includes(asciiLower(search));
}

/** Lower-cases ASCII letters only, as SQL `lower()` does on SQLite. */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}
