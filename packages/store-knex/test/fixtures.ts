import type { MediaCompletion, MediaRecord } from '@hsmedia/media-core';
import type { StoredServerKey } from '@hsmedia/signing';

/** A pending (created, not yet uploaded) local record. */
export function pendingRecord(overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: 'example.org',
    mediaId: 'pendingMediaId',
    blobId: null,
    contentType: null,
    uploadName: null,
    size: null,
    sha256: null,
    userId: '@alice:example.org',
    createdAt: 1_700_000_000_000,
    uploadedAt: null,
    expiresAt: 1_700_000_086_400,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
    ...overrides,
  };
}

/** A complete record with every field set, sized past 2^32 to catch 32-bit columns. */
export function completeRecord(overrides: Partial<MediaRecord> = {}): MediaRecord {
  return {
    serverName: 'remote.example:8448',
    mediaId: 'Complete_Media-ID',
    blobId: 'blob_0123456789abcdef',
    contentType: 'image/png; charset="x"',
    uploadName: "naïve 'quoted' \"name\" ☃.png",
    size: 2 ** 40 + 7,
    sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    userId: null,
    createdAt: 1_700_000_000_123,
    uploadedAt: 1_700_000_000_456,
    expiresAt: null,
    authenticated: false,
    quarantined: true,
    lastAccessAt: 1_700_000_000_789,
    ...overrides,
  };
}

export function completion(overrides: Partial<MediaCompletion> = {}): MediaCompletion {
  return {
    blobId: 'blob_completed',
    contentType: 'text/plain',
    uploadName: 'notes.txt',
    size: 12,
    sha256: 'a'.repeat(64),
    uploadedAt: 1_700_000_001_000,
    ...overrides,
  };
}

export function serverKey(overrides: Partial<StoredServerKey> = {}): StoredServerKey {
  return {
    serverName: 'remote.example',
    keyId: 'ed25519:abc',
    publicKey: 'VGhpcyBpcyBub3QgYSByZWFsIGtleSBidXQgaXQgaXM',
    validUntilTs: 4_102_444_800_000,
    fetchedAt: 1_700_000_000_000,
    ...overrides,
  };
}
