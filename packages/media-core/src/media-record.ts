import type { MediaRecord } from './ports/index.js';

/**
 * A media record with nothing known yet but its name and creation time:
 * no bytes, no type, no uploader, not frozen, not quarantined. Callers set
 * what they know in `fields`.
 */
export function newMediaRecord(
  fields: Pick<MediaRecord, 'serverName' | 'mediaId' | 'createdAt'> & Partial<MediaRecord>,
): MediaRecord {
  return {
    blobId: null,
    contentType: null,
    uploadName: null,
    size: null,
    sha256: null,
    userId: null,
    uploadedAt: null,
    expiresAt: null,
    authenticated: false,
    quarantined: false,
    lastAccessAt: null,
    ...fields,
  };
}
