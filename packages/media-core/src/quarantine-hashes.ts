import { createHash } from 'node:crypto';
import type { Logger } from '@hsmedia/runtime';
import type { AdminContext } from './admin-audit-trail.js';
import type { BlockedHashGate } from './blocked-hash-gate.js';
import type { MediaCatalog } from './media-catalog.js';
import type { BlobStore, MediaQueries } from './ports/index.js';

/** SHA-256 of a stored blob (a thumbnail row keeps none); null when it is gone. */
async function hashBlob(blobs: BlobStore, blobId: string): Promise<string | null> {
  const stream = await blobs.open(blobId);
  if (stream === null) return null;
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * The content-hash side of `MediaAdmin`'s quarantine: blocking the hashes of
 * quarantined items (and of remote media known only through thumbnails),
 * and releasing a hash once no quarantined item has it.
 */
export class QuarantineHashes {
  readonly #catalog: MediaCatalog;
  readonly #queries: MediaQueries;
  readonly #logger: Logger;

  constructor(catalog: MediaCatalog, queries: MediaQueries, logger: Logger) {
    this.#catalog = catalog;
    this.#queries = queries;
    this.#logger = logger;
  }

  gate(): BlockedHashGate {
    const gate = this.#catalog.blockedHashes;
    if (gate === undefined) throw new TypeError('MediaAdmin: the metadata store keeps no blocked-hash list');
    return gate;
  }

  async block(sha256: string, context: AdminContext): Promise<void> {
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
  async quarantineThumbnailsOnly(serverName: string, mediaId: string, context: AdminContext): Promise<boolean> {
    const rows = await this.#catalog.thumbnails.listThumbnails(serverName, mediaId);
    if (rows.length === 0) return false;
    if (this.#catalog.blockedHashes === undefined) {
      this.#logger.warn({ serverName, mediaId }, 'no blocked-hash list: thumbnails of unknown remote media deleted, not blocked');
    }
    for (const row of rows) {
      const sha256 = this.#catalog.blockedHashes === undefined ? null : await hashBlob(this.#catalog.blobs, row.blobId);
      if (sha256 !== null) await this.block(sha256, context);
    }
    await this.#catalog.deleteThumbnails(serverName, mediaId);
    this.#logger.info({ serverName, mediaId, thumbnails: rows.length }, 'thumbnail-only remote media quarantined');
    return true;
  }

  /** Takes `sha256` off the list unless an item with those bytes is still quarantined. */
  async unblockWhenUnused(sha256: string): Promise<void> {
    const gate = this.#catalog.blockedHashes;
    if (gate === undefined) return;
    if ((await this.#queries.listMedia({ sha256, quarantined: true }, { limit: 1 })).length > 0) return;
    if (await gate.unblock(sha256)) this.#logger.info({ sha256 }, 'hash unblocked');
  }
}
