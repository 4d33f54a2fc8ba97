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
export { ContentTooLargeError, RemoteMediaError, type RemoteMediaFailure } from './errors.js';
export {
  noopLogger,
  systemClock,
  type ByteSource,
  type BlobPutOptions,
  type StoredBlob,
  type BlobReadOptions,
  type BlobStore,
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
  type StoredServerKey,
  type StoredThumbnail,
  type MediaMetadataStore,
  type Requester,
  type RemoteMediaRequest,
  type RemoteMedia,
  type RemoteMediaSource,
  type RemoteThumbnailRequest,
  REMOTE_THUMBNAIL_CONTENT_TYPES,
  type Logger,
  type Clock,
  type ThumbnailMethod,
  type ThumbnailSpec,
  type GeneratedThumbnail,
  type ImageProbe,
  type ThumbnailGenerator,
} from './ports.js';
export { hasJobLeases, type JobLeases } from './job-leases.js';
export {
  MediaService,
  type MediaServiceOptions,
  type MediaCacheOptions,
  type UploadRequest,
  type UploadResult,
  type GetMediaOptions,
  type ByteRange,
  type MediaHandle,
  type AsyncUploadOptions,
  type CreatedMedia,
  type PendingUploadRequest,
} from './media-service.js';
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
  type ThumbnailHandle,
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
} from './media-query.js';
