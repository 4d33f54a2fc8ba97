import type { MediaScanState } from './media-scanning.js';
import type { MediaBrowseFilter, MediaBrowseOptions, MediaHistogramBucket, MediaHistogramQuery, OriginMediaUsage } from './media-browse.js';
import type { ThumbnailMethod } from './thumbnails.js';

/**
 * One media item, local (`serverName` is ours) or cached remote.
 * A local item created through `/create` and not yet uploaded has
 * `blobId === null` and `uploadedAt === null`.
 */
export interface MediaRecord {
  readonly serverName: string;
  readonly mediaId: string;
  readonly blobId: string | null;
  /** Stored verbatim as uploaded (or as the remote sent it). */
  readonly contentType: string | null;
  readonly uploadName: string | null;
  readonly size: number | null;
  readonly sha256: string | null;
  /** Uploader for local media; null for remote media. */
  readonly userId: string | null;
  /** When the ID was created (ms since epoch). */
  readonly createdAt: number;
  /** When the bytes arrived; null while pending. */
  readonly uploadedAt: number | null;
  /** For pending async uploads: when the unused ID expires. */
  readonly expiresAt: number | null;
  /** Stored while legacy endpoints were frozen: never served on `/_matrix/media/v3/*`. */
  readonly authenticated: boolean;
  readonly quarantined: boolean;
  /**
   * Protected by an admin (Synapse's `safe_from_quarantine`): exempt from
   * quarantine by user, room or content hash. Absent means false; stores
   * leave it out of records that are not protected.
   */
  readonly protected?: boolean;
  /**
   * Profile media (an avatar) as the homeserver or an admin flagged it:
   * kept by purges, retention and bulk deletions unless they are asked to
   * include it (Synapse's `keep_profiles`). Absent means false; stores leave
   * it out of records that are not flagged.
   */
  readonly profile?: boolean;
  readonly lastAccessAt: number | null;
  /**
   * Where the virus scan of its bytes stands; only `clean` media is served.
   * Absent: stored while scanning was off, served as before.
   */
  readonly scanState?: MediaScanState;
}

/** The fields that {@link MediaRecordStore.completeMedia} fills in. */
export interface MediaCompletion {
  readonly blobId: string;
  readonly contentType: string;
  readonly uploadName: string | null;
  readonly size: number;
  readonly sha256: string;
  readonly uploadedAt: number;
  /** The scan state to set with the bytes (`pending` when scanning is on); absent leaves it unchanged. */
  readonly scanState?: MediaScanState;
}

/** What {@link MediaQueries.getUserUsage} counts. */
export interface MediaUsage {
  readonly bytes: number;
  readonly files: number;
}

/**
 * A stored thumbnail of a media item (local or cached remote). `width` and
 * `height` are the real pixel size of the image; `animated` whether it
 * really animates. The bytes live in the `BlobStore` under `blobId`.
 */
export interface StoredThumbnail {
  readonly serverName: string;
  readonly mediaId: string;
  readonly width: number;
  readonly height: number;
  readonly method: ThumbnailMethod;
  readonly animated: boolean;
  /** The thumbnail's real type (image/jpeg, image/png, image/webp, ...). */
  readonly contentType: string;
  readonly blobId: string;
  readonly size: number;
  readonly createdAt: number;
}

/**
 * Which media records an admin or retention query selects. Every given
 * condition must hold; an empty query selects everything.
 */
export interface MediaQuery {
  /** Only media of this origin (e.g. our own server name: local media). */
  readonly serverName?: string;
  /** Only media of any other origin (e.g. not ours: cached remote media). */
  readonly notServerName?: string;
  readonly userId?: string;
  /** Lower-case hex SHA-256 of the bytes: every copy of identical content. */
  readonly sha256?: string;
  readonly quarantined?: boolean;
  /** Only protected (true) or unprotected (false) records; see {@link MediaRecord.protected}. */
  readonly protected?: boolean;
  /** Only profile (true) or other (false) records; see {@link MediaRecord.profile}. */
  readonly profile?: boolean;
  /** Only records created before this time (ms since epoch, exclusive). */
  readonly createdBefore?: number;
  /**
   * Only records last used before this time (exclusive). Last used is the
   * last access, or the upload (then creation) time for never-read media.
   */
  readonly lastUsedBefore?: number;
  /** Only records whose size is known and larger than this many bytes. */
  readonly sizeGreaterThan?: number;
  /** Only records in this scan state (`MediaRecord.scanState`). */
  readonly scanState?: MediaScanState;
}

/** Sort keys of {@link MediaQueries.listMedia}; ties are broken by `(serverName, mediaId)`. */
export type MediaOrder = 'created_at' | 'last_used' | 'size' | 'media_id' | 'upload_name' | 'content_type';

/** Paging and order of {@link MediaQueries.listMedia}. */
export interface MediaListOptions {
  /** Default `created_at`. */
  readonly orderBy?: MediaOrder;
  /** Default `asc`. */
  readonly direction?: 'asc' | 'desc';
  /** At most this many records (a positive integer). */
  readonly limit: number;
  /** Skip this many records first. Default 0. */
  readonly offset?: number;
}

/** Count and total size of the records a {@link MediaQuery} selects (unknown sizes count as 0). */
export interface MediaSummary {
  readonly count: number;
  readonly totalBytes: number;
}

/** Options of {@link MediaQueries.mediaUsageByUser}; only media with an uploader counts. */
export interface MediaUsageQuery {
  /** Only media created at or after this time (ms since epoch). */
  readonly createdFrom?: number;
  /** Only media created before this time. */
  readonly createdUntil?: number;
  /** Only users whose ID contains this text (ASCII case-insensitive). */
  readonly searchTerm?: string;
  /** Default `user_id`; ties are broken by user ID. */
  readonly orderBy?: 'user_id' | 'media_count' | 'media_length';
  readonly direction?: 'asc' | 'desc';
  readonly limit: number;
  readonly offset?: number;
}

/** One user's uploads: how many and how many bytes. */
export interface UserMediaUsage {
  readonly userId: string;
  readonly mediaCount: number;
  readonly mediaLength: number;
}

/** A page of {@link UserMediaUsage} and the number of users that match in all. */
export interface MediaUsagePage {
  readonly users: UserMediaUsage[];
  readonly total: number;
}

/**
 * The media rows: one per local or cached remote item. Every method is a
 * single atomic operation. What serving, uploading and fetching need.
 */
export interface MediaRecordStore {
  getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null>;
  /** Inserts a new record; false (and no change) when `(serverName, mediaId)` exists. */
  insertMedia(record: MediaRecord): Promise<boolean>;
  /** Fills a pending record; false when it does not exist or already has content. */
  completeMedia(serverName: string, mediaId: string, completion: MediaCompletion): Promise<boolean>;
  /** Deletes the record; true when it existed. */
  deleteMedia(serverName: string, mediaId: string): Promise<boolean>;
  /** Records an access (for retention); best effort. */
  touchMedia(serverName: string, mediaId: string, at: number): Promise<void>;
  /** Whether any media record references `blobId` (a blob is deleted only when none does). */
  isBlobReferenced(blobId: string): Promise<boolean>;
  /** Sets or clears the quarantine flag; true when the record exists. */
  setMediaQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean>;
  /** Sets or clears the protection flag ({@link MediaRecord.protected}); true when the record exists. */
  setMediaProtected(serverName: string, mediaId: string, isProtected: boolean): Promise<boolean>;
  /** Sets or clears the profile-media flag ({@link MediaRecord.profile}); true when the record exists. */
  setMediaProfile(serverName: string, mediaId: string, isProfile: boolean): Promise<boolean>;
  /**
   * How many of `userId`'s records are pending (`blobId` null) and not
   * expired at `now` (`expiresAt` null or later than `now`). For the cap on
   * pending async uploads.
   */
  countPendingMedia(userId: string, now: number): Promise<number>;
  /**
   * Deletes up to `limit` (a positive integer) pending records (`blobId`
   * null) whose `expiresAt` is at or before `now`, and gives how many it
   * deleted. Each row is deleted only while it is still pending: a record
   * completed concurrently is kept, never deleted. Records without
   * `expiresAt` are never expired. For the clean-up of `/create` IDs
   * nobody uploaded to (spec v1.7+ `unused_expires_at`).
   */
  deleteExpiredPendingMedia(now: number, limit: number): Promise<number>;
}

/**
 * The thumbnail rows of media items (local or remote; a remote item may have
 * thumbnail rows without a media row). Each row owns its blob, except in a
 * content-addressed store, where identical thumbnails share one (its
 * deletion is then conditional on the reference ledger).
 */
export interface ThumbnailIndex {
  /** The stored thumbnails of a media item (any order); [] when none. */
  listThumbnails(serverName: string, mediaId: string): Promise<StoredThumbnail[]>;
  /**
   * Records a thumbnail; false (and no change) when one with the same
   * `(serverName, mediaId, width, height, method, animated, contentType)` exists.
   */
  insertThumbnail(thumbnail: StoredThumbnail): Promise<boolean>;
  /** Deletes every thumbnail row of a media item and gives the blob IDs they used (the caller deletes the blobs). */
  deleteThumbnails(serverName: string, mediaId: string): Promise<string[]>;
}

/** Queries over many media records: the admin API, retention, quotas. */
export interface MediaQueries {
  /** Records a {@link MediaQuery} selects, in the given order and page (admin API, retention). */
  listMedia(query: MediaQuery, options: MediaListOptions): Promise<MediaRecord[]>;
  /** How many records a {@link MediaQuery} selects and their total size. */
  summarizeMedia(query: MediaQuery): Promise<MediaSummary>;
  /** Per-uploader counts and sizes (Synapse's `statistics/users/media`). */
  mediaUsageByUser(query: MediaUsageQuery): Promise<MediaUsagePage>;
  /**
   * Bytes (sum of `size`) and count of `userId`'s completed media (`blobId`
   * set) created at or after `sinceMs`; `sinceMs` 0 counts everything. For
   * upload quotas; remote media has no user and never counts.
   */
  getUserUsage(userId: string, sinceMs: number): Promise<MediaUsage>;
  /**
   * Records a {@link MediaBrowseFilter} selects, newest first: by
   * `createdAt`, then `serverName`, then `mediaId`, all descending; a page
   * starts after `options.after` (keyset paging, stable while media arrives).
   * For the admin console.
   */
  browseMedia(filter: MediaBrowseFilter, options: MediaBrowseOptions): Promise<MediaRecord[]>;
  /** The `limit` origins storing the most bytes (ties by server name, ascending). */
  mediaUsageByOrigin(limit: number): Promise<OriginMediaUsage[]>;
  /** Count and bytes of stored media per creation interval; only non-empty intervals, oldest first. */
  mediaCreationHistogram(query: MediaHistogramQuery): Promise<MediaHistogramBucket[]>;
}

/**
 * Everything the media services keep in a database, as one store: what a
 * SQL store (`@hsmedia/store-knex`) and the in-memory store implement. Each
 * service takes only the narrow port it uses, so a homeserver may also
 * implement them separately.
 */
export interface MediaMetadataStore extends MediaRecordStore, ThumbnailIndex, MediaQueries {
  /** Releases connections; the store is unusable afterwards. */
  close(): Promise<void>;
}
