import type { ImportedMediaRecord, ImportedThumbnail } from '@hsmedia/media-core';
import type { SynapseMediaItem, SynapseThumbnail } from './synapse-media-source.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The server name an item lives under here: its origin, or ours for Synapse's local media. */
export function serverNameOf(item: SynapseMediaItem, localServerName: string): string {
  return item.origin ?? localServerName;
}

/**
 * The record media-core imports for a Synapse media row (not for
 * thumbnail-only remote media, which has no row). Synapse's
 * `media_length` and `sha256` become the checks the bytes must pass.
 */
export function toImportedRecord(item: SynapseMediaItem, localServerName: string): ImportedMediaRecord {
  const local = item.origin === null;
  const sha256 = item.sha256?.toLowerCase();
  return {
    serverName: serverNameOf(item, localServerName),
    mediaId: item.mediaId,
    contentType: item.mediaType,
    uploadName: item.uploadName,
    userId: local ? item.userId : null,
    createdAt: item.createdTs ?? 0,
    lastAccessAt: item.lastAccessTs,
    quarantined: item.quarantinedBy !== null,
    protected: item.safeFromQuarantine,
    authenticated: item.authenticated,
    ...(item.pending ? { pending: true } : {}),
    ...(item.mediaLength === null || item.pending ? {} : { expectedSize: item.mediaLength }),
    ...(sha256 !== undefined && SHA256_HEX.test(sha256) && !item.pending ? { expectedSha256: sha256 } : {}),
  };
}

/** Types that can animate (MSC2705), whose animated thumbnails Synapse stores as `image/webp`. */
const ANIMATABLE = new Set(['image/gif', 'image/webp']);

/**
 * The thumbnail media-core imports for a Synapse thumbnail row, or null
 * when its method is neither `crop` nor `scale`. Synapse has no animation
 * column: for a GIF or WebP source it stores an extra `image/webp` row beside
 * the still one of the same size and method, and that row is the animated one.
 */
export function toImportedThumbnail(item: SynapseMediaItem, thumbnail: SynapseThumbnail): ImportedThumbnail | null {
  if (thumbnail.method !== 'crop' && thumbnail.method !== 'scale') return null;
  const animated =
    thumbnail.type === 'image/webp' &&
    item.mediaType !== null &&
    ANIMATABLE.has(item.mediaType.toLowerCase()) &&
    item.thumbnails.some((other) => other !== thumbnail && other.width === thumbnail.width && other.height === thumbnail.height && other.method === thumbnail.method && other.type !== thumbnail.type);
  return {
    width: thumbnail.width,
    height: thumbnail.height,
    method: thumbnail.method,
    contentType: thumbnail.type,
    ...(animated ? { animated: true } : {}),
    ...(thumbnail.length === null ? {} : { expectedSize: thumbnail.length }),
  };
}
