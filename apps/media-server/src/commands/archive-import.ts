import { createHash } from 'node:crypto';
import { ImportError, type ImportedMediaRecord } from '@hsmedia/media-core';
import {
  MANIFEST_ENTRY,
  MAX_ARCHIVE_JSON_BYTES,
  PART_HEADER_ENTRY,
  itemSchema,
  manifestSchema,
  parseArchiveJson,
  parseMediaEntryName,
  partHeaderSchema,
  type ArchiveItem,
  type ArchiveManifest,
} from './archive-format.js';
import type { ArchiveImportReport } from './archive-report.js';
import { ArchivePartError, readArchivePart, readEntryText, type ArchiveEntry, type ArchivePartFile } from './archive-tar.js';
import { importArchivedMedia, ImportPipeline, type ArchiveImportTarget } from './archive-target.js';

/**
 * `import-archive`: imports hsmedia media archives (what `export` writes,
 * docs/export-format.md) in one streaming pass: every item's metadata
 * precedes its bytes, so each part is read once, in any order, and a lost
 * part loses only its own items. The manifest at the end of the last part
 * is checked against what the parts held.
 */

/** Options of {@link importHsmediaArchive}. */
export interface HsmediaImportOptions {
  readonly dryRun: boolean;
  /** Larger files are refused (a decompression bomb declares any size it likes). */
  readonly maxFileBytes: number;
  readonly report: ArchiveImportReport;
  readonly progress?: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** The item being read: its metadata arrived, its bytes and thumbnails may follow. */
interface OpenItem {
  readonly item: ArchiveItem;
  readonly mxc: string;
  readonly entry: string;
  /** Whether its bytes were seen (or it has none). */
  dataSeen: boolean;
  /** Whether the media row exists now (imported or present), so thumbnails may follow. */
  stored: boolean;
  /** Settles when the media's import (running in the background) has. */
  mediaDone: Promise<void>;
  thumbnailsSeen: number;
}

function recordOf(item: ArchiveItem): ImportedMediaRecord {
  return {
    serverName: item.server_name,
    mediaId: item.media_id,
    contentType: item.content_type,
    uploadName: item.upload_name,
    userId: item.user_id,
    createdAt: item.created_ts,
    lastAccessAt: item.last_access_ts,
    quarantined: item.quarantined,
    protected: item.protected,
    ...(item.profile ? { profile: true } : {}),
    authenticated: item.authenticated,
    ...(item.data === null ? { pending: true } : { expectedSize: item.size ?? 0 }),
    ...(item.sha256 === null ? {} : { expectedSha256: item.sha256 }),
  };
}

async function hashOf(entry: ArchiveEntry): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of entry.bytes) hash.update(chunk);
  return hash.digest('hex');
}

/** The entries an item document names (`data` and its thumbnails' `data`), read leniently from one that failed validation. */
function entriesNamedBy(text: string): string[] {
  try {
    const value = JSON.parse(text) as { data?: unknown; thumbnails?: unknown };
    const thumbnails = Array.isArray(value.thumbnails) ? (value.thumbnails as { data?: unknown }[]) : [];
    return [value.data, ...thumbnails.map((thumbnail) => thumbnail?.data)].filter((name): name is string => typeof name === 'string');
  } catch {
    return [];
  }
}

/** Imports the given parts; see the module comment. Store failures are rethrown (a rerun continues). */
export async function importHsmediaArchive(parts: readonly ArchivePartFile[], target: ArchiveImportTarget, options: HsmediaImportOptions): Promise<void> {
  const { report, dryRun, signal } = options;
  let manifest: ArchiveManifest | undefined;
  const partsSeen = new Map<number, { file: string; items: number }>();
  let exportId: string | undefined;
  const pipeline = new ImportPipeline();

  for (const part of parts) {
    let open: OpenItem | undefined;
    let partNumber: number | undefined;
    let items = 0;
    const rejectedEntries = new Set<string>();
    const closeItem = (): void => {
      if (open === undefined) return;
      if (!open.dataSeen) report.problem('missing-file', `${open.item.data} is not in this part`, { part: part.name, entry: open.entry, mxc: open.mxc });
      open = undefined;
    };
    const onEntry = async (entry: ArchiveEntry): Promise<void> => {
      const where = { part: part.name, entry: entry.name };
      if (entry.unsafe !== null) {
        if (entry.type !== 'directory') report.problem('unsafe-entry', entry.unsafe === 'not-a-file' ? `a ${entry.type} entry: skipped, never followed` : 'a name that leaves the archive: skipped', where);
        return;
      }
      if (partNumber === undefined) {
        const header = entry.name === PART_HEADER_ENTRY ? parseArchiveJson(partHeaderSchema, await readEntryText(entry, MAX_ARCHIVE_JSON_BYTES)) : undefined;
        if (header === undefined || !header.ok) {
          throw new ArchivePartError(part.name, `not a part of an hsmedia media archive (${header === undefined ? `it starts with ${entry.name}` : header.error})`);
        }
        if (exportId !== undefined && header.value.export_id !== exportId) throw new ArchivePartError(part.name, `a part of another export (${header.value.export_id}, not ${exportId})`);
        if (partsSeen.has(header.value.part)) throw new ArchivePartError(part.name, `part ${header.value.part} again (already read from ${partsSeen.get(header.value.part)!.file})`);
        exportId = header.value.export_id;
        partNumber = header.value.part;
        return;
      }
      if (entry.name === MANIFEST_ENTRY) {
        closeItem();
        const parsed = parseArchiveJson(manifestSchema, await readEntryText(entry, MAX_ARCHIVE_JSON_BYTES));
        if (parsed.ok) manifest = parsed.value;
        else report.problem('missing-part', `the manifest is not valid: ${parsed.error}`, where);
        return;
      }
      const name = parseMediaEntryName(entry.name);
      if (name?.kind === 'item') {
        closeItem();
        items++;
        const text = await readEntryText(entry, MAX_ARCHIVE_JSON_BYTES);
        const parsed = parseArchiveJson(itemSchema, text);
        if (!parsed.ok) {
          report.problem(/content_type/.test(parsed.error) ? 'unknown-content-type' : 'invalid-entry', parsed.error, where);
          for (const name of entriesNamedBy(text)) rejectedEntries.add(name);
          return;
        }
        const item = parsed.value;
        open = { item, mxc: `mxc://${item.server_name}/${item.media_id}`, entry: entry.name, dataSeen: item.data === null, stored: false, mediaDone: Promise.resolve(), thumbnailsSeen: 0 };
        if (item.data === null) {
          // Created but never uploaded: the ID is kept reserved, as it was.
          if (dryRun) {
            if (await target.has(item.server_name, item.media_id)) report.present++;
            else report.imported++;
            return;
          }
          const outcome = await importArchivedMedia(target, recordOf(item), null, report, { ...where, mxc: open.mxc }, signal);
          open.stored = outcome === 'imported' || outcome === 'present';
        }
        return;
      }
      if (open !== undefined && entry.name === open.item.data && !open.dataSeen) {
        open.dataSeen = true;
        const mxcWhere = { ...where, mxc: open.mxc };
        if (entry.size !== open.item.size) {
          report.problem('size-mismatch', `the file has ${entry.size} bytes, the item says ${open.item.size}`, mxcWhere);
          return;
        }
        if (entry.size > options.maxFileBytes) {
          report.problem('refused', `${entry.size} bytes is more than the largest file imported (${options.maxFileBytes}; --max-file-size)`, mxcWhere);
          return;
        }
        if (dryRun) {
          if (await target.has(open.item.server_name, open.item.media_id)) {
            report.present++;
            return;
          }
          const actual = await hashOf(entry);
          if (open.item.sha256 !== null && actual !== open.item.sha256) {
            report.problem('hash-mismatch', `SHA-256 is ${actual}, the item says ${open.item.sha256}`, mxcWhere);
            return;
          }
          report.imported++;
          report.importedBytes += entry.size;
          return;
        }
        const current = open;
        const { done } = await pipeline.start(entry.bytes, async (bytes) => {
          const outcome = await importArchivedMedia(target, recordOf(current.item), bytes, report, mxcWhere, signal);
          if (outcome === 'imported') report.importedBytes += entry.size;
          current.stored = outcome === 'imported' || outcome === 'present';
        });
        current.mediaDone = done;
        return;
      }
      const thumbnail = open?.item.thumbnails.findIndex((candidate) => candidate.data === entry.name) ?? -1;
      if (open !== undefined && name?.kind === 'thumbnail' && thumbnail >= 0) {
        open.thumbnailsSeen++;
        const wanted = open.item.thumbnails[thumbnail]!;
        if (entry.size !== wanted.size || entry.size > options.maxFileBytes) {
          report.problem(entry.size !== wanted.size ? 'size-mismatch' : 'refused', `the thumbnail has ${entry.size} bytes, the item says ${wanted.size}, the limit is ${options.maxFileBytes}`, { ...where, mxc: open.mxc });
          return;
        }
        // Thumbnail rows follow their media's row.
        await open.mediaDone;
        // The media went wrong (reported) or this is a dry run: its thumbnails are not stored.
        if (!open.stored || dryRun) return;
        try {
          const outcome = await target.importThumbnail(
            open.item.server_name,
            open.item.media_id,
            { width: wanted.width, height: wanted.height, method: wanted.method, contentType: wanted.content_type, animated: wanted.animated, expectedSize: wanted.size },
            entry.bytes,
            signal,
          );
          if (outcome === 'imported') report.thumbnailsImported++;
        } catch (error) {
          if (!(error instanceof ImportError)) throw error;
          report.problem('refused', `thumbnail ${wanted.width}x${wanted.height} ${wanted.method}: ${error.message}`, { ...where, mxc: open.mxc });
        }
        return;
      }
      // The bytes of an item already reported as invalid are skipped without a second report.
      if (!rejectedEntries.has(entry.name)) report.problem('unlisted-file', 'no item names this file here', where);
    };
    try {
      await readArchivePart(part.path, part.name, onEntry, signal);
      closeItem();
    } catch (error) {
      if (!(error instanceof ArchivePartError)) {
        await pipeline.drain().catch(() => undefined);
        throw error;
      }
      report.problem('damaged-part', `${error.reason}; the items after the damage are not imported`, { part: part.name });
    }
    await pipeline.drain();
    if (partNumber !== undefined) partsSeen.set(partNumber, { file: part.name, items });
    options.progress?.(`${part.name}: done (${report.imported} ${dryRun ? 'to import' : 'imported'}, ${report.present} present, ${report.problems} problems so far)`);
  }

  if (manifest === undefined) {
    report.problem('missing-part', `no ${MANIFEST_ENTRY}: the last part is missing, so missing parts cannot be told`);
    return;
  }
  for (const listed of manifest.parts) {
    const seen = partsSeen.get(listed.part);
    if (seen === undefined) report.problem('missing-part', `part ${listed.part} (${listed.file}, ${listed.items} items) was not given`, { part: listed.file });
    else if (seen.items !== listed.items) report.problem('missing-part', `part ${listed.part} holds ${seen.items} items, the manifest says ${listed.items}`, { part: seen.file });
  }
}
