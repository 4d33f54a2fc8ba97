/** Physical table names, derived once from the configured prefix. */
export interface TableNames {
  readonly media: string;
  readonly serverKeys: string;
  /** Stored thumbnails (migration 0002). */
  readonly thumbnails: string;
  /** Named expiring leases (migration 0004). */
  readonly jobLeases: string;
  /** The blocked-hash list (migration 0007). */
  readonly blockedHashes: string;
  /** The admin audit log (migration 0008). */
  readonly adminAudit: string;
  /** Token buckets of rate limits shared by every process (migration 0011). */
  readonly rateLimitBuckets: string;
  /** URL previews shared by every process (migration 0011). */
  readonly urlPreviews: string;
  /** Where long-running imports keep their place (migration 0014). */
  readonly importCursors: string;
  /** The reference ledger of content-addressed blobs (migration 0012). */
  readonly blobRefs: string;
  /** knex's migration bookkeeping; knex adds `_lock` for its lock table. */
  readonly migrations: string;
}

// The prefix ends up inside identifiers (tables and index names), so keep it to a
// charset every dialect accepts unquoted and that needs no escaping anywhere.
const TABLE_PREFIX_RE = /^[A-Za-z0-9_]{0,32}$/;

/**
 * Table names for `tablePrefix`. Throws `TypeError` for a prefix that is not
 * `[A-Za-z0-9_]{0,32}` (configuration error, caught at construction).
 */
export function tableNamesFor(tablePrefix = ''): TableNames {
  if (typeof tablePrefix !== 'string' || !TABLE_PREFIX_RE.test(tablePrefix)) {
    throw new TypeError('tablePrefix must match [A-Za-z0-9_]{0,32}');
  }
  return {
    media: `${tablePrefix}media`,
    serverKeys: `${tablePrefix}server_keys`,
    thumbnails: `${tablePrefix}thumbnails`,
    jobLeases: `${tablePrefix}job_leases`,
    blockedHashes: `${tablePrefix}blocked_hashes`,
    adminAudit: `${tablePrefix}admin_audit`,
    rateLimitBuckets: `${tablePrefix}rate_limit_buckets`,
    urlPreviews: `${tablePrefix}url_previews`,
    importCursors: `${tablePrefix}import_cursors`,
    blobRefs: `${tablePrefix}blob_refs`,
    // Not knex's default `knex_migrations`: a host application sharing the database
    // may run its own knex migrations, and knex refuses to run when the table lists
    // migrations its source does not know.
    migrations: `${tablePrefix}hsmedia_migrations`,
  };
}
