/**
 * Where a local media ID this server does not know may still live: the media
 * repository being replaced (read-through from Synapse while its media is
 * moved in), consulted by `MediaService` when the catalog has no record.
 */
export interface LocalMediaFallback {
  /**
   * Brings a local media item this server has no record of, or only a pending
   * one (an async upload reserved there and uploaded there since), into its
   * stores (e.g. imports it, with its thumbnails, from the old repository).
   * True when a record exists afterwards (brought now, or by another caller meanwhile);
   * false when the fallback does not know the ID either, so it is 404 as
   * before. Throws a `MatrixError` for what the client should see instead:
   * the old repository unreachable (503), its file missing (404 with a
   * clear message). Concurrent calls for one ID should share one transfer.
   */
  bring(mediaId: string, signal?: AbortSignal): Promise<boolean>;
}
