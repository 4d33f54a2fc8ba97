import { isValidMediaId, isValidServerName } from './ids.js';
import type { MediaService } from './media-service.js';
import { type Logger } from '@hsmedia/runtime';
import { AdminAuditTrail, type AdminContext } from './admin-audit-trail.js';
import type { MediaCatalog } from './media-catalog.js';
import { QuarantineHashes } from './quarantine-hashes.js';
import { inScope, scoped, type BulkDeletionScope, type EvictionResult, type LocalMediaDeletion } from './bulk-deletion-scope.js';

export type { BulkDeletionScope, EvictionResult, LocalMediaDeletion } from './bulk-deletion-scope.js';
import { toBlockedHashes, type ImportedBlockedHash } from './blocked-hash-list-format.js';
import {
  hasAdminAuditLog,
  type AdminAction,
  type AdminActionQuery,
  type AdminAuditLog,
  type BlockedHash,
  type BlockedHashPage,
  type MediaListOptions,
  type MediaQueries,
  type MediaQuery,
  type MediaRecord,
  type MediaUsagePage,
  type MediaUsageQuery,
  type RecordedAdminAction,
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
  /** Where every mutation is recorded. Default: `queries` when it implements `AdminAuditLog`; null: nowhere. */
  readonly audit?: AdminAuditLog | null;
  /** Called with each recorded action (for metrics). */
  readonly onAction?: (entry: AdminAction) => void;
}

/** A page of one user's media and how many they have in all. */
export interface UserMediaPage {
  readonly media: MediaRecord[];
  readonly total: number;
}

const SHA256_RE = /^[0-9a-f]{64}$/;

/** An entry for {@link MediaAdmin.blockHash}: `blockedAt` defaults to now. */
export interface HashBlock {
  readonly sha256: string;
  readonly reason?: string | null;
  readonly blockedBy?: string | null;
  readonly blockedAt?: number;
}

/** Who quarantines and why: kept in the audit log and with the content hashes a quarantine blocks. */
export type QuarantineContext = AdminContext;

/**
 * (Past 300 lines: one method per admin operation of Synapse's media admin
 * API and ours, each a few lines over the catalog, the audit trail and
 * `QuarantineHashes`; splitting them would only scatter that list. What a
 * bulk deletion may delete lives in `bulk-deletion-scope.ts`.)
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
 * simply match nothing. Every mutation is recorded in the audit log (when
 * the store keeps one) with the `AdminContext` given: bulk ones as one entry
 * (target a user ID, hash, `local_media` or `remote_cache`), and bulk
 * deletions without an actor (retention) only when they deleted anything.
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
  readonly #audit: AdminAuditTrail;
  readonly #hashes: QuarantineHashes;

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
    const log = options.audit === undefined ? (hasAdminAuditLog(options.queries) ? options.queries : undefined) : (options.audit ?? undefined);
    this.#hashes = new QuarantineHashes(this.#catalog, this.#queries, this.#logger);
    this.#audit = new AdminAuditTrail(log, this.#catalog.clock, this.#logger, options.onAction);
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
  async setQuarantined(serverName: string, mediaId: string, quarantined: boolean, context: AdminContext = {}): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const found = await this.#setOneQuarantined(serverName, mediaId, quarantined, context);
    await this.#audit.record(quarantined ? 'quarantine' : 'unquarantine', `mxc://${serverName}/${mediaId}`, context);
    return found;
  }

  async #setOneQuarantined(serverName: string, mediaId: string, quarantined: boolean, context: AdminContext): Promise<boolean> {
    const record = await this.#catalog.records.getMedia(serverName, mediaId);
    if (record === null && quarantined && !this.#catalog.isLocal(serverName)) return this.#hashes.quarantineThumbnailsOnly(serverName, mediaId, context);
    if (quarantined && record?.protected === true) {
      this.#logger.info({ serverName, mediaId }, 'protected media not quarantined');
      return false;
    }
    // The hash is blocked before the flag is set: a crash in between leaves the content refused, not served.
    if (quarantined && record?.sha256) await this.#hashes.block(record.sha256, context);
    const found = await this.#catalog.setQuarantined(serverName, mediaId, quarantined);
    if (found) this.#logger.info({ serverName, mediaId, quarantined }, 'media quarantine changed');
    if (!quarantined && record?.sha256) await this.#hashes.unblockWhenUnused(record.sha256);
    return found;
  }

  /**
   * Protects (or unprotects) one item: protected media is never quarantined,
   * neither by {@link setQuarantined} nor in bulk by {@link quarantineUserMedia}
   * or {@link quarantineByHash} (Synapse's `safe_from_quarantine`, meant for
   * sticker packs and other shared media). Protecting does not release an
   * item already quarantined. True when it exists.
   */
  async setProtected(serverName: string, mediaId: string, isProtected: boolean, context: AdminContext = {}): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const found = await this.#catalog.setProtected(serverName, mediaId, isProtected);
    if (found) this.#logger.info({ serverName, mediaId, protected: isProtected }, 'media protection changed');
    await this.#audit.record(isProtected ? 'protect' : 'unprotect', `mxc://${serverName}/${mediaId}`, context);
    return found;
  }

  /**
   * Flags (or unflags) one item as profile media (an avatar, as the
   * homeserver knows): bulk deletions keep it unless asked to include
   * profile media (Synapse's `keep_profiles`). True when it exists.
   */
  async setProfile(serverName: string, mediaId: string, isProfile: boolean, context: AdminContext = {}): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const found = await this.#catalog.setProfile(serverName, mediaId, isProfile);
    if (found) this.#logger.info({ serverName, mediaId, profile: isProfile }, 'profile media flag changed');
    await this.#audit.record(isProfile ? 'mark_profile' : 'unmark_profile', `mxc://${serverName}/${mediaId}`, context);
    return found;
  }

  /**
   * Quarantines (or releases) every upload of `userId` (protected media is
   * never quarantined this way); how many changed. Quarantining blocks each
   * item's hash, as {@link setQuarantined} does.
   */
  async quarantineUserMedia(userId: string, quarantined: boolean, context: AdminContext = {}): Promise<number> {
    const changed = await this.#setQuarantinedWhere({ userId }, quarantined, context);
    await this.#audit.record(quarantined ? 'quarantine' : 'unquarantine', userId, context);
    return changed;
  }

  /**
   * Quarantines (or releases) every item whose bytes hash to `sha256`
   * (lower- or upper-case hex), local or remote; protected items are
   * skipped. Quarantining puts the hash on the blocked-hash list (even when
   * no item has it yet), so the same bytes uploaded or fetched later are
   * refused; releasing takes it off. How many items changed; 0 for a
   * malformed hash.
   */
  async quarantineByHash(sha256: string, quarantined: boolean, context: AdminContext = {}): Promise<number> {
    const hash = sha256.toLowerCase();
    if (!SHA256_RE.test(hash)) return 0;
    if (quarantined) await this.#hashes.block(hash, context);
    else if ((await this.#catalog.blockedHashes?.unblock(hash)) === true) this.#logger.info({ sha256: hash }, 'hash unblocked');
    const changed = await this.#setQuarantinedWhere({ sha256: hash }, quarantined, context);
    await this.#audit.record(quarantined ? 'quarantine' : 'unquarantine', hash, context);
    return changed;
  }

  /**
   * Puts a hash (lower- or upper-case hex) on the blocked-hash list without
   * changing any record: those bytes are refused when uploaded or fetched and
   * not served (protected media excepted). True when newly blocked. Throws
   * `TypeError` for a malformed hash or when the store keeps no list.
   */
  async blockHash(entry: HashBlock): Promise<boolean> {
    const blocked = await this.#hashes.gate().block({
      sha256: entry.sha256.toLowerCase(),
      reason: entry.reason ?? null,
      blockedBy: entry.blockedBy ?? null,
      blockedAt: entry.blockedAt ?? this.#catalog.clock.now(),
    });
    if (blocked) this.#logger.info({ sha256: entry.sha256.toLowerCase(), blockedBy: entry.blockedBy ?? null }, 'hash blocked');
    await this.#audit.record('block_hash', entry.sha256.toLowerCase(), { by: entry.blockedBy ?? undefined, reason: entry.reason ?? undefined });
    return blocked;
  }

  /**
   * Adds a shared hash list (as `parseBlockedHashCsv`/`parseBlockedHashJson`
   * read it; who and when default to `context.by` and now) in one
   * transaction: nothing is added when any entry is malformed (`TypeError`),
   * hashes already listed keep their entry. Recorded once in the audit log
   * (target `blocked_hashes`). Throws `TypeError` when the store keeps no list.
   */
  async importBlockedHashes(list: readonly ImportedBlockedHash[], context: AdminContext = {}): Promise<{ imported: number; alreadyPresent: number }> {
    const entries = toBlockedHashes(list, { blockedBy: context.by ?? null, blockedAt: this.#catalog.clock.now() });
    const imported = await this.#hashes.gate().blockMany(entries);
    const unique = new Set(entries.map((entry) => entry.sha256)).size;
    this.#logger.info({ imported, alreadyPresent: unique - imported, by: context.by ?? null }, 'hash list imported');
    await this.#audit.record('import_hashes', 'blocked_hashes', context);
    return { imported, alreadyPresent: unique - imported };
  }

  /** Takes a hash off the list (records keep their quarantine flags); true when it was on it. */
  async unblockHash(sha256: string, context: AdminContext = {}): Promise<boolean> {
    const unblocked = await this.#hashes.gate().unblock(sha256.toLowerCase());
    if (unblocked) this.#logger.info({ sha256: sha256.toLowerCase() }, 'hash unblocked');
    await this.#audit.record('unblock_hash', sha256.toLowerCase(), context);
    return unblocked;
  }

  /** A page of the blocked-hash list, ordered by hash; [] when the store keeps no list. */
  listBlockedHashes(page: BlockedHashPage): Promise<BlockedHash[]> {
    return this.#catalog.blockedHashes?.store.listBlockedHashes(page) ?? Promise.resolve([]);
  }

  /** A page of the audit log, newest first; [] when the store keeps none. Throws `TypeError` for a malformed query. */
  listAdminActions(query: AdminActionQuery): Promise<RecordedAdminAction[]> {
    return this.#audit.log?.listAdminActions(query) ?? Promise.resolve([]);
  }

  /**
   * Deletes an item: its thumbnails (rows and blobs), its row, and its blob
   * when no other record uses it. True when the item existed.
   */
  async deleteMedia(serverName: string, mediaId: string, context: AdminContext = {}): Promise<boolean> {
    if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return false;
    const deleted = await this.#deleteOne(serverName, mediaId);
    if (deleted) await this.#audit.record('delete', `mxc://${serverName}/${mediaId}`, context);
    return deleted;
  }

  async #deleteOne(serverName: string, mediaId: string): Promise<boolean> {
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
  async deleteUserMedia(userId: string, page: MediaListOptions, scope: BulkDeletionScope = {}, context: AdminContext = {}): Promise<string[]> {
    const records = (await this.#queries.listMedia({ userId }, page)).filter((record) => inScope(record, scope));
    const deleted: string[] = [];
    for (const record of records) {
      if (isValidMediaId(record.mediaId) && (await this.#deleteOne(record.serverName, record.mediaId))) deleted.push(record.mediaId);
    }
    await this.#recordPurge(userId, deleted.length, context);
    return deleted;
  }

  /**
   * Deletes local media matching every given condition (none given:
   * nothing), quarantined and protected media only when `selection`
   * includes them; the IDs deleted.
   */
  async deleteLocalMedia(selection: LocalMediaDeletion, context: AdminContext = {}): Promise<string[]> {
    const conditions: MediaQuery = {
      ...(selection.lastUsedBefore === undefined ? {} : { lastUsedBefore: selection.lastUsedBefore }),
      ...(selection.createdBefore === undefined ? {} : { createdBefore: selection.createdBefore }),
      ...(selection.sizeGreaterThan === undefined ? {} : { sizeGreaterThan: selection.sizeGreaterThan }),
    };
    if (Object.keys(conditions).length === 0) return [];
    const deleted = (await this.#deleteWhere(scoped({ serverName: this.serverName, ...conditions }, selection))).map((record) => record.mediaId);
    await this.#recordPurge('local_media', deleted.length, context);
    return deleted;
  }

  /**
   * Deletes cached remote media last used before `before` (ms since epoch),
   * quarantined and protected media only when `scope` includes them
   * (Synapse keeps quarantined media out of its purges too); how many.
   */
  async purgeRemoteCache(before: number, createdBefore?: number, scope: BulkDeletionScope = {}, context: AdminContext = {}): Promise<number> {
    const query: MediaQuery = {
      notServerName: this.serverName,
      lastUsedBefore: before,
      ...(createdBefore === undefined ? {} : { createdBefore }),
    };
    const deleted = (await this.#deleteWhere(scoped(query, scope))).length;
    await this.#recordPurge('remote_cache', deleted, context);
    return deleted;
  }

  /**
   * Keeps the cached remote media within `maxBytes`: deletes the least
   * recently used items until the rest fits. Quarantined and protected media
   * count towards the budget but are deleted only when `scope` includes them,
   * so the rest may stay above `maxBytes`.
   */
  async evictRemoteCache(maxBytes: number, scope: BulkDeletionScope = {}, context: AdminContext = {}): Promise<EvictionResult> {
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
    await this.#recordPurge('remote_cache', deleted, context);
    return { deleted, freedBytes, remainingBytes: Math.max(0, remainingBytes) };
  }

  /** Per-uploader counts and sizes. */
  usageByUser(query: MediaUsageQuery): Promise<MediaUsagePage> {
    return this.#queries.mediaUsageByUser(query);
  }

  /** Records a bulk deletion: always when an admin acted, otherwise (retention) only when it deleted anything. */
  async #recordPurge(target: string, deleted: number, context: AdminContext): Promise<void> {
    if (deleted > 0 || context.by !== undefined) await this.#audit.record('purge', target, context);
  }

  async #setQuarantinedWhere(query: MediaQuery, quarantined: boolean, context: AdminContext): Promise<number> {
    let changed = 0;
    // Protected media is exempt from bulk quarantine; releasing covers it too (it may predate the protection).
    const selection: MediaQuery = quarantined ? { ...query, quarantined: false, protected: false } : { ...query, quarantined: true };
    for (;;) {
      // Changed records leave the selection, so the first page is always the next one.
      const batch = await this.#queries.listMedia(selection, { limit: this.#batchSize });
      let progress = 0;
      for (const record of batch) {
        if (isValidMediaId(record.mediaId) && (await this.#setOneQuarantined(record.serverName, record.mediaId, quarantined, context))) progress++;
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
      return isValidMediaId(record.mediaId) && (await this.#deleteOne(record.serverName, record.mediaId));
    } catch (err) {
      this.#logger.error({ err, serverName: record.serverName, mediaId: record.mediaId }, 'could not delete media');
      return false;
    }
  }
}
