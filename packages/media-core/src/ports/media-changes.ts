/**
 * Changes to media that every process of a deployment must see at once:
 * each process caches records, blobs and blocked-hash answers, and a change
 * made by one process (an admin quarantining media) must reach the caches
 * of the others, not wait for their entries to expire.
 */

/** Why a media item's cached state is stale. */
export type MediaChangeCause =
  | 'quarantine'
  | 'unquarantine'
  | 'delete'
  | 'protect'
  | 'unprotect'
  /** An async upload (`/create` then PUT) received its bytes. */
  | 'completed'
  /** A verdict about the content (a scan, a review) changed what may be served. */
  | 'verdict'
  /** Anything else: drop the cached state. */
  | 'changed';

/** One change, as published by the process that made it. */
export type MediaChange =
  | { readonly kind: 'media'; readonly serverName: string; readonly mediaId: string; readonly cause: MediaChangeCause }
  /** The blocked-hash list changed: one hash, or (no `sha256`) any number of them. */
  | { readonly kind: 'blocked-hashes'; readonly sha256?: string | undefined }
  /**
   * Delivered locally, never published: changes may have been missed (the
   * feed's connection was lost), so every cache that may be stale must go.
   */
  | { readonly kind: 'resync' };

/** Receives every change published by any process, its own included. Must not throw or block. */
export type MediaChangeListener = (change: MediaChange) => void;

/**
 * A publish/subscribe channel of {@link MediaChange}s shared by every process
 * of a deployment: in-process for a single process
 * (`InProcessMediaChangeFeed`), PostgreSQL `LISTEN`/`NOTIFY` when several
 * share a database (`PostgresMediaChangeFeed` of `@hsmedia/store-postgres`).
 * Delivery is at most once and best effort: a feed that may have lost
 * changes tells its listeners `{ kind: 'resync' }`.
 */
export interface MediaChangeFeed {
  /** Announces `change` to every subscriber of every process. Resolves once it is sent. */
  publish(change: MediaChange): Promise<void>;
  /** Calls `listener` with every change from now on. Returns an unsubscribe function. */
  subscribe(listener: MediaChangeListener): () => void;
}

const CAUSES: ReadonlySet<string> = new Set<MediaChangeCause>([
  'quarantine',
  'unquarantine',
  'delete',
  'protect',
  'unprotect',
  'completed',
  'verdict',
  'changed',
]);

/**
 * Checks a change that arrived from outside the process (a NOTIFY payload,
 * parsed JSON): the change, or undefined when it is malformed. `resync` is
 * local only and never accepted from outside.
 */
export function parseMediaChange(value: unknown): MediaChange | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const candidate = value as Record<string, unknown>;
  if (candidate['kind'] === 'media') {
    const { serverName, mediaId, cause } = candidate;
    if (typeof serverName !== 'string' || typeof mediaId !== 'string' || typeof cause !== 'string' || !CAUSES.has(cause)) return undefined;
    if (serverName === '' || mediaId === '') return undefined;
    return { kind: 'media', serverName, mediaId, cause: cause as MediaChangeCause };
  }
  if (candidate['kind'] === 'blocked-hashes') {
    const sha256 = candidate['sha256'];
    if (sha256 === undefined) return { kind: 'blocked-hashes' };
    return typeof sha256 === 'string' ? { kind: 'blocked-hashes', sha256 } : undefined;
  }
  return undefined;
}
