/**
 * The audit trail of admin actions: who did what to which media, user or
 * content hash, why and when. `MediaAdmin` records every mutation through it;
 * the admin API reads it back, newest first.
 */

/** The admin actions recorded. */
export const ADMIN_ACTIONS = [
  'quarantine',
  'unquarantine',
  'protect',
  'unprotect',
  'delete',
  'purge',
  'block_hash',
  'unblock_hash',
  'rescan',
  'import_hashes',
  'mark_profile',
  'unmark_profile',
] as const;

export type AdminActionName = (typeof ADMIN_ACTIONS)[number];

/** One action to record. */
export interface AdminAction {
  readonly action: AdminActionName;
  /** The acting admin (a Matrix user ID) or tool; null when unknown. */
  readonly actor: string | null;
  /** What it acted on: an `mxc://` URI, a Matrix user ID, a SHA-256 hex or a scope such as `remote_cache`. */
  readonly target: string;
  /** Why (free text); null when no reason was given. */
  readonly reason: string | null;
  /** When, in ms since the epoch. */
  readonly at: number;
}

/** A recorded action with the ID the store gave it (increasing in recording order). */
export interface RecordedAdminAction extends AdminAction {
  readonly id: number;
}

/** A page of {@link AdminAuditLog.listAdminActions}: newest first, keyset-paged by `id`. */
export interface AdminActionQuery {
  /** Entries to return, 1 to 1000. */
  readonly limit: number;
  /** Only entries older than this ID (the last `id` of the previous page). */
  readonly before?: number | undefined;
  readonly action?: AdminActionName | undefined;
  /** Only entries with exactly this target. */
  readonly target?: string | undefined;
}

/**
 * The audit log. An optional capability of a `MediaMetadataStore` (check with
 * `hasAdminAuditLog`): the SQL stores and the in-memory store implement it.
 * Malformed entries and queries are a `TypeError` and write nothing.
 */
export interface AdminAuditLog {
  /** Appends an entry; the stored one with its ID. */
  recordAdminAction(entry: AdminAction): Promise<RecordedAdminAction>;
  /** A page of entries, newest (highest ID) first. */
  listAdminActions(query: AdminActionQuery): Promise<RecordedAdminAction[]>;
}

/** Whether `store` also implements {@link AdminAuditLog}. */
export function hasAdminAuditLog<T extends object>(store: T): store is T & AdminAuditLog {
  const candidate = store as Partial<AdminAuditLog>;
  return typeof candidate.recordAdminAction === 'function' && typeof candidate.listAdminActions === 'function';
}

function isText(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length <= max && !value.includes('\0');
}

/** Whether `action` is one of {@link ADMIN_ACTIONS}. */
export function isAdminActionName(action: unknown): action is AdminActionName {
  return (ADMIN_ACTIONS as readonly unknown[]).includes(action);
}

/** Throws `TypeError` for an entry no store can keep faithfully (shared by the store implementations). */
export function checkAdminAction(entry: AdminAction): void {
  if (!isAdminActionName(entry?.action)) throw new TypeError(`action must be one of ${ADMIN_ACTIONS.join(', ')}`);
  if (entry.actor !== null && !isText(entry.actor, 255)) throw new TypeError('actor must be null or a string of at most 255 characters without NUL');
  if (!isText(entry.target, 512) || entry.target === '') throw new TypeError('target must be a non-empty string of at most 512 characters without NUL');
  if (entry.reason !== null && !isText(entry.reason, 1000)) throw new TypeError('reason must be null or a string of at most 1000 characters without NUL');
  if (!Number.isSafeInteger(entry.at) || entry.at < 0) throw new TypeError('at must be a non-negative safe integer');
}

/** Throws `TypeError` for a query that is not `1..1000` entries or has a malformed `before`, `action` or `target`. */
export function checkAdminActionQuery(query: AdminActionQuery): void {
  if (!Number.isSafeInteger(query?.limit) || query.limit < 1 || query.limit > 1000) throw new TypeError('limit must be an integer from 1 to 1000');
  if (query.before !== undefined && (!Number.isSafeInteger(query.before) || query.before < 1)) throw new TypeError('before must be a positive integer');
  if (query.action !== undefined && !isAdminActionName(query.action)) throw new TypeError(`action must be one of ${ADMIN_ACTIONS.join(', ')}`);
  if (query.target !== undefined && !isText(query.target, 512)) throw new TypeError('target must be a string of at most 512 characters without NUL');
}
