import { isMediaScanState, type MediaRecord } from '@hsmedia/media-core';
import type { StoredServerKey } from '@hsmedia/signing';

/**
 * Column values as drivers hand them back: pg returns `bigint` columns as
 * strings (they may exceed 2^53), SQLite returns booleans as 0/1.
 */
type DbInteger = number | string | bigint;
type DbBoolean = boolean | number | bigint;

/** A `media` row as read from the database. */
export interface MediaRow {
  server_name: string;
  media_id: string;
  blob_id: string | null;
  content_type: string | null;
  upload_name: string | null;
  size: DbInteger | null;
  sha256: string | null;
  user_id: string | null;
  created_at: DbInteger;
  uploaded_at: DbInteger | null;
  expires_at: DbInteger | null;
  authenticated: DbBoolean;
  quarantined: DbBoolean;
  last_access_at: DbInteger | null;
  /** Added by migration 0006; absent only in rows written without it (defaults to false). */
  safe_from_quarantine?: DbBoolean;
  /** Added by migration 0009; null for media stored while scanning was off. */
  scan_state?: string | null;
  profile_media?: DbBoolean;
}

/** A `server_keys` row as read from the database. */
export interface ServerKeyRow {
  server_name: string;
  key_id: string;
  public_key: string;
  valid_until_ts: DbInteger;
  fetched_at: DbInteger;
}

/** Every `media` column, selected explicitly so a later added column costs nothing here. */
export const MEDIA_COLUMNS: readonly (keyof MediaRow)[] = [
  'server_name',
  'media_id',
  'blob_id',
  'content_type',
  'upload_name',
  'size',
  'sha256',
  'user_id',
  'created_at',
  'uploaded_at',
  'expires_at',
  'authenticated',
  'quarantined',
  'last_access_at',
  'safe_from_quarantine',
  'scan_state',
  'profile_media',
];

export const SERVER_KEY_COLUMNS: readonly (keyof ServerKeyRow)[] = [
  'server_name',
  'key_id',
  'public_key',
  'valid_until_ts',
  'fetched_at',
];

function toNumber(value: DbInteger): number {
  return typeof value === 'number' ? value : Number(value);
}

function toNumberOrNull(value: DbInteger | null): number | null {
  return value === null ? null : toNumber(value);
}

function toBoolean(value: DbBoolean): boolean {
  return value === true || value === 1 || value === 1n;
}

/** The one place database rows become domain records. */
export function mediaRowToRecord(row: MediaRow): MediaRecord {
  return {
    serverName: row.server_name,
    mediaId: row.media_id,
    blobId: row.blob_id,
    contentType: row.content_type,
    uploadName: row.upload_name,
    size: toNumberOrNull(row.size),
    sha256: row.sha256,
    userId: row.user_id,
    createdAt: toNumber(row.created_at),
    uploadedAt: toNumberOrNull(row.uploaded_at),
    expiresAt: toNumberOrNull(row.expires_at),
    authenticated: toBoolean(row.authenticated),
    quarantined: toBoolean(row.quarantined),
    // Left out when false, as MediaRecord.protected says.
    ...(row.safe_from_quarantine !== undefined && toBoolean(row.safe_from_quarantine) ? { protected: true } : {}),
    ...(row.profile_media !== undefined && toBoolean(row.profile_media) ? { profile: true } : {}),
    lastAccessAt: toNumberOrNull(row.last_access_at),
    // Left out when null, as MediaRecord.scanState says.
    ...(row.scan_state !== undefined && isMediaScanState(row.scan_state) ? { scanState: row.scan_state } : {}),
  };
}

export function mediaRecordToRow(record: MediaRecord): MediaRow {
  return {
    server_name: record.serverName,
    media_id: record.mediaId,
    blob_id: record.blobId,
    content_type: record.contentType,
    upload_name: record.uploadName,
    size: record.size,
    sha256: record.sha256,
    user_id: record.userId,
    created_at: record.createdAt,
    uploaded_at: record.uploadedAt,
    expires_at: record.expiresAt,
    authenticated: record.authenticated,
    quarantined: record.quarantined,
    last_access_at: record.lastAccessAt,
    safe_from_quarantine: record.protected === true,
    scan_state: record.scanState ?? null,
    profile_media: record.profile === true,
  };
}

export function serverKeyRowToKey(row: ServerKeyRow): StoredServerKey {
  return {
    serverName: row.server_name,
    keyId: row.key_id,
    publicKey: row.public_key,
    validUntilTs: toNumber(row.valid_until_ts),
    fetchedAt: toNumber(row.fetched_at),
  };
}

export function serverKeyToRow(key: StoredServerKey): ServerKeyRow {
  return {
    server_name: key.serverName,
    key_id: key.keyId,
    public_key: key.publicKey,
    valid_until_ts: key.validUntilTs,
    fetched_at: key.fetchedAt,
  };
}
