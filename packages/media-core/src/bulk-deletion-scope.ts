import type { MediaQuery, MediaRecord } from './ports/index.js';

/**
 * What a bulk deletion (purge, retention, deletion by date, size or user)
 * may delete besides ordinary media. Quarantined media is kept by default so
 * a quarantine stays in force (and visible to moderators) until released;
 * protected media is kept because an admin chose to keep it.
 */
export interface BulkDeletionScope {
  /** Delete quarantined media too. Default false. */
  readonly includeQuarantined?: boolean | undefined;
  /** Delete protected media too. Default false. */
  readonly includeProtected?: boolean | undefined;
  /** Delete profile media (avatars, {@link MediaRecord.profile}) too: Synapse's `keep_profiles=false`. Default false. */
  readonly includeProfiles?: boolean | undefined;
}

/** Which local media `MediaAdmin.deleteLocalMedia` deletes (every given condition must hold). */
export interface LocalMediaDeletion extends BulkDeletionScope {
  /** Last used (accessed, else uploaded) before this time, ms since epoch. */
  readonly lastUsedBefore?: number;
  /** Created before this time. */
  readonly createdBefore?: number;
  /** Larger than this many bytes. */
  readonly sizeGreaterThan?: number;
}

/** What `MediaAdmin.evictRemoteCache` did. */
export interface EvictionResult {
  readonly deleted: number;
  readonly freedBytes: number;
  /** Bytes of cached remote media left. */
  readonly remainingBytes: number;
}

/** `query` narrowed to what a bulk deletion in `scope` may delete. */
export function scoped(query: MediaQuery, scope: BulkDeletionScope): MediaQuery {
  return {
    ...query,
    ...(scope.includeQuarantined === true ? {} : { quarantined: false }),
    ...(scope.includeProtected === true ? {} : { protected: false }),
    ...(scope.includeProfiles === true ? {} : { profile: false }),
  };
}

/** Whether `record` may be deleted by a bulk deletion in `scope`. */
export function inScope(record: MediaRecord, scope: BulkDeletionScope): boolean {
  return (
    (scope.includeQuarantined === true || !record.quarantined) &&
    (scope.includeProtected === true || record.protected !== true) &&
    (scope.includeProfiles === true || record.profile !== true)
  );
}
