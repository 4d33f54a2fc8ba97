/**
 * `@hsmedia/synapse-import`: Synapse's media, read-only (`SynapseMediaSource`:
 * its database on PostgreSQL or SQLite and its `media_store` tree,
 * jail-checked), and its import into `@hsmedia/media-core` with the same
 * media IDs (`SynapseImporter`, on media-core's `MediaImports`).
 */
export type { SynapseDatabaseLocation } from './synapse-database.js';
export { SynapseMediaStore, UnsafeMediaPathError, type LocatedMediaFile, type MediaStoreFile } from './synapse-media-store.js';
export {
  SynapseMediaSource,
  cursorAfter,
  type SynapseCount,
  type SynapseMediaItem,
  type SynapseMediaPage,
  type SynapseMediaSchema,
  type SynapseMediaSourceOptions,
  type SynapseMediaStats,
  type SynapseThumbnail,
} from './synapse-media-source.js';
export { serverNameOf, toImportedRecord, toImportedThumbnail } from './synapse-records.js';
export {
  SynapseImporter,
  type SynapseImportEntry,
  type SynapseImportOutcome,
  type SynapseImportRunOptions,
  type SynapseImportTally,
  type SynapseImporterOptions,
} from './synapse-importer.js';
