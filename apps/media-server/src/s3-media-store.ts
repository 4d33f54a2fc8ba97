import type { BlobStaging, BlobStore } from '@hsmedia/media-core';
import { errors, type MatrixError } from '@hsmedia/errors';
import { LocalBlobCache, S3BlobStore, S3StoreError, createS3Client, type FillFailure } from '@hsmedia/store-s3';
import type { MediaStoreConfig } from './config.js';

type S3MediaStoreConfig = Extract<MediaStoreConfig, { kind: 's3' }>;

/** `media_store.s3` cannot be used: the start-up probe failed. */
export class MediaStoreConfigError extends Error {
  override readonly name: 'MediaStoreConfigError' = 'MediaStoreConfigError';
}

/** An opened S3 media store and how to release its connections. */
export interface OpenS3MediaStore {
  /** The bucket (store failures as Matrix errors), with staging for content addressing. */
  readonly blobs: BlobStore & BlobStaging;
  /**
   * `local_cache`: puts the cache tier in front of `origin` (the bucket, or dedup over it).
   * `onFillFailure` hears the first failed fill of each cause (then one an hour per cause).
   */
  readonly localCacheOver?: (origin: BlobStore, onFillFailure: (failure: FillFailure) => void) => LocalBlobCache;
  close(): void;
}

const HINTS: Readonly<Record<S3StoreError['code'], string>> = {
  unavailable: 'the service cannot be reached (check endpoint, and that it runs)',
  timeout: 'the service did not answer within request_timeout_ms',
  access_denied: 'access denied (check access_key_id and secret_access_key, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and the bucket policy)',
  no_such_bucket: 'the bucket does not exist (create it first)',
  bad_response: 'the service gave an unexpected answer',
};

/**
 * The Matrix error a client gets when the object store fails: the store is
 * this server's upstream, so an outage or a silent gateway is 503 (try again
 * later) and a refusal or a missing bucket is a bad gateway, 502.
 */
export function matrixErrorForStore(error: S3StoreError): MatrixError {
  return error.code === 'unavailable' || error.code === 'timeout'
    ? errors.unknown('Media storage is temporarily unavailable', 503)
    : errors.unknown('Media storage failed', 502);
}

function mapped(error: unknown): unknown {
  return error instanceof S3StoreError ? Object.assign(matrixErrorForStore(error), { cause: error }) : error;
}

/** `store` whose `S3StoreError`s become the Matrix errors of {@link matrixErrorForStore}. */
function withMatrixErrors(store: S3BlobStore): BlobStore & BlobStaging {
  return {
    stageBlob: async (source, options) => {
      const staged = await store.stageBlob(source, options).catch((error: unknown) => Promise.reject(mapped(error)));
      return {
        size: staged.size,
        sha256: staged.sha256,
        publishAs: (blobId) => staged.publishAs(blobId).catch((error: unknown) => Promise.reject(mapped(error))),
        discard: () => staged.discard(),
      };
    },
    listBlobs: () => store.listBlobs(),
    put: (source, options) => store.put(source, options).catch((error: unknown) => Promise.reject(mapped(error))),
    open: (blobId, options) => store.open(blobId, options).catch((error: unknown) => Promise.reject(mapped(error))),
    stat: (blobId) => store.stat(blobId).catch((error: unknown) => Promise.reject(mapped(error))),
    delete: (blobId) => store.delete(blobId).catch((error: unknown) => Promise.reject(mapped(error))),
    cleanupStaging: () => store.cleanupStaging(),
    directUrl: (blobId, options) => store.directUrl(blobId, options),
  };
}

/**
 * Opens `media_store.s3` and checks, by writing and deleting a probe object,
 * that the bucket is reachable and writable; when not, rejects with a
 * {@link MediaStoreConfigError} naming the config key and the likely cause.
 */
export async function openS3MediaStore(config: S3MediaStoreConfig): Promise<OpenS3MediaStore> {
  const client = createS3Client({
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(config.accessKeyId === undefined || config.secretAccessKey === undefined
      ? {}
      : { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }),
    requestTimeoutMs: config.requestTimeoutMs,
  });
  const store = new S3BlobStore({ client, bucket: config.bucket, prefix: config.prefix });
  try {
    await store.checkWritable();
  } catch (error) {
    client.destroy();
    const hint = error instanceof S3StoreError ? HINTS[error.code] : (error as Error).message;
    const where = config.endpoint ?? 'AWS S3';
    throw new MediaStoreConfigError(`media_store.s3: bucket "${config.bucket}" at ${where} is not writable: ${hint}`, { cause: error });
  }
  const blobs = withMatrixErrors(store);
  const { localCache } = config;
  if (localCache === undefined) return { blobs, close: () => client.destroy() };
  // A failed fill only means the next read goes to the bucket again: reported, never thrown.
  return {
    blobs,
    localCacheOver: (origin, onFillFailure) =>
      new LocalBlobCache({ origin, path: localCache.path, maxBytes: localCache.maxBytes, onFillError: (_blobId, _error, failure) => onFillFailure(failure) }),
    close: () => client.destroy(),
  };
}

