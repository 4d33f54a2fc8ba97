import { hasBlockedHashes, MediaCatalog } from '@hsmedia/media-core';
import type { MediaServerConfig } from '../config.js';
import type { OpenStores } from '../stores.js';

/**
 * The catalog an offline import command writes through (`import-synapse`,
 * `import-mmr`, `import-archive`): no caches, so a running server sees the
 * rows at its next lookup; the blocked-hash list applies; with `scanning`
 * configured, imported media is stored `pending` and a running server's scan
 * stage scans it (its retry job picks up pending media older than a scan
 * could take, which imported media always is) before any byte is served.
 */
export function importCatalog(config: MediaServerConfig, stores: Pick<OpenStores, 'blobs' | 'metadata'>): MediaCatalog {
  return new MediaCatalog({
    serverName: config.serverName,
    blobs: stores.blobs,
    records: stores.metadata,
    thumbnails: stores.metadata,
    ...(hasBlockedHashes(stores.metadata) ? { blockedHashes: stores.metadata } : {}),
    scanNewMedia: config.scanning !== undefined,
    touchIntervalMs: 0,
    cache: { maxRecords: 0, maxBlobBytes: 0, thumbnailBytes: 0 },
  });
}
