import { createHash } from 'node:crypto';
import type { ImportedMediaRecord } from '@hsmedia/media-core';
import { ArchivePartError, readArchivePart, readEntryText, type ArchiveEntry, type ArchivePartFile } from './archive-tar.js';
import { MAX_MMR_MANIFEST_BYTES, MMR_INDEX_ENTRY, MMR_MANIFEST_ENTRY, MmrManifestError, parseMmrManifest, type MmrManifest, type MmrManifestItem } from './archive-mmr.js';
import { ArchiveImportReport } from './archive-report.js';
import { importArchivedMedia, ImportPipeline, type ArchiveImportTarget } from './archive-target.js';
import { MmrDatabaseError, MmrQuarantineApplier, readMmrQuarantine, type MmrQuarantine, type MmrQuarantineCatalog } from './import-mmr-quarantine.js';

/**
 * `import-mmr`: imports matrix-media-repo's export archives (see
 * `archive-mmr.ts` for the format). Two passes, as matrix-media-repo's own
 * importer does (its manifest is written last): find and parse
 * `manifest.json`, then stream every part, each file straight into the
 * media server's import sink with the manifest's size and SHA-256 checked
 * on the way. Media IDs, origins, uploaders, content types, names and
 * creation times are kept; what is already present is skipped, so a rerun
 * resumes an interrupted import. With matrix-media-repo's database
 * (`--mmr-database`), its quarantine and its pins (imported `protected`) are
 * kept too (`import-mmr-quarantine.ts`).
 */

/** Options of {@link importMmrArchive}. */
export interface MmrImportOptions {
  /** This server's name: media of other origins is cached remote media, which has no uploader here. */
  readonly serverName: string;
  readonly dryRun: boolean;
  /** Larger files are refused (a decompression bomb declares any size it likes). */
  readonly maxFileBytes: number;
  readonly report: ArchiveImportReport;
  /** One line per finished part. */
  readonly progress?: (line: string) => void;
  readonly signal?: AbortSignal;
  /**
   * Quarantine and pins read from matrix-media-repo's database (a PostgreSQL URL) and
   * applied through `catalog`; `actor` is recorded with the hashes it blocks.
   */
  readonly quarantine?: { readonly database: string; readonly catalog: MmrQuarantineCatalog; readonly actor: string };
}

/** Thrown before anything is imported when no usable manifest is found, or matrix-media-repo's database cannot be read. */
export class MmrArchiveError extends Error {}

/** Stops a manifest search once it is found. */
class ManifestFound extends Error {}

/** Finds `manifest.json`: first in parts named like matrix-media-repo's manifest part, then in the others. */
async function findManifest(parts: readonly ArchivePartFile[], report: ArchiveImportReport, signal?: AbortSignal): Promise<MmrManifest> {
  const ordered = [...parts.filter((part) => part.name.includes('manifest')), ...parts.filter((part) => !part.name.includes('manifest'))];
  for (const part of ordered) {
    let manifest: MmrManifest | undefined;
    try {
      await readArchivePart(
        part.path,
        part.name,
        async (entry) => {
          if (entry.name !== MMR_MANIFEST_ENTRY || entry.unsafe !== null) return;
          manifest = parseMmrManifest(await readEntryText(entry, MAX_MMR_MANIFEST_BYTES));
          throw new ManifestFound();
        },
        signal,
      );
    } catch (error) {
      if (error instanceof ArchivePartError) {
        // Reported again, once, when the part is read for media.
        continue;
      }
      if (error instanceof MmrManifestError) throw new MmrArchiveError(`${part.name}: ${error.message}`);
      if (!(error instanceof ManifestFound)) throw error;
    }
    if (manifest !== undefined) return manifest;
  }
  report.problem('missing-file', `no ${MMR_MANIFEST_ENTRY} in any of the ${parts.length} part(s)`);
  throw new MmrArchiveError(`no ${MMR_MANIFEST_ENTRY} in the given parts: give every part of the export, including export-manifest.tgz`);
}

function recordOf(item: MmrManifestItem, serverName: string, quarantined: boolean, pinned: boolean): ImportedMediaRecord {
  return {
    serverName: item.origin,
    mediaId: item.mediaId,
    contentType: item.contentType,
    uploadName: item.uploadName,
    userId: item.origin === serverName ? item.uploader : null,
    createdAt: item.createdAt,
    lastAccessAt: null,
    quarantined,
    // Pinned in matrix-media-repo: exempt from quarantine there, protected here.
    protected: pinned,
    expectedSize: item.size,
    ...(item.sha256 === null ? {} : { expectedSha256: item.sha256 }),
  };
}

/** Dry run: reads the bytes to check their hash, stores nothing. */
async function checkBytes(entry: ArchiveEntry, item: MmrManifestItem): Promise<string | null> {
  const hash = createHash('sha256');
  for await (const chunk of entry.bytes) hash.update(chunk);
  const actual = hash.digest('hex');
  return item.sha256 !== null && actual !== item.sha256 ? `SHA-256 is ${actual}, the manifest says ${item.sha256}` : null;
}

/**
 * Imports the parts of one matrix-media-repo export into `target` (or, with
 * `dryRun`, only checks them and counts what would be imported). Every
 * problem goes to the report; throws {@link MmrArchiveError} when there is
 * no usable manifest (nothing imported), and rethrows store failures (what
 * was imported before stays; a rerun continues).
 */
export async function importMmrArchive(parts: readonly ArchivePartFile[], target: ArchiveImportTarget, options: MmrImportOptions): Promise<void> {
  const { report, dryRun, signal } = options;
  const manifest = await findManifest(parts, report, signal);
  // Read whole before anything is written: a database that cannot be read leaves nothing imported.
  let quarantine: { readonly read: MmrQuarantine; readonly applier: MmrQuarantineApplier } | undefined;
  if (options.quarantine !== undefined) {
    try {
      const applier = new MmrQuarantineApplier(options.quarantine.catalog, options.quarantine.actor, dryRun, report);
      quarantine = { read: await readMmrQuarantine(options.quarantine.database, manifest), applier };
    } catch (error) {
      if (error instanceof MmrDatabaseError) throw new MmrArchiveError(error.message);
      throw error;
    }
    // Blocked first: an archived copy of the same bytes is then imported quarantined, as matrix-media-repo quarantines by hash.
    for (const row of quarantine.read.leftOut) await quarantine.applier.leftOut(row);
  }
  const isQuarantined = (item: MmrManifestItem): boolean => quarantine?.read.inArchive.has(item.mxc) === true;
  const isPinned = (item: MmrManifestItem): boolean => quarantine?.read.pinned.has(item.mxc) === true;
  const rejectedNames = new Set<string>();
  for (const rejected of manifest.rejected) {
    report.problem(rejected.kind, rejected.detail, { mxc: rejected.mxc, entry: rejected.archivedName });
    if (rejected.archivedName !== null) rejectedNames.add(rejected.archivedName);
  }
  /** Items whose file was found (done or in progress), and those done (imported, present or refused). */
  const started = new Set<string>();
  const seen = new Set<string>();
  const pipeline = new ImportPipeline();

  for (const part of parts) {
    const onEntry = async (entry: ArchiveEntry): Promise<void> => {
      const where = { part: part.name, entry: entry.name };
      if (entry.unsafe !== null) {
        const what = entry.unsafe === 'not-a-file' ? `a ${entry.type} entry${entry.linkName === null ? '' : ` to ${entry.linkName}`}` : 'a name that leaves the archive';
        if (entry.type !== 'directory') report.problem('unsafe-entry', `${what}: skipped, never followed`, where);
        return;
      }
      if (entry.name === MMR_MANIFEST_ENTRY || entry.name === MMR_INDEX_ENTRY) return;
      const item = manifest.itemsByArchivedName.get(entry.name);
      if (item === undefined) {
        if (!rejectedNames.has(entry.name)) report.problem('unlisted-file', 'no manifest entry names this file', where);
        return;
      }
      if (started.has(item.mxc)) return; // a second copy of the same file (matrix-media-repo skips it too)
      started.add(item.mxc);
      const mxcWhere = { ...where, mxc: item.mxc };
      if (entry.size !== item.size) {
        seen.add(item.mxc);
        report.problem('size-mismatch', `the file has ${entry.size} bytes, the manifest says ${item.size}`, mxcWhere);
        return;
      }
      if (entry.size > options.maxFileBytes) {
        seen.add(item.mxc);
        report.problem('refused', `${entry.size} bytes is more than the largest file imported (${options.maxFileBytes}; --max-file-size)`, mxcWhere);
        return;
      }
      if (dryRun) {
        seen.add(item.mxc);
        if (await target.has(item.origin, item.mediaId)) {
          report.present++;
          if (isQuarantined(item)) await quarantine!.applier.present(item.origin, item.mediaId);
          if (isPinned(item)) await quarantine!.applier.pinPresent(item.origin, item.mediaId);
          return;
        }
        const mismatch = await checkBytes(entry, item);
        if (mismatch !== null) {
          report.problem('hash-mismatch', mismatch, mxcWhere);
          return;
        }
        report.imported++;
        report.importedBytes += item.size;
        if (isQuarantined(item)) quarantine!.applier.tally.imported++;
        if (isPinned(item)) quarantine!.applier.tally.pinnedImported++;
        return;
      }
      const quarantined = isQuarantined(item);
      const pinned = isPinned(item);
      await pipeline.start(entry.bytes, async (bytes) => {
        const outcome = await importArchivedMedia(target, recordOf(item, options.serverName, quarantined, pinned), bytes, report, mxcWhere, signal);
        if (quarantined && outcome === 'imported') quarantine!.applier.tally.imported++;
        if (pinned && outcome === 'imported') quarantine!.applier.tally.pinnedImported++;
        // Imported before without its quarantine or pin (an earlier run without --mmr-database): applied now.
        if (quarantined && outcome === 'present') await quarantine!.applier.present(item.origin, item.mediaId);
        if (pinned && outcome === 'present') await quarantine!.applier.pinPresent(item.origin, item.mediaId);
        // A part that breaks while this item streams is reported as damaged; the item stays missing.
        if (outcome !== 'stream-failed') seen.add(item.mxc);
        else started.delete(item.mxc);
        if (outcome === 'imported') report.importedBytes += item.size;
      });
    };
    try {
      await readArchivePart(part.path, part.name, onEntry, signal);
    } catch (error) {
      if (!(error instanceof ArchivePartError)) {
        await pipeline.drain().catch(() => undefined);
        throw error;
      }
      report.problem('damaged-part', `${error.reason}; the files after the damage are not imported`, { part: part.name });
    }
    await pipeline.drain();
    options.progress?.(`${part.name}: done (${report.imported} ${dryRun ? 'to import' : 'imported'}, ${report.present} present, ${report.problems} problems so far)`);
  }

  for (const item of manifest.itemsByArchivedName.values()) {
    if (seen.has(item.mxc)) continue;
    const detail = item.s3Url === null ? `${item.archivedName} is in none of the given parts` : `the export holds only an S3 URL (${item.s3Url}), which is not fetched: copy the object into a part`;
    report.problem('missing-file', detail, { entry: item.archivedName, mxc: item.mxc });
  }
  if (quarantine !== undefined) report.notes.push(quarantine.applier.tally.line(dryRun), quarantine.applier.tally.pinLine(dryRun));
}
