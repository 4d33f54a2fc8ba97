import { randomBytes } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { BlobStore, MediaMetadataStore, MediaQuery, MediaRecord, StoredThumbnail } from '@hsmedia/media-core';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  MANIFEST_ENTRY,
  PART_HEADER_ENTRY,
  dataEntry,
  itemEntry,
  itemOf,
  partFileName,
  type ArchiveManifest,
  type ArchiveManifestPart,
  type PartHeader,
} from './archive-format.js';
import { ArchivePartWriter } from './archive-writer.js';

/**
 * `export`: one user's media, or a whole server's, as an hsmedia media
 * archive (docs/export-format.md) in a directory of tar.gz parts. Records
 * are read page by page and each blob streamed from the blob store into the
 * current part; a part is closed once it holds `partSize` bytes. A failure
 * removes every part written, so a directory holds a complete export or
 * none.
 */

/** What to export. */
export type ExportScope = { readonly kind: 'user'; readonly userId: string } | { readonly kind: 'server'; readonly includeRemote: boolean };

/** Options of {@link exportMedia}. */
export interface ExportOptions {
  readonly serverName: string;
  readonly blobs: BlobStore;
  readonly metadata: MediaMetadataStore;
  readonly scope: ExportScope;
  /**
   * The directory the parts go to (created if missing, must hold no export
   * already), or a stream that takes the whole archive as one part.
   */
  readonly out: string | Writable;
  /** A part is closed once it holds at least this many bytes (files only). */
  readonly partSize: number;
  /** Also export quarantined media (an operator moving servers); default: left out and counted. */
  readonly includeQuarantined: boolean;
  readonly progress?: (line: string) => void;
}

/** What was exported. */
export interface ExportResult {
  readonly files: readonly string[];
  readonly manifest: ArchiveManifest;
}

const PAGE = 200;
const json = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value)}\n`);

async function* recordsOf(metadata: MediaMetadataStore, query: MediaQuery): AsyncGenerator<MediaRecord> {
  // media_id order with the (serverName, mediaId) tie-break is total and stable while new media arrives.
  for (let offset = 0; ; offset += PAGE) {
    const page = await metadata.listMedia(query, { orderBy: 'media_id', limit: PAGE, offset });
    yield* page;
    if (page.length < PAGE) return;
  }
}

/** Streams a blob into the part; false when the blob is gone or not `size` bytes. */
async function usableBlob(blobs: BlobStore, blobId: string, size: number): Promise<boolean> {
  const stat = await blobs.stat(blobId);
  return stat !== null && stat.size === size;
}

async function* streamOf(blobs: BlobStore, blobId: string): AsyncGenerator<Uint8Array> {
  const stream = await blobs.open(blobId);
  if (stream === null) throw new Error(`blob ${blobId} disappeared while exporting`);
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
    await stream.cancel().catch(() => undefined);
  }
}

/** Writes the archive; see the module comment. */
export async function exportMedia(options: ExportOptions): Promise<ExportResult> {
  const { blobs, metadata, scope, out } = options;
  if (typeof out === 'string') {
    await mkdir(out, { recursive: true });
    const existing = (await readdir(out)).filter((name) => name.startsWith('hsmedia-export-part-'));
    if (existing.length > 0) throw new Error(`${out} already holds an export (${existing[0]}): give an empty directory`);
  }
  const partSize = typeof out === 'string' ? options.partSize : Number.POSITIVE_INFINITY;

  const exportId = randomBytes(8).toString('hex');
  const query: MediaQuery =
    scope.kind === 'user' ? { serverName: options.serverName, userId: scope.userId } : scope.includeRemote ? {} : { serverName: options.serverName };
  const writer = new ArchivePartWriter(out);
  const parts: ArchiveManifestPart[] = [];
  let part = { part: 0, items: 0, bytes: 0 };
  const beginPart = async (): Promise<void> => {
    part = { part: parts.length + 1, items: 0, bytes: 0 };
    writer.begin(partFileName(part.part));
    const header: PartHeader = { format: ARCHIVE_FORMAT, version: ARCHIVE_VERSION, export_id: exportId, part: part.part };
    await writer.addBuffer(PART_HEADER_ENTRY, json(header));
  };
  const finishPart = async (): Promise<void> => {
    await writer.finish();
    parts.push({ ...part, file: partFileName(part.part) });
    options.progress?.(`${partFileName(part.part)}: ${part.items} items, ${part.bytes} bytes`);
  };

  let sequence = 0;
  let bytes = 0;
  let thumbnailCount = 0;
  const skipped = { quarantined: 0, missing_bytes: 0 };
  try {
    await beginPart();
    for await (const record of recordsOf(metadata, query)) {
      if (record.quarantined && !options.includeQuarantined) {
        skipped.quarantined++;
        continue;
      }
      if (record.blobId !== null && !(await usableBlob(blobs, record.blobId, record.size ?? -1))) {
        skipped.missing_bytes++;
        options.progress?.(`mxc://${record.serverName}/${record.mediaId}: its blob is missing or not ${record.size} bytes; left out`);
        continue;
      }
      const thumbnails: StoredThumbnail[] = [];
      for (const thumbnail of await metadata.listThumbnails(record.serverName, record.mediaId)) {
        if (await usableBlob(blobs, thumbnail.blobId, thumbnail.size)) thumbnails.push(thumbnail);
      }
      sequence++;
      const item = itemOf(record, sequence, thumbnails);
      const mtime = new Date(record.createdAt);
      await writer.addBuffer(itemEntry(sequence), json(item), mtime);
      if (record.blobId !== null) {
        await writer.addStream(dataEntry(sequence), record.size!, streamOf(blobs, record.blobId), mtime);
        part.bytes += record.size!;
        bytes += record.size!;
      }
      for (const [index, thumbnail] of thumbnails.entries()) {
        await writer.addStream(item.thumbnails[index]!.data, thumbnail.size, streamOf(blobs, thumbnail.blobId), new Date(thumbnail.createdAt));
        part.bytes += thumbnail.size;
      }
      thumbnailCount += thumbnails.length;
      part.items++;
      if (part.bytes >= partSize) {
        await finishPart();
        await beginPart();
      }
    }
    const manifest: ArchiveManifest = {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      export_id: exportId,
      created_ts: Date.now(),
      server_name: options.serverName,
      scope: scope.kind === 'user' ? { kind: 'user', user_id: scope.userId } : { kind: 'server', include_remote: scope.includeRemote },
      // The open part is the last; it is listed with what it holds.
      parts: [...parts, { ...part, file: partFileName(part.part) }],
      items: sequence,
      bytes,
      thumbnails: thumbnailCount,
      skipped,
    };
    await writer.addBuffer(MANIFEST_ENTRY, json(manifest));
    await finishPart();
    return { files: writer.completed, manifest };
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
