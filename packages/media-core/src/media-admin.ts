import { createHash } from 'node:crypto';
import { isValidMediaId, isValidServerName } from './ids.js';
import type { MediaService } from './media-service.js';
import { type Logger } from '@hsmedia/runtime';
import type { BlockedHashGate } from './blocked-hash-gate.js';
import type { MediaCatalog } from './media-catalog.js';
import {
  type BlobStore,
  type BlockedHash,
  type BlockedHashPage,
  type MediaListOptions,
  type MediaQueries,
  type MediaQuery,
  type MediaRecord,
  type MediaUsagePage,
  type MediaUsageQuery,
} from './ports/index.js';

/** Options for {@link MediaAdmin}. */
export interface MediaAdminOptions {
  /** The service that serves the media: every change goes through its catalog, which keeps the caches in step. */
  readonly media: MediaService;
  /** Queries over many records (normally the same metadata store the service uses). */
  readonly queries: MediaQueries;
  /** Default: the catalog's logger. */
  readonly logger?: Logger;
  /** Records changed per store query in bulk operations. Default 500. */
  readonly batchSize?: number;
}

/** A page of one user's media and how many they have in all. */
export interface UserMediaPage {
  readonly media: MediaRecord[];
  readonly total: number;
}

/**
 * What a bulk deletion (purge, retention, deletion by date, size or user)
 * may delete besides ordinary media. Quarantined media is kept by default so
 * a quarantine stays in force (and visible to moderators) until released;
 * protected media is kept because an admin chose to keep it.
 */
export interface BulkDeletionScope {
  /** Delete quarantined media too. Default false. */
  readonly includeQuarantined?: boolean | undefined;
  /** Delete protected media too. Default false. */
  readonly includeProtected?: boolean | undefined;
}

/** Which local media {@link MediaAdmin.deleteLocalMedia} deletes (every given condition must hold). */
export interface LocalMediaDeletion extends BulkDeletionScope {
  /** Last used (accessed, else uploaded) before this time, ms since epoch. */
  readonly lastUsedBefore?: number;
  /** Created before this time. */
  readonly createdBefore?: number;
  /** Larger than this many bytes. */
  readonly sizeGreaterThan?: number;
}

/** What {@link MediaAdmin.evictRemoteCache} did. */
export interface EvictionResult {
  readonly deleted: number;
  readonly freedBytes: number;
  /** Bytes of cached remote media left. */
  readonly remainingBytes: number;
}

const SHA256_RE = /^[0-9a-f]{64}$/;

/** `query` narrowed to what a bulk deletion in `scope` may delete. */
function scoped(query: MediaQuery, scope: BulkDeletionScope): MediaQuery {
  return {
    ...query,
    ...(scope.includeQuarantined === true ? {} : { quarantined: false }),
    ...(scope.includeProtected === true ? {} : { protected: false }),
  };
}

function inScope(record: MediaRecord, scope: BulkDeletionScope): boolean {
  return (scope.includeQuarantined === true || !record.quarantined) && (scope.includeProtected === true || record.protected !== true);
}

/** SHA-256 of a stored blob (a thumbnail row keeps none); null when it is gone. */
async function hashBlob(blobs: BlobStore, blobId: string): Promise<string | null> {
  const stream = await blobs.open(blobId);
  if (stream === null) return null;
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

/** An entry for {@link MediaAdmin.blockHash}: `blockedAt` defaults to now. */
export interface HashBlock {
  readonly sha256: string;
  readonly reason?: string | null;
  readonly blockedBy?: string | null;
  readonly blockedAt?: number;
}

/** Who quarantines and why: kept with the content hashes a quarantine blocks. */
export interface QuarantineContext {
  /** The acting admin (a Matrix user ID) or tool. */
  readonly by?: string | undefined;
  readonly reason?: string | undefined;
}

/**
 * (Just past 300 lines: one method per admin operation of Synapse's media
 * admin API, each a few lines over the catalog; splitting them would only
 * scatter that list.)
 *
 * Moderation and housekeeping over the ports: quarantine (by media, by
 * uploader, by content hash), protection from bulk quarantine, deletion (bytes, thumbnails and row), remote
 * cache purges, a space budget for the remote cache, usage statistics.
 *
 * Every change goes through the `MediaCatalog`, which drops the cached state
 * of this process (records, blobs, thumbnail rows).
 * Other instances sharing the stores keep serving a cached record for at most
 * their `cache.recordTtlMs` (default 60 s): set it lower where a quarantine
 * must bite faster everywhere.
 *
 * Methods take already validated server names and media IDs: invalid ones
 * simply match nothing.
 *
 * @example
 * ```ts
 * const admin = new MediaAdmin({ media, queries: metadata });
 * await admin.setQuarantined('example.org', 'abc', true);
 * const freed = await admin.purgeRemoteCache(Date.now() - 30 * 86_400_000);
 * ```
 */
export class MediaAdmin {
  readonly #catalog: MediaCatalog;
  readonly #queries: MediaQueries;
  readonly #logger: Logger;
  readonly #batchSize: number;

  constructor(options: MediaAdminOptions) {
    if (!options.media || !options.queries) throw new TypeError('MediaAdmin: media and queries are required');
    this.#catalog = options.media.catalog;
    this.#queries = options.queries;
    this.#logger = options.logger ?? this.#catalog.logger;
    const batchSize = options.batchSize ?? 500;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new TypeError('MediaAdmin: batchSize must be an integer from 1 to 10000');
    }
    this.#batchSize = batchSize;
  }

  /** This server's name (local media is media of this origin). */
  get serverName(): string {
    return this.#catalog.serverName;
  }

  /** The stored record, quarantined or not; null when unknown. */
  async getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return null;
    return this.#catalog.records.getMedia(serverName, mediaId);
  }

  /**
   * Quarantines (or releases) one item; true when it exists, false also when
   * it is protected and `quarantined` is true (protected media is never
   * quarantined, as in Synapse; releasing it always works).
   *
   * Quarantining also puts the item's content hash on the blocked-hash list
   * (when the store has one), so the same bytes are refused when uploaded or
   * fetched again and not served under any other ID. Releasing an item
   * takes its hash off the list once no other item with that hash is still
   * quarantined (a hash blocked for other copies stays blocked: release by
   * hash with {@link quarantineByHash} to clear it).
   */
  async setQuarantined(serverName: string, mediaId: string, quarantined: boolean, context: QuarantineContext = {}): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const record = await this.#catalog.records.getMedia(serverName, mediaId);
    if (record === null && quarantined && !this.#catalog.isLocal(serverName)) return this.#quarantineThumbnailsOnly(serverName, mediaId, context);
    if (quarantined && record?.protected === true) {
      this.#logger.info({ serverName, mediaId }, 'protected media not quarantined');
      return false;
    }
    // The hash is blocked before the flag is set: a crash in between leaves the content refused, not served.
    if (quarantined && record?.sha256) await this.#block(record.sha256, context);
    const found = await this.#catalog.setQuarantined(serverName, mediaId, quarantined);
    if (found) this.#logger.info({ serverName, mediaId, quarantined }, 'media quarantine changed');
    if (!quarantined && record?.sha256) await this.#unblockWhenUnused(record.sha256);
    return found;
  }

  /**
   * Protects (or unprotects) one item: protected media is never quarantined,
   * neither by {@link setQuarantined} nor in bulk by {@link quarantineUserMedia}
   * or {@link quarantineByHash} (Synapse's `safe_from_quarantine`, meant for
   * sticker packs and other shared media). Protecting does not release an
   * item already quarantined. True when it exists.
   */
  async setProtected(serverName: string, mediaId: string, isProtected: boolean): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const found = await this.#catalog.setProtected(serverName, mediaId, isProtected);
    if (found) this.#logger.info({ serverName, mediaId, protected: isProtected }, 'media protection changed');
    return found;
  }

  /**
   * Quarantines (or releases) every upload of `userId` (protected media is
   * never quarantined this way); how many changed. Quarantining blocks each
   * item's hash, as {@link setQuarantined} does.
   */
  quarantineUserMedia(userId: string, quarantined: boolean, context: QuarantineContext = {}): Promise<number> {
    return this.#setQuarantinedWhere({ userId }, quarantined, context);
  }

  /**
   * Quarantines (or releases) every item whose bytes hash to `sha256`
   * (lower- or upper-case hex), local or remote; protected items are
   * skipped. Quarantining puts the hash on the blocked-hash list (even when
   * no item has it yet), so the same bytes uploaded or fetched later are
   * refused; releasing takes it off. How many items changed; 0 for a
   * malformed hash.
   */
  async quarantineByHash(sha256: string, quarantined: boolean, context: QuarantineContext = {}): Promise<number> {
    const hash = sha256.toLowerCase();
    if (!SHA256_RE.test(hash)) return 0;
    if (quarantined) await this.#block(hash, context);
    else if ((await this.#catalog.blockedHashes?.unblock(hash)) === true) this.#logger.info({ sha256: hash }, 'hash unblocked');
    return this.#setQuarantinedWhere({ sha256: hash }, quarantined, context);
  }

  /**
   * Puts a hash (lower- or upper-case hex) on the blocked-hash list without
   * changing any record: those bytes are refused when uploaded or fetched and
   * not served (protected media excepted). True when newly blocked. Throws
   * `TypeError` for a malformed hash or when the store keeps no list.
   */
  async blockHash(entry: HashBlock): Promise<boolean> {
    const blocked = await this.#gate().block({
      sha256: entry.sha256.toLowerCase(),
      reason: entry.reason ?? null,
      blockedBy: entry.blockedBy ?? null,
      blockedAt: entry.blockedAt ?? this.#catalog.clock.now(),
    });
    if (blocked) this.#logger.info({ sha256: entry.sha256.toLowerCase(), blockedBy: entry.blockedBy ?? null }, 'hash blocked');
    return blocked;
  }

  /** Takes a hash off the list (records keep their quarantine flags); true when it was on it. */
  async unblockHash(sha256: string): Promise<boolean> {
    const unblocked = await this.#gate().unblock(sha256.toLowerCase());
    if (unblocked) this.#logger.info({ sha256: sha256.toLowerCase() }, 'hash unblocked');
    return unblocked;
  }

  /** A page of the blocked-hash list, ordered by hash; [] when the store keeps no list. */
  listBlockedHashes(page: BlockedHashPage): Promise<BlockedHash[]> {
    return this.#catalog.blockedHashes?.store.listBlockedHashes(page) ?? Promise.resolve([]);
  }

  /**
   * Deletes an item: its thumbnails (rows and blobs), its row, and its blob
   * when no other record uses it. True when the item existed.
   */
  async deleteMedia(serverName: string, mediaId: string): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const deleted = await this.#catalog.delete(serverName, mediaId);
    if (deleted) this.#logger.info({ serverName, mediaId }, 'media deleted');
    return deleted;
  }

  /** A page of `userId`'s uploads (default newest last) and their total count. */
  async listUserMedia(userId: string, page: MediaListOptions): Promise<UserMediaPage> {
    const [media, summary] = await Promise.all([
      this.#queries.listMedia({ userId }, page),
      this.#queries.summarizeMedia({ userId }),
    ]);
    return { media, total: summary.count };
  }

  /**
   * Deletes the page of `userId`'s uploads that {@link listUserMedia} would
   * list, without the quarantined and protected ones unless `scope` includes
   * them (they are skipped, so the page may delete fewer); the IDs deleted.
   */
  async deleteUserMedia(userId: string, page: MediaListOptions, scope: BulkDeletionScope = {}): Promise<string[]> {
    const records = (await this.#queries.listMedia({ userId }, page)).filter((record) => inScope(record, scope));
    const deleted: string[] = [];
    for (const record of records) {
      if (await this.deleteMedia(record.serverName, record.mediaId)) deleted.push(record.mediaId);
    }
    return deleted;
  }

  /**
   * Deletes local media matching every given condition (none given:
   * nothing), quarantined and protected media only when `selection`
   * includes them; the IDs deleted.
   */
  async deleteLocalMedia(selection: LocalMediaDeletion): Promise<string[]> {
    const conditions: MediaQuery = {
      ...(selection.lastUsedBefore === undefined ? {} : { lastUsedBefore: selection.lastUsedBefore }),
      ...(selection.createdBefore === undefined ? {} : { createdBefore: selection.createdBefore }),
      ...(selection.sizeGreaterThan === undefined ? {} : { sizeGreaterThan: selection.sizeGreaterThan }),
    };
    if (Object.keys(conditions).length === 0) return [];
    return (await this.#deleteWhere(scoped({ serverName: this.serverName, ...conditions }, selection))).map((record) => record.mediaId);
  }

  /**
   * Deletes cached remote media last used before `before` (ms since epoch),
   * quarantined and protected media only when `scope` includes them
   * (Synapse keeps quarantined media out of its purges too); how many.
   */
  async purgeRemoteCache(before: number, createdBefore?: number, scope: BulkDeletionScope = {}): Promise<number> {
    const query: MediaQuery = {
      notServerName: this.serverName,
      lastUsedBefore: before,
      ...(createdBefore === undefined ? {} : { createdBefore }),
    };
    return (await this.#deleteWhere(scoped(query, scope))).length;
  }

  /**
   * Keeps the cached remote media within `maxBytes`: deletes the least
   * recently used items until the rest fits. Quarantined and protected media
   * count towards the budget but are deleted only when `scope` includes them,
   * so the rest may stay above `maxBytes`.
   */
  async evictRemoteCache(maxBytes: number, scope: BulkDeletionScope = {}): Promise<EvictionResult> {
    let remainingBytes = (await this.#queries.summarizeMedia({ notServerName: this.serverName })).totalBytes;
    const query = scoped({ notServerName: this.serverName }, scope);
    let deleted = 0;
    let freedBytes = 0;
    let skipped = 0;
    while (remainingBytes > maxBytes) {
      const batch = await this.#queries.listMedia(query, {
        orderBy: 'last_used',
        limit: this.#batchSize,
        offset: skipped,
      });
      if (batch.length === 0) break;
      for (const record of batch) {
        if (remainingBytes <= maxBytes) break;
        if (await this.#deleteQuietly(record)) {
          deleted++;
          freedBytes += record.size ?? 0;
          remainingBytes -= record.size ?? 0;
        } else {
          skipped++;
        }
      }
    }
    return { deleted, freedBytes, remainingBytes: Math.max(0, remainingBytes) };
  }

  /** Per-uploader counts and sizes. */
  usageByUser(query: MediaUsageQuery): Promise<MediaUsagePage> {
    return this.#queries.mediaUsageByUser(query);
  }

  #gate(): BlockedHashGate {
    const gate = this.#catalog.blockedHashes;
    if (gate === undefined) throw new TypeError('MediaAdmin: the metadata store keeps no blocked-hash list');
    return gate;
  }

  async #block(sha256: string, context: QuarantineContext): Promise<void> {
    const gate = this.#catalog.blockedHashes;
    if (gate === undefined) return;
    const entry = { sha256, reason: context.reason ?? null, blockedBy: context.by ?? null, blockedAt: this.#catalog.clock.now() };
    if (await gate.block(entry)) this.#logger.info({ sha256, blockedBy: entry.blockedBy }, 'hash blocked');
  }

  /**
   * Remote media known only through thumbnails the remote made (no media
   * row): their hashes are blocked and the rows and blobs deleted, so they
   * stop being served and the same bytes are not cached again (the next
   * request fetches them and is refused, 404). True when there were any.
   */
  async #quarantineThumbnailsOnly(serverName: string, mediaId: string, context: QuarantineContext): Promise<boolean> {
    const rows = await this.#catalog.thumbnails.listThumbnails(serverName, mediaId);
    if (rows.length === 0) return false;
    if (this.#catalog.blockedHashes === undefined) {
      this.#logger.warn({ serverName, mediaId }, 'no blocked-hash list: thumbnails of unknown remote media deleted, not blocked');
    }
    for (const row of rows) {
      const sha256 = this.#catalog.blockedHashes === undefined ? null : await hashBlob(this.#catalog.blobs, row.blobId);
      if (sha256 !== null) await this.#block(sha256, context);
    }
    await this.#catalog.deleteThumbnails(serverName, mediaId);
    this.#logger.info({ serverName, mediaId, thumbnails: rows.length }, 'thumbnail-only remote media quarantined');
    return true;
  }

  /** Takes `sha256` off the list unless an item with those bytes is still quarantined. */
  async #unblockWhenUnused(sha256: string): Promise<void> {
    const gate = this.#catalog.blockedHashes;
    if (gate === undefined) return;
    if ((await this.#queries.listMedia({ sha256, quarantined: true }, { limit: 1 })).length > 0) return;
    if (await gate.unblock(sha256)) this.#logger.info({ sha256 }, 'hash unblocked');
  }

  async #setQuarantinedWhere(query: MediaQuery, quarantined: boolean, context: QuarantineContext): Promise<number> {
    let changed = 0;
    // Protected media is exempt from bulk quarantine; releasing covers it too (it may predate the protection).
    const selection: MediaQuery = quarantined ? { ...query, quarantined: false, protected: false } : { ...query, quarantined: true };
    for (;;) {
      // Changed records leave the selection, so the first page is always the next one.
      const batch = await this.#queries.listMedia(selection, { limit: this.#batchSize });
      let progress = 0;
      for (const record of batch) {
        if (await this.setQuarantined(record.serverName, record.mediaId, quarantined, context)) progress++;
      }
      changed += progress;
      if (batch.length < this.#batchSize || progress === 0) return changed;
    }
  }

  async #deleteWhere(query: MediaQuery): Promise<MediaRecord[]> {
    const deleted: MediaRecord[] = [];
    let skipped = 0;
    for (;;) {
      const batch = await this.#queries.listMedia(query, { orderBy: 'last_used', limit: this.#batchSize, offset: skipped });
      for (const record of batch) {
        if (await this.#deleteQuietly(record)) deleted.push(record);
        else skipped++;
      }
      if (batch.length < this.#batchSize) return deleted;
    }
  }

  /** Deletes one item of a bulk operation; a failure is logged and skipped, not fatal to the rest. */
  async #deleteQuietly(record: MediaRecord): Promise<boolean> {
    try {
      return await this.deleteMedia(record.serverName, record.mediaId);
    } catch (err) {
      this.#logger.error({ err, serverName: record.serverName, mediaId: record.mediaId }, 'could not delete media');
      return false;
    }
  }
}
