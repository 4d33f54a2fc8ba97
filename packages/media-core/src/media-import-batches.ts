import type { Logger } from '@hsmedia/runtime';
import { GroupCommit } from './group-commit.js';
import type { MediaCatalog } from './media-catalog.js';
import { hasBlockedHashBatches, hasMediaRecordBatches, MAX_MEDIA_BATCH, type MediaRecord } from './ports/index.js';

/** What a page lookup learnt about one item: its record (null: none), and whether its expected hash is blocked. */
export interface KnownItem {
  readonly record: MediaRecord | null;
  /** Set when the item named the SHA-256 its bytes must have and the list was asked about it. */
  readonly blocked?: { readonly sha256: string; readonly blocked: boolean };
}

/** The identity and checks of an item a page lookup asks about. */
export interface LookupItem {
  readonly serverName: string;
  readonly mediaId: string;
  /** Ask the blocked-hash list about this hash (unquarantined, unprotected items with a known hash). */
  readonly sha256?: string;
}

const keyOf = (serverName: string, mediaId: string): string => JSON.stringify([serverName, mediaId]);

/**
 * The records and blocked-hash answers of the items of the pages an importer
 * announced (`MediaImports.prefetch`): one query for the records of a page
 * and one for the hashes it names, instead of one each per item. Each answer
 * is taken once; answers of the two most recent pages are kept, older ones
 * dropped (an item not taken by then asks the store itself).
 *
 * Acting on an answer that has gone stale is safe: an absent record is
 * inserted only if still absent (`insertMedia` decides), a pending one
 * completed only if still pending, and the row commit asks the blocked-hash
 * list again right before the insert.
 */
export class ImportLookahead {
  readonly #catalog: MediaCatalog;
  #current = new Map<string, KnownItem>();
  #previous = new Map<string, KnownItem>();

  constructor(catalog: MediaCatalog) {
    this.#catalog = catalog;
  }

  /** Whether the stores can answer a page at once; `load` does nothing otherwise. */
  get enabled(): boolean {
    return hasMediaRecordBatches(this.#catalog.records);
  }

  /** Looks up a page of items (any number; queried `MAX_MEDIA_BATCH` at a time). */
  async load(items: readonly LookupItem[]): Promise<void> {
    const records = this.#catalog.records;
    if (!hasMediaRecordBatches(records) || items.length === 0) return;
    const found = new Map<string, MediaRecord>();
    const blocked = new Set<string>();
    const list = this.#catalog.blockedHashes?.store;
    for (let start = 0; start < items.length; start += MAX_MEDIA_BATCH) {
      const chunk = items.slice(start, start + MAX_MEDIA_BATCH);
      for (const record of await records.getMediaBatch(chunk)) found.set(keyOf(record.serverName, record.mediaId), record);
      const hashes = chunk.flatMap((item) => (item.sha256 === undefined ? [] : [item.sha256]));
      if (list !== undefined && hasBlockedHashBatches(list) && hashes.length > 0) for (const hash of await list.blockedHashesAmong(hashes)) blocked.add(hash);
    }
    const askedHashes = list !== undefined && hasBlockedHashBatches(list);
    this.#previous = this.#current;
    this.#current = new Map();
    for (const item of items) {
      const sha256 = item.sha256;
      this.#current.set(keyOf(item.serverName, item.mediaId), {
        record: found.get(keyOf(item.serverName, item.mediaId)) ?? null,
        ...(sha256 !== undefined && askedHashes ? { blocked: { sha256, blocked: blocked.has(sha256) } } : {}),
      });
    }
  }

  /** The answer about an item, once; undefined when its page was not looked up (or it was taken). */
  take(serverName: string, mediaId: string): KnownItem | undefined {
    const key = keyOf(serverName, mediaId);
    for (const map of [this.#current, this.#previous]) {
      const known = map.get(key);
      if (known !== undefined) {
        map.delete(key);
        return known;
      }
    }
    return undefined;
  }
}

/**
 * The row group commit of a bulk import, for a record store with
 * `MediaRecordBatches`: the records of the items in flight are written
 * together, in one transaction. Submit a record only once its blob is
 * durable (`MediaImports` passes each through its blob group commit first),
 * so a row still never names bytes a power loss could take; the two group
 * commits are stages of a pipeline, so one batch's rows are written while
 * the next batch's fsyncs run. Right before the insert the blocked-hash list is asked about
 * their hashes in one query; an unprotected, unquarantined record whose hash
 * is blocked is written quarantined (Synapse's `system` quarantine of
 * re-uploads), as the per-item path decides. Each item learns whether its
 * row was inserted (false: the ID exists).
 */
export function importRowCommit(catalog: MediaCatalog, logger: Logger): GroupCommit<MediaRecord, boolean> {
  return new GroupCommit<MediaRecord, boolean>(async (records) => catalog.publishMany(await quarantineBlocked(catalog, logger, records)), MAX_MEDIA_BATCH);
}

async function quarantineBlocked(catalog: MediaCatalog, logger: Logger, records: readonly MediaRecord[]): Promise<readonly MediaRecord[]> {
  const gate = catalog.blockedHashes;
  if (gate === undefined) return records;
  const open = records.filter((record) => !record.quarantined && record.protected !== true && record.sha256 !== null);
  if (open.length === 0) return records;
  let blocked: Set<string>;
  if (hasBlockedHashBatches(gate.store)) blocked = await gate.store.blockedHashesAmong(open.map((record) => record.sha256!));
  else {
    blocked = new Set();
    for (const record of open) if (await gate.isBlocked(record.sha256!)) blocked.add(record.sha256!);
  }
  if (blocked.size === 0) return records;
  return records.map((record) => {
    if (record.quarantined || record.protected === true || record.sha256 === null || !blocked.has(record.sha256)) return record;
    logger.info({ serverName: record.serverName, mediaId: record.mediaId, sha256: record.sha256 }, 'imported media has a blocked hash: imported quarantined');
    return { ...record, quarantined: true };
  });
}
