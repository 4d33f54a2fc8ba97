import { ImportError, MediaImports, MediaService, type ImportedMediaRecord, type ImportErrorCode } from '@hsmedia/media-core';
import type { MediaServerConfig } from '../config.js';
import { openStores } from '../stores.js';
import type { ArchiveImportReport, ArchiveProblemKind } from './archive-report.js';

/**
 * Where the archive importers put media: media-core's `MediaImports` (the
 * one import sink: idempotent, atomic, size and hash checked, through the
 * catalog's admission) over the configured stores, and the call that
 * counts one item's outcome in the report.
 */

/** What the archive importers use of `MediaImports`. */
export type ArchiveImportTarget = Pick<MediaImports, 'has' | 'importMedia' | 'importThumbnail'>;

/** The import sink over the configured stores, and how to close them. */
export interface OpenArchiveTarget {
  readonly target: ArchiveImportTarget;
  close(): Promise<void>;
}

/** Opens the configured stores (migrating the schema) and the import sink over them; `actor` is recorded as blocking quarantined hashes. */
export async function openArchiveTarget(config: MediaServerConfig, actor: string): Promise<OpenArchiveTarget> {
  const stores = await openStores(config);
  const media = new MediaService({ serverName: config.serverName, blobs: stores.blobs, metadata: stores.metadata, maxUploadBytes: config.maxUploadBytes });
  const target = new MediaImports({ catalog: media.catalog, actor });
  return {
    target,
    close: async () => {
      await media.close();
      await stores.close();
    },
  };
}

/** How one item's import ended. */
export type ArchivedMediaOutcome = 'imported' | 'present' | 'refused' | 'stream-failed';

const PROBLEM_OF_CODE: Readonly<Record<ImportErrorCode, ArchiveProblemKind>> = {
  'size-mismatch': 'size-mismatch',
  'hash-mismatch': 'hash-mismatch',
  'invalid-id': 'invalid-entry',
  'invalid-record': 'invalid-entry',
  refused: 'refused',
  blocked: 'refused',
};

/**
 * Imports one item through the sink and counts it in the report: an
 * {@link ImportError} (the sink kept nothing) becomes a problem of the
 * item; a failure of the archive stream itself gives `stream-failed` (the
 * part reader reports the damaged part); store failures are rethrown.
 */
export async function importArchivedMedia(
  target: ArchiveImportTarget,
  record: ImportedMediaRecord,
  bytes: AsyncIterable<Uint8Array> | null,
  report: ArchiveImportReport,
  where: { part: string; entry: string; mxc: string },
  signal?: AbortSignal,
): Promise<ArchivedMediaOutcome> {
  let streamFailed = false;
  const tracked: AsyncIterable<Uint8Array> | null =
    bytes === null
      ? null
      : {
          async *[Symbol.asyncIterator]() {
            try {
              for await (const chunk of bytes) yield chunk;
            } catch (error) {
              streamFailed = true;
              throw error;
            }
          },
        };
  try {
    const outcome = await target.importMedia(record, tracked, signal);
    if (outcome === 'imported') report.imported++;
    else report.present++;
    return outcome;
  } catch (error) {
    if (streamFailed) return 'stream-failed';
    if (!(error instanceof ImportError)) throw error;
    report.problem(PROBLEM_OF_CODE[error.code], error.message, where);
    return 'refused';
  }
}
