import { ImportError, MediaImports, type ImportedMediaRecord, type ImportErrorCode, type MediaCatalog } from '@hsmedia/media-core';
import type { MediaServerConfig } from '../config.js';
import { openStores } from '../stores.js';
import { importCatalog } from './import-catalog.js';
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
  /** The catalog under the sink (`import-mmr --mmr-database` applies quarantine to media already here through it). */
  readonly catalog: MediaCatalog;
  close(): Promise<void>;
}

/** Opens the configured stores (migrating the schema) and the import sink over them; `actor` is recorded as blocking quarantined hashes. */
export async function openArchiveTarget(config: MediaServerConfig, actor: string): Promise<OpenArchiveTarget> {
  const stores = await openStores(config);
  const catalog = importCatalog(config, stores);
  const target = new MediaImports({ catalog, actor });
  return {
    target,
    catalog,
    close: async () => {
      await catalog.close();
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

/**
 * Overlaps the end of one item's import (the blob's fsync, the row's
 * insert) with reading the next item's bytes: `start` returns as soon as the
 * sink has read every byte of the entry (or finished without reading them),
 * so the archive reader moves on while at most `limit` imports finish in the
 * background. The first failure is rethrown by the next `start` or `drain`.
 */
export class ImportPipeline {
  readonly #limit: number;
  readonly #inFlight: Set<Promise<void>> = new Set();
  #failure: { error: unknown } | undefined;

  constructor(limit = 8) {
    this.#limit = limit;
  }

  /**
   * Runs `importWith(bytes)`; resolves once `bytes` is consumed or the
   * import settled, with `done`, which settles with the import (never rejects).
   */
  async start(bytes: AsyncIterable<Uint8Array>, importWith: (bytes: AsyncIterable<Uint8Array>) => Promise<unknown>): Promise<{ done: Promise<void> }> {
    this.#throwFailure();
    let consumed!: () => void;
    const bytesConsumed = new Promise<void>((resolve) => (consumed = resolve));
    const watched: AsyncIterable<Uint8Array> = {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const chunk of bytes) yield chunk;
        } finally {
          consumed();
        }
      },
    };
    const running: Promise<void> = importWith(watched).then(
      () => undefined,
      (error: unknown) => {
        this.#failure ??= { error };
      },
    );
    const tracked = running.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
    await Promise.race([bytesConsumed, running]);
    while (this.#inFlight.size >= this.#limit) await Promise.race(this.#inFlight);
    this.#throwFailure();
    return { done: running };
  }

  /** Waits for every import started; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    this.#throwFailure();
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}
