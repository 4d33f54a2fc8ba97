export { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';
export { createS3Client, type S3ConnectionOptions } from './s3-client.js';
export { S3StoreError, toS3StoreError, type S3StoreFailure } from './s3-store-error.js';
export { LocalBlobCache, type LocalBlobCacheOptions } from './local-blob-cache.js';
export { fillFailureCause, type FillFailure } from './internal/fill-failures.js';
