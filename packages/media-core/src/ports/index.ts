export {
  type ByteSource,
  type BlobPutOptions,
  type FileImportOptions,
  SourceFileError,
  type StoredBlob,
  type BlobReadOptions,
  type BlobStore,
  type DirectUrlOptions,
  type StagedBlob,
  type BlobStaging,
  type ListedBlob,
  hasBlobStaging,
} from './blob-store.js';
export {
  type BlobReferenceLedger,
  type BlobStaleness,
  type BlobStorageStats,
  type ReferencedBlob,
  hasBlobReferenceLedger,
} from './blob-references.js';
export type {
  MediaRecord,
  MediaCompletion,
  MediaUsage,
  StoredThumbnail,
  MediaQuery,
  MediaOrder,
  MediaListOptions,
  MediaSummary,
  MediaUsageQuery,
  UserMediaUsage,
  MediaUsagePage,
  MediaRecordStore,
  ThumbnailIndex,
  MediaQueries,
  MediaMetadataStore,
} from './metadata-store.js';
export {
  type MediaBrowseFilter,
  type MediaBrowseCursor,
  type MediaBrowseOptions,
  type OriginMediaUsage,
  type MediaHistogramQuery,
  type MediaHistogramBucket,
  checkMediaBrowse,
  checkMediaPageLimit,
  checkMediaHistogramQuery,
} from './media-browse.js';
export {
  REMOTE_THUMBNAIL_CONTENT_TYPES,
  type RemoteMediaRequest,
  type RemoteMedia,
  type RemoteThumbnailRequest,
  type RemoteMediaSource,
} from './remote-media.js';
export type { ThumbnailMethod, ThumbnailSpec, GeneratedThumbnail, ImageProbe, ThumbnailGenerator } from './thumbnails.js';
export type { MediaAccess, MediaAccessPolicy, MediaCandidate, MediaAdmission } from './media-gates.js';
export {
  type BlockedHash,
  type BlockedHashPage,
  type BlockedHashes,
  SHA256_HEX_RE,
  hasBlockedHashes,
  checkBlockedHash,
  checkBlockedHashPage,
  uniqueBlockedHashes,
  matchesBlockedHashSearch,
  MAX_BLOCKED_HASH_SEARCH,
  MAX_BLOCKED_HASH_IMPORT,
} from './blocked-hashes.js';
export {
  ADMIN_ACTIONS,
  type AdminAction,
  type AdminActionName,
  type AdminActionQuery,
  type AdminAuditLog,
  type RecordedAdminAction,
  hasAdminAuditLog,
  isAdminActionName,
  checkAdminAction,
  checkAdminActionQuery,
} from './admin-audit.js';
export {
  MEDIA_SCAN_STATES,
  type MediaScanState,
  type MediaScanStates,
  type MediaScanner,
  type ScanRequest,
  type ScanVerdict,
  hasMediaScanStates,
  isMediaScanState,
} from './media-scanning.js';
export {
  type MediaChange,
  type MediaChangeCause,
  type MediaChangeFeed,
  type MediaChangeListener,
  parseMediaChange,
} from './media-changes.js';
export type { LocalMediaFallback } from './local-media-fallback.js';
export { type ImportCursors, hasImportCursors } from './import-cursors.js';
export {
  type MediaRecordBatches,
  type MediaKey,
  type BlockedHashBatches,
  MAX_MEDIA_BATCH,
  hasMediaRecordBatches,
  hasBlockedHashBatches,
  checkBatchSize,
} from './media-batches.js';
