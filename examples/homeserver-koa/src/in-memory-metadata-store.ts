import type { MediaCompletion, MediaMetadataStore, MediaRecord, MediaUsage, StoredThumbnail } from '@hsmedia/media-core';
import type { StoredServerKey } from '@hsmedia/signing';
import {
  mediaUsageOfRecords,
  selectMediaRecords,
  summarizeMediaRecords,
  type MediaListOptions,
  type MediaQuery,
  type MediaSummary,
  type MediaUsagePage,
  type MediaUsageQuery,
} from '@hsmedia/media-core';

/** Neither a server name nor a media ID can contain a newline, so the pair is a unique key. */
function keyOf(serverName: string, mediaId: string): string {
  return `${serverName}\n${mediaId}`;
}

/**
 * A `MediaMetadataStore` in process memory: the homeserver's own storage
 * choice, written against the port in `@hsmedia/media-core` and checked by
 * `@hsmedia/conformance` like any adapter. Everything is lost on restart, so
 * it suits tests and demos; a real homeserver would put the same few
 * methods on its own database.
 *
 * Records are copied in and out, so callers never share an object with the store.
 */
export class InMemoryMetadataStore implements MediaMetadataStore {
  readonly #media = new Map<string, MediaRecord>();
  readonly #serverKeys = new Map<string, Map<string, StoredServerKey>>();
  readonly #thumbnails = new Map<string, StoredThumbnail[]>();

  async getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    const record = this.#media.get(keyOf(serverName, mediaId));
    return record === undefined ? null : { ...record };
  }

  async insertMedia(record: MediaRecord): Promise<boolean> {
    const key = keyOf(record.serverName, record.mediaId);
    if (this.#media.has(key)) return false;
    this.#media.set(key, { ...record });
    return true;
  }

  async completeMedia(serverName: string, mediaId: string, completion: MediaCompletion): Promise<boolean> {
    const key = keyOf(serverName, mediaId);
    const record = this.#media.get(key);
    // Only a pending record (created, no bytes yet) can be completed, and only once.
    if (record === undefined || record.blobId !== null) return false;
    this.#media.set(key, { ...record, ...completion });
    return true;
  }

  async deleteMedia(serverName: string, mediaId: string): Promise<boolean> {
    return this.#media.delete(keyOf(serverName, mediaId));
  }

  async touchMedia(serverName: string, mediaId: string, at: number): Promise<void> {
    const key = keyOf(serverName, mediaId);
    const record = this.#media.get(key);
    if (record !== undefined) this.#media.set(key, { ...record, lastAccessAt: at });
  }

  async isBlobReferenced(blobId: string): Promise<boolean> {
    // A linear scan: fine for a demo; a database would use an index on blob_id.
    for (const record of this.#media.values()) if (record.blobId === blobId) return true;
    for (const rows of this.#thumbnails.values()) if (rows.some((t) => t.blobId === blobId)) return true;
    return false;
  }

  async getUserUsage(userId: string, sinceMs: number): Promise<MediaUsage> {
    let bytes = 0;
    let files = 0;
    for (const record of this.#media.values()) {
      if (record.userId !== userId || record.blobId === null || record.createdAt < sinceMs) continue;
      bytes += record.size ?? 0;
      files += 1;
    }
    return { bytes, files };
  }
  async countPendingMedia(userId: string, now: number): Promise<number> {
    let count = 0;
    for (const record of this.#media.values()) {
      if (record.userId === userId && record.blobId === null && (record.expiresAt === null || record.expiresAt > now)) count++;
    }
    return count;
  }

  async deleteExpiredPendingMedia(now: number, limit: number): Promise<number> {
    let deleted = 0;
    for (const [key, record] of this.#media) {
      if (deleted >= limit) break;
      if (record.blobId === null && record.expiresAt !== null && record.expiresAt <= now) {
        this.#media.delete(key);
        deleted++;
      }
    }
    return deleted;
  }

  async listThumbnails(serverName: string, mediaId: string): Promise<StoredThumbnail[]> {
    return (this.#thumbnails.get(keyOf(serverName, mediaId)) ?? []).map((t) => ({ ...t }));
  }
  async insertThumbnail(thumbnail: StoredThumbnail): Promise<boolean> {
    const key = keyOf(thumbnail.serverName, thumbnail.mediaId);
    const rows = this.#thumbnails.get(key) ?? [];
    const same = (t: StoredThumbnail): boolean =>
      t.width === thumbnail.width && t.height === thumbnail.height && t.method === thumbnail.method &&
      t.animated === thumbnail.animated && t.contentType === thumbnail.contentType;
    if (rows.some(same)) return false;
    this.#thumbnails.set(key, [...rows, { ...thumbnail }]);
    return true;
  }
  async deleteThumbnails(serverName: string, mediaId: string): Promise<string[]> {
    const key = keyOf(serverName, mediaId);
    const rows = this.#thumbnails.get(key) ?? [];
    this.#thumbnails.delete(key);
    return rows.map((t) => t.blobId);
  }

  // The admin and retention queries: the reference semantics from media-core over this map.
  async listMedia(query: MediaQuery, options: MediaListOptions): Promise<MediaRecord[]> {
    return selectMediaRecords(this.#media.values(), query, options);
  }

  async summarizeMedia(query: MediaQuery): Promise<MediaSummary> {
    return summarizeMediaRecords(this.#media.values(), query);
  }

  async setMediaQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean> {
    const key = keyOf(serverName, mediaId);
    const record = this.#media.get(key);
    if (record === undefined) return false;
    this.#media.set(key, { ...record, quarantined });
    return true;
  }

  async setMediaProtected(serverName: string, mediaId: string, isProtected: boolean): Promise<boolean> {
    const key = keyOf(serverName, mediaId);
    const record = this.#media.get(key);
    if (record === undefined) return false;
    const { protected: _wasProtected, ...rest } = record;
    this.#media.set(key, isProtected ? { ...rest, protected: true } : rest);
    return true;
  }

  async mediaUsageByUser(query: MediaUsageQuery): Promise<MediaUsagePage> {
    return mediaUsageOfRecords(this.#media.values(), query);
  }

  async getServerKeys(serverName: string): Promise<StoredServerKey[]> {
    return [...(this.#serverKeys.get(serverName)?.values() ?? [])].map((key) => ({ ...key }));
  }

  async putServerKeys(keys: readonly StoredServerKey[]): Promise<void> {
    for (const key of keys) {
      let byId = this.#serverKeys.get(key.serverName);
      if (byId === undefined) this.#serverKeys.set(key.serverName, (byId = new Map()));
      byId.set(key.keyId, { ...key });
    }
  }

  async close(): Promise<void> {}
}
