export {
  isValidMediaId,
  isValidServerName,
  splitServerName,
  parseMxcUri,
  formatMxcUri,
  generateId,
  type MxcUri,
} from './ids.js';
export {
  INLINE_CONTENT_TYPES,
  DEFAULT_CONTENT_TYPE,
  essenceOf,
  isInlineContentType,
  dispositionFilenameParam,
  contentDispositionFor,
  parseContentDisposition,
  normaliseUploadContentType,
  normaliseUploadFilename,
  type ParsedContentDisposition,
} from './content-headers.js';
export { RemoteMediaError, type RemoteMediaFailure } from './errors.js';
export {
  REMOTE_THUMBNAIL_CONTENT_TYPES,
  type ByteSource,
  type BlobPutOptions,
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
} from './ports/index.js';
export { hasJobLeases, type JobLeases } from './job-leases.js';
export { MediaService, type MediaServiceOptions, type GetMediaOptions } from './media-service.js';
export type { MediaHandle, ThumbnailHandle, ByteRange } from './media-handle.js';
export { MediaCatalog, type MediaCacheOptions } from './media-catalog.js';
export type { AsyncUploadOptions, CreatedMedia, PendingUploadRequest, UploadRequest, UploadResult } from './media-uploads.js';
export { TimeoutPolicy, type TimeoutPolicyOptions } from './timeout-policy.js';
export {
  TokenBucketRateLimiter,
  type RateLimiter,
  type RateLimitDecision,
  type TokenBucketOptions,
} from './rate-limiter.js';
export {
  UploadQuotas,
  type UploadQuotaLimits,
  type UploadQuotaOptions,
  type ResolvedUploadQuotaLimits,
} from './upload-quota.js';
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
} from './media-admin.js';
export {
  lastUsedAt,
  matchesMediaQuery,
  selectMediaRecords,
  summarizeMediaRecords,
  mediaUsageOfRecords,
} from './memory/media-query.js';
