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
import { describeMetadataStore } from './metadata-store-suite.js';

/**
 * A minimal in-memory store, here only to check that the suite is
 * self-consistent. Each method awaits once, so concurrent calls interleave
 * as they would against a real database.
 */
class MemoryMetadataStore implements MediaMetadataStore {
  readonly #media = new Map<string, MediaRecord>();
  readonly #keys = new Map<string, StoredServerKey>();
  readonly #thumbnails = new Map<string, StoredThumbnail[]>();

  async getMedia(serverName: string, mediaId: string): Promise<MediaRecord | null> {
    await Promise.resolve();
    const record = this.#media.get(JSON.stringify([serverName, mediaId]));
    return record ? { ...record } : null;
  }
  async insertMedia(record: MediaRecord): Promise<boolean> {
    await Promise.resolve();
    const key = JSON.stringify([record.serverName, record.mediaId]);
    if (this.#media.has(key)) return false;
    this.#media.set(key, { ...record });
    return true;
  }
  async completeMedia(serverName: string, mediaId: string, completion: MediaCompletion): Promise<boolean> {
    await Promise.resolve();
    const key = JSON.stringify([serverName, mediaId]);
    const record = this.#media.get(key);
    if (!record || record.blobId !== null) return false;
    this.#media.set(key, { ...record, ...completion });
    return true;
  }
  async deleteMedia(serverName: string, mediaId: string): Promise<boolean> {
    await Promise.resolve();
    return this.#media.delete(JSON.stringify([serverName, mediaId]));
  }
  async touchMedia(serverName: string, mediaId: string, at: number): Promise<void> {
    await Promise.resolve();
    const key = JSON.stringify([serverName, mediaId]);
    const record = this.#media.get(key);
    if (record) this.#media.set(key, { ...record, lastAccessAt: at });
  }
  async isBlobReferenced(blobId: string): Promise<boolean> {
    await Promise.resolve();
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
    await Promise.resolve();
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
  async listMedia(query: MediaQuery, options: MediaListOptions): Promise<MediaRecord[]> {
    await Promise.resolve();
    return selectMediaRecords(this.#media.values(), query, options);
  }
  async summarizeMedia(query: MediaQuery): Promise<MediaSummary> {
    await Promise.resolve();
    return summarizeMediaRecords(this.#media.values(), query);
  }
  async setMediaQuarantined(serverName: string, mediaId: string, quarantined: boolean): Promise<boolean> {
    await Promise.resolve();
    const key = JSON.stringify([serverName, mediaId]);
    const record = this.#media.get(key);
    if (!record) return false;
    this.#media.set(key, { ...record, quarantined });
    return true;
  }
  async setMediaProtected(serverName: string, mediaId: string, isProtected: boolean): Promise<boolean> {
    await Promise.resolve();
    const key = JSON.stringify([serverName, mediaId]);
    const record = this.#media.get(key);
    if (!record) return false;
    const { protected: _wasProtected, ...rest } = record;
    this.#media.set(key, isProtected ? { ...rest, protected: true } : rest);
    return true;
  }
  async mediaUsageByUser(query: MediaUsageQuery): Promise<MediaUsagePage> {
    await Promise.resolve();
    return mediaUsageOfRecords(this.#media.values(), query);
  }
  async listThumbnails(serverName: string, mediaId: string): Promise<StoredThumbnail[]> {
    await Promise.resolve();
    return (this.#thumbnails.get(JSON.stringify([serverName, mediaId])) ?? []).map((t) => ({ ...t }));
  }
  async insertThumbnail(thumbnail: StoredThumbnail): Promise<boolean> {
    await Promise.resolve();
    const key = JSON.stringify([thumbnail.serverName, thumbnail.mediaId]);
    const rows = this.#thumbnails.get(key) ?? [];
    const same = (t: StoredThumbnail): boolean =>
      t.width === thumbnail.width && t.height === thumbnail.height && t.method === thumbnail.method &&
      t.animated === thumbnail.animated && t.contentType === thumbnail.contentType;
    if (rows.some(same)) return false;
    this.#thumbnails.set(key, [...rows, { ...thumbnail }]);
    return true;
  }
  async deleteThumbnails(serverName: string, mediaId: string): Promise<string[]> {
    await Promise.resolve();
    const key = JSON.stringify([serverName, mediaId]);
    const rows = this.#thumbnails.get(key) ?? [];
    this.#thumbnails.delete(key);
    return rows.map((t) => t.blobId);
  }
  async getServerKeys(serverName: string): Promise<StoredServerKey[]> {
    await Promise.resolve();
    return [...this.#keys.values()].filter((k) => k.serverName === serverName).map((k) => ({ ...k }));
  }
  async putServerKeys(keys: readonly StoredServerKey[]): Promise<void> {
    await Promise.resolve();
    for (const key of keys) this.#keys.set(JSON.stringify([key.serverName, key.keyId]), { ...key });
  }
  async close(): Promise<void> {}
}

describeMetadataStore('in-memory reference store', async () => {
  const store = new MemoryMetadataStore();
  return { store, cleanup: () => store.close() };
});
