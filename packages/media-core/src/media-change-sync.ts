import type { MediaChange, MediaChangeFeed } from './ports/index.js';

/** What a process's caches expose to follow a {@link MediaChangeFeed} (the `MediaCatalog`). */
export interface MediaChangeTarget {
  /** Drops every cached state of one media item. */
  invalidate(serverName: string, mediaId: string): void;
  /** Drops the cached blocked-hash answers: of one hash, or all. */
  forgetBlockedHashes(sha256?: string): void;
  /** Drops every cache that may be stale. */
  dropCaches(): void;
}

/**
 * Applies every change of `feed` to `target`: a media change invalidates the
 * item, a blocked-hash change the cached answers, a resync everything.
 * Changes this process published come back too; applying them again is
 * harmless (invalidation is idempotent). Returns the unsubscribe function.
 */
export function followMediaChanges(feed: MediaChangeFeed, target: MediaChangeTarget): () => void {
  return feed.subscribe((change: MediaChange) => {
    switch (change.kind) {
      case 'media':
        target.invalidate(change.serverName, change.mediaId);
        return;
      case 'blocked-hashes':
        target.forgetBlockedHashes(change.sha256);
        return;
      case 'resync':
        target.dropCaches();
        return;
    }
  });
}
