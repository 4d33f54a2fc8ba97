/** Blob IDs this store issues and accepts: the same allow-list as the filesystem store. */
const BLOB_ID_RE = /^[A-Za-z0-9_-]{8,255}$/;

/** True when `blobId` may name an object; anything else reads as "not found" and never reaches S3. */
export function isValidBlobId(blobId: unknown): blobId is string {
  return typeof blobId === 'string' && BLOB_ID_RE.test(blobId);
}

/**
 * Normalises a key prefix: '' or a string of safe key characters ending in
 * '/'. A prefix lets several deployments (or tests) share one bucket.
 */
export function normalisePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9!_.*'()/-]+$/.test(prefix) || prefix.startsWith('/') || prefix.includes('//')) {
    throw new TypeError(`S3BlobStore: prefix must be safe S3 key characters without a leading '/', got ${JSON.stringify(prefix)}`);
  }
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}
