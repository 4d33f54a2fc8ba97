/**
 * `@hsmedia/media-core`: the media domain a homeserver composes. What is
 * exported is what a homeserver or a store adapter needs: the services
 * (`MediaService`, `ThumbnailService`, `MediaAdmin`), the ports and their
 * record types, ID and header rules. In-memory stores are in
 * `@hsmedia/media-core/memory`.
 */
export {
  isValidMediaId,
  isValidServerName,
  parseMxcUri,
  formatMxcUri,
  generateId,
  type MxcUri,
} from './ids.js';
export {
  essenceOf,
  contentDispositionFor,
  parseContentDisposition,
  type ParsedContentDisposition,
} from './content-headers.js';
export { RemoteMediaError, type RemoteMediaFailure } from './errors.js';
export {
  REMOTE_THUMBNAIL_CONTENT_TYPES,
  type ByteSource,
  type BlobPutOptions,
  type FileImportOptions,
  SourceFileError,
  type StoredBlob,
  type BlobReadOptions,
  type BlobStore,
  type DirectUrlOptions,
  type MediaRecord,
  type MediaCompletion,
  type MediaQuery,
  type MediaOrder,
  type MediaListOptions,
  type MediaSummary,
  type MediaUsageQuery,
  type UserMediaUsage,
  type MediaUsagePage,
  type MediaUsage,
  type StoredThumbnail,
  type MediaRecordStore,
  type ThumbnailIndex,
  type MediaQueries,
  type MediaMetadataStore,
  type RemoteMediaRequest,
  type RemoteMedia,
  type RemoteMediaSource,
  type RemoteThumbnailRequest,
  type ThumbnailMethod,
  type ThumbnailSpec,
  type GeneratedThumbnail,
  type ImageProbe,
  type ThumbnailGenerator,
  type MediaAccess,
  type MediaAccessPolicy,
  type MediaCandidate,
  type MediaAdmission,
  type BlockedHash,
  type BlockedHashPage,
  type BlockedHashes,
  hasBlockedHashes,
  SHA256_HEX_RE,
  checkBlockedHash,
  checkBlockedHashPage,
  uniqueBlockedHashes,
  matchesBlockedHashSearch,
  MAX_BLOCKED_HASH_SEARCH,
  MAX_BLOCKED_HASH_IMPORT,
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
  MEDIA_SCAN_STATES,
  type MediaScanState,
  type MediaScanStates,
  type MediaScanner,
  type ScanRequest,
  type ScanVerdict,
  hasMediaScanStates,
  isMediaScanState,
  type MediaBrowseFilter,
  type MediaBrowseCursor,
  type MediaBrowseOptions,
  type OriginMediaUsage,
  type MediaHistogramQuery,
  type MediaHistogramBucket,
  checkMediaBrowse,
  checkMediaPageLimit,
  checkMediaHistogramQuery,
  type MediaChange,
  type MediaChangeCause,
  type MediaChangeFeed,
  type MediaChangeListener,
  parseMediaChange,
  type LocalMediaFallback,
  type ImportCursors,
  hasImportCursors,
  type StagedBlob,
  type BlobStaging,
  type ListedBlob,
  hasBlobStaging,
  type BlobReferenceLedger,
  type BlobStaleness,
  type BlobStorageStats,
  type ReferencedBlob,
  hasBlobReferenceLedger,
  type MediaRecordBatches,
  type MediaKey,
  type BlockedHashBatches,
  MAX_MEDIA_BATCH,
  hasMediaRecordBatches,
  hasBlockedHashBatches,
  checkBatchSize,
} from './ports/index.js';
export {
  ContentAddressedBlobStore,
  type ContentAddressedBlobStoreOptions,
  type AdoptedBlob,
} from './content-addressed-blob-store.js';
export {
  OrphanBlobSweep,
  deleteUnlessHeld,
  type OrphanBlobSweepOptions,
  type OrphanSweepOptions,
  type OrphanSweepResult,
} from './orphan-blob-sweep.js';
export {
  allowAllPolicy,
  allOfPolicies,
  ServerDenyListPolicy,
  type ServerDenyListPolicyOptions,
} from './access-policies.js';
export { HttpAccessPolicy, type HttpAccessPolicyOptions } from './http-access-policy.js';
export { hasJobLeases, type JobLeases } from './job-leases.js';
export { MediaService, type MediaServiceOptions, type GetMediaOptions } from './media-service.js';
export type { MediaServiceScanningOptions } from './scanning-setup.js';
export type { MediaHandle, ThumbnailHandle, ByteRange } from './media-handle.js';
export {
  fileReadStream,
  offerFileBody,
  offerPushBody,
  takeFileBody,
  takePushBody,
  type BodySink,
  type FileBody,
  type OwnedFile,
  type PositionalFile,
  type PushBody,
  type PushBodyControls,
} from './file-body.js';
export { MediaCatalog, type MediaCacheOptions } from './media-catalog.js';
export { InProcessMediaChangeFeed } from './media-change-feed.js';
export { followMediaChanges, type MediaChangeTarget } from './media-change-sync.js';
export type { AsyncUploadOptions, CreatedMedia, PendingUploadRequest, UploadRequest, UploadResult } from './media-uploads.js';
export { TimeoutPolicy, type TimeoutPolicyOptions } from './timeout-policy.js';
export {
  TokenBucketRateLimiter,
  type RateLimiter,
  type RateLimitDecision,
  type TokenBucketOptions,
} from './rate-limiter.js';
export type { UploadQuotaLimits, UploadQuotaOptions } from './upload-quota.js';
export {
  ThumbnailService,
  type ThumbnailServiceOptions,
  type ThumbnailRules,
  type GetThumbnailOptions,
} from './thumbnail-service.js';
export {
  MediaAdmin,
  type MediaAdminOptions,
  type UserMediaPage,
  type LocalMediaDeletion,
  type EvictionResult,
  type QuarantineContext,
  type BulkDeletionScope,
  type HashBlock,
} from './media-admin.js';
export type { AdminContext } from './admin-audit-trail.js';
export type { BlockedHashGate } from './blocked-hash-gate.js';
export { MediaScanStage, SCANNER_ACTOR, type MediaScanningOptions, type ScanFailurePolicy, type ScanOutcome, type ScanResult } from './media-scan-stage.js';
export { SignatureWatch, type SignatureWatchOptions } from './signature-watch.js';
export {
  BLOCKED_HASH_COLUMNS,
  BLOCKED_HASH_CSV_HEADER,
  MAX_REPORTED_LINE_ERRORS,
  BlockedHashCsvReader,
  blockedHashCsvLine,
  blockedHashListChunks,
  blockedHashListItem,
  iterateBlockedHashes,
  parseBlockedHashCsv,
  parseBlockedHashJson,
  toBlockedHashes,
  type BlockedHashListFormat,
  type BlockedHashListItem,
  type HashListLineError,
  type ImportedBlockedHash,
  type ParsedHashList,
} from './blocked-hash-list-format.js';
export {
  MediaImports,
  ImportError,
  type ImportErrorCode,
  type ImportFile,
  type ImportOutcome,
  type ImportedMediaRecord,
  type ImportedThumbnail,
  type MediaImportsOptions,
} from './media-import.js';
