import { FsBlobStore } from '@hsmedia/store-fs';
import { ContentAddressedBlobStore, hasBlobReferenceLedger, OrphanBlobSweep, type BlobStaging, type BlobStore, type MediaChangeFeed, type MediaMetadataStore, type MediaRecordStore, type ThumbnailIndex } from '@hsmedia/media-core';
import type { MediaAccel, MediaRedirect } from '@hsmedia/media-routes';
import type { Logger } from '@hsmedia/runtime';
import type { ServerKeyStore } from '@hsmedia/signing';
import type { FillFailure, LocalBlobCache } from '@hsmedia/store-s3';
import { Counter, type Registry } from 'prom-client';
import type { MediaServerConfig } from './config.js';
import { openMetadataStore, type DatabaseLog } from './database.js';

/** The stores of one server, opened from config. */
export interface OpenStores {
  readonly blobs: BlobStore;
  /** `media_store.s3.local_cache`: evicts the local copy of a blob (quarantined media). */
  readonly evictLocalCopy?: (blobId: string) => Promise<void>;
  /**
   * `media_store.s3.local_cache`: logs failed fills to `log` (the first of each cause, then one
   * an hour per cause; those before this call too) and counts them all in `registry` as
   * `hsmedia_local_cache_fill_failures_total{cause}`.
   */
  readonly instrumentLocalCache?: (registry: Registry, log: Logger) => void;
  /** Media rows and thumbnails, and the server keys that `KeyRing` caches (`@hsmedia/signing`). */
  readonly metadata: MediaMetadataStore & ServerKeyStore;
  /** `media_store.filesystem`: the directory store beneath `blobs` (the same one without dedup), for `delivery: x_accel`. */
  readonly files?: FsBlobStore;
  /** With `dedup.enabled`: `blobs`, content-addressed (for the dedup migration and metrics). */
  readonly dedup?: ContentAddressedBlobStore;
  /**
   * Removes blobs no media or thumbnail row references, older than `dedup.orphan_grace`: with or
   * without dedup (a killed import or upload leaves such blobs either way). Absent when the
   * metadata store keeps no reference ledger.
   */
  readonly orphanSweep?: OrphanBlobSweep;
  /** Closes the metadata store (and the S3 client's connections). */
  close(): Promise<void>;
}

/**
 * Opens the configured stores: the metadata database is created and
 * migrated to the current schema (SQLite or PostgreSQL, see `database.ts`),
 * the blob directory is created on first write (an S3 bucket is probed with
 * a write and a delete: a start-up failure names `media_store.s3`). `log` receives the
 * PostgreSQL pool's connection warnings.
 */
export async function openStores(config: MediaServerConfig, log?: DatabaseLog): Promise<OpenStores> {
  const metadata = await openMetadataStore(config.database, log);
  /** With `dedup.enabled`, blobs are named by their SHA-256 and counted in the metadata store. */
  const dedupOf = (objects: BlobStore & BlobStaging): { blobs: BlobStore; dedup?: ContentAddressedBlobStore; orphanSweep?: OrphanBlobSweep } => {
    // Over the objects themselves (beneath dedup and the local cache): what it lists, it deletes.
    const orphanSweep = hasBlobReferenceLedger(metadata)
      ? new OrphanBlobSweep({ objects, references: metadata, graceMs: config.dedup.orphanGraceMs })
      : undefined;
    if (!config.dedup.enabled) return { blobs: objects, ...(orphanSweep === undefined ? {} : { orphanSweep }) };
    if (!hasBlobReferenceLedger(metadata)) throw new Error('dedup: the metadata store keeps no blob reference ledger');
    const dedup = new ContentAddressedBlobStore({
      objects,
      references: metadata,
      pinGraceMs: config.dedup.orphanGraceMs,
    });
    return { blobs: dedup, dedup, ...(orphanSweep === undefined ? {} : { orphanSweep }) };
  };
  if (config.mediaStore.kind === 's3') {
    // Loaded only when configured: the AWS SDK is a large import for every other start.
    const { openS3MediaStore } = await import('./s3-media-store.js');
    const s3 = await openS3MediaStore(config.mediaStore).catch(async (error: unknown) => {
      await metadata.close();
      throw error;
    });
    // The cache tier sits in front of everything (dedup included): it keys its copies by whatever
    // blob IDs the store beneath gives.
    const stored = dedupOf(s3.blobs);
    const reporter = new FillFailureReporter();
    const localCache = s3.localCacheOver?.(stored.blobs, (failure) => reporter.report(failure));
    return {
      ...stored,
      ...(localCache === undefined
        ? {}
        : {
            blobs: localCache,
            evictLocalCopy: (blobId: string) => localCache.evict(blobId),
            instrumentLocalCache: (registry: Registry, log: Logger) => reporter.attach(localCache, registry, log),
          }),
      metadata,
      close: async () => {
        s3.close();
        await metadata.close();
      },
    };
  }
  const files = new FsBlobStore({ root: config.mediaStore.path });
  return {
    ...dedupOf(files),
    files,
    metadata,
    close: () => metadata.close(),
  };
}

/**
 * Where the local cache's failed fills go: to the log once the server has one
 * (the few reported before wait for it), and to a counter read at scrape time.
 */
class FillFailureReporter {
  #log: Logger | undefined;
  readonly #early: FillFailure[] = [];

  report(failure: FillFailure): void {
    if (this.#log === undefined) {
      // Bounded: one per cause, and causes are error codes.
      if (this.#early.length < 100) this.#early.push(failure);
      return;
    }
    this.#log.warn(
      { err: failure.error, blob_id: failure.blobId, cause: failure.cause, failures_of_this_cause: failure.count },
      'local cache fill failed; reads of this blob go to the bucket (logged once an hour per cause)',
    );
  }

  attach(cache: LocalBlobCache, registry: Registry, log: Logger): void {
    this.#log = log;
    for (const failure of this.#early.splice(0)) this.report(failure);
    const counted = new Map<string, number>();
    new Counter({
      name: 'hsmedia_local_cache_fill_failures_total',
      help: 'Copies into media_store.s3.local_cache that failed (the read was served from the bucket), by cause (an error code)',
      labelNames: ['cause'],
      registers: [registry],
      collect() {
        for (const [cause, count] of cache.fillFailures) {
          const delta = count - (counted.get(cause) ?? 0);
          if (delta > 0) this.inc({ cause }, delta);
          counted.set(cause, count);
        }
      },
    });
  }
}

/** How long a redirect's direct URL stays valid: long enough to start a download, short enough not to be shared around. */
export const DIRECT_URL_EXPIRES_SECONDS: number = 300;

/** `delivery: redirect` over a blob store with `directUrl` (S3: a presigned GET forcing the server's headers). */
export function redirectDelivery(blobs: BlobStore): MediaRedirect {
  return {
    directUrl: async (target) =>
      blobs.directUrl === undefined
        ? null
        : blobs.directUrl(target.blobId, {
            expiresInSeconds: DIRECT_URL_EXPIRES_SECONDS,
            contentType: target.contentType,
            contentDisposition: target.contentDisposition,
          }),
  };
}

/**
 * `delivery: x_accel` over the filesystem store: the blob's path under the
 * store root behind the nginx `internal` location `location` (its `alias` is
 * the store root). The path comes from the blob ID alone (`relativePathOf`).
 */
export function accelDelivery(files: FsBlobStore, location: string): MediaAccel {
  return {
    accelPath: (blobId) => {
      const path = files.relativePathOf(blobId);
      return path === null ? null : `${location}${path}`;
    },
  };
}

/**
 * Drops the local copies of media quarantined by any process (the change
 * feed), its thumbnails included: quarantined bytes are not kept around
 * (deleted media goes through `delete`, which evicts). Returns the unsubscribe.
 */
export function evictQuarantined(
  feed: MediaChangeFeed,
  metadata: Pick<MediaRecordStore, 'getMedia'> & Pick<ThumbnailIndex, 'listThumbnails'>,
  evict: (blobId: string) => Promise<void>,
  onError: (error: unknown) => void,
): () => void {
  return feed.subscribe((change) => {
    if (change.kind !== 'media' || change.cause !== 'quarantine') return;
    void (async () => {
      const [record, thumbnails] = await Promise.all([
        metadata.getMedia(change.serverName, change.mediaId),
        metadata.listThumbnails(change.serverName, change.mediaId),
      ]);
      for (const blobId of [record?.blobId ?? null, ...thumbnails.map((thumbnail) => thumbnail.blobId)]) {
        if (blobId !== null) await evict(blobId);
      }
    })().catch(onError);
  });
}
