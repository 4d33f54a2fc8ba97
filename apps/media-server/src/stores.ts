import { FsBlobStore } from '@hsmedia/store-fs';
import type { BlobStore, MediaMetadataStore } from '@hsmedia/media-core';
import type { ServerKeyStore } from '@hsmedia/signing';
import type { MediaServerConfig } from './config.js';
import { openMetadataStore, type DatabaseLog } from './database.js';

/** The stores of one server, opened from config. */
export interface OpenStores {
  readonly blobs: BlobStore;
  /** Media rows and thumbnails, and the server keys that `KeyRing` caches (`@hsmedia/signing`). */
  readonly metadata: MediaMetadataStore & ServerKeyStore;
  /** Closes the metadata store (the blob store holds no open resources). */
  close(): Promise<void>;
}

/**
 * Opens the configured stores: the metadata database is created and
 * migrated to the current schema (SQLite or PostgreSQL, see `database.ts`),
 * the blob directory is created on first write. `log` receives the
 * PostgreSQL pool's connection warnings.
 */
export async function openStores(config: MediaServerConfig, log?: DatabaseLog): Promise<OpenStores> {
  const metadata = await openMetadataStore(config.database, log);
  const blobs = new FsBlobStore({ root: config.mediaStore.path });
  return {
    blobs,
    metadata,
    close: () => metadata.close(),
  };
}
