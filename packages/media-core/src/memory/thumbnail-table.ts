import type { StoredThumbnail } from '../ports/index.js';
import { mediaKey } from './media-table.js';

/** A copy of exactly the {@link StoredThumbnail} fields. */
function copyThumbnail(thumbnail: StoredThumbnail): StoredThumbnail {
  return {
    serverName: thumbnail.serverName,
    mediaId: thumbnail.mediaId,
    width: thumbnail.width,
    height: thumbnail.height,
    method: thumbnail.method,
    animated: thumbnail.animated,
    contentType: thumbnail.contentType,
    blobId: thumbnail.blobId,
    size: thumbnail.size,
    createdAt: thumbnail.createdAt,
  };
}

/** Whether two rows have the same key (the unique index of the SQL stores). */
function sameKey(a: StoredThumbnail, b: StoredThumbnail): boolean {
  return (
    a.width === b.width &&
    a.height === b.height &&
    a.method === b.method &&
    a.animated === b.animated &&
    a.contentType === b.contentType
  );
}

/**
 * The thumbnail rows of `MemoryMetadataStore` (the `ThumbnailIndex`
 * semantics), grouped by media item. Rows may exist without a media row
 * (remote thumbnails), as in the SQL stores.
 */
export class ThumbnailTable {
  readonly #rows = new Map<string, StoredThumbnail[]>();

  list(serverName: string, mediaId: string): StoredThumbnail[] {
    return (this.#rows.get(mediaKey(serverName, mediaId)) ?? []).map(copyThumbnail);
  }

  insert(thumbnail: StoredThumbnail): boolean {
    const key = mediaKey(thumbnail.serverName, thumbnail.mediaId);
    const rows = this.#rows.get(key) ?? [];
    if (rows.some((row) => sameKey(row, thumbnail))) return false;
    this.#rows.set(key, [...rows, copyThumbnail(thumbnail)]);
    return true;
  }

  delete(serverName: string, mediaId: string): string[] {
    const key = mediaKey(serverName, mediaId);
    const rows = this.#rows.get(key) ?? [];
    this.#rows.delete(key);
    return rows.map((row) => row.blobId);
  }

  /** Points every row using blob `from` at `to`; how many moved. */
  replaceBlobId(from: string, to: string): number {
    let moved = 0;
    for (const [key, rows] of this.#rows) {
      this.#rows.set(
        key,
        rows.map((row) => {
          if (row.blobId !== from) return row;
          moved++;
          return { ...row, blobId: to };
        }),
      );
    }
    return moved;
  }

  /** Whether any thumbnail row uses `blobId`. */
  references(blobId: string): boolean {
    for (const rows of this.#rows.values()) if (rows.some((row) => row.blobId === blobId)) return true;
    return false;
  }
}
