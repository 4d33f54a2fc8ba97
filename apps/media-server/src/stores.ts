import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import type { BlobStore, MediaMetadataStore } from '@hsmedia/media-core';
import type { MediaServerConfig } from './config.js';

/** The stores of one server, opened from config. */
export interface OpenStores {
  readonly blobs: BlobStore;
  readonly metadata: MediaMetadataStore;
  /** Closes the metadata store (the blob store holds no open resources). */
  close(): Promise<void>;
}

/**
 * Opens the configured stores: the metadata database is created and
 * migrated to the current schema, the blob directory is created on first write.
 */
export async function openStores(config: MediaServerConfig): Promise<OpenStores> {
  const metadata = await createSqliteMetadataStore({ path: config.database.path, migrate: true });
  const blobs = new FsBlobStore({ root: config.mediaStore.path });
  return {
    blobs,
    metadata,
    close: () => metadata.close(),
  };
}
