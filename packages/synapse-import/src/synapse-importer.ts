import { stat } from 'node:fs/promises';
import { ImportError, SourceFileError, type ImportFile, type MediaImports } from '@hsmedia/media-core';
import { noopLogger, type Logger } from '@hsmedia/runtime';
import type { SynapseMediaItem, SynapseMediaSource, SynapseThumbnail } from './synapse-media-source.js';
import { UnsafeMediaPathError, type LocatedMediaFile, type MediaStoreFile } from './synapse-media-store.js';
import { cursorAfter } from './synapse-media-source.js';
import { serverNameOf, toImportedRecord, toImportedThumbnail } from './synapse-records.js';

/**
 * What became of one media item or thumbnail. `imported`: stored now;
 * `present`: already here (a rerun); `pending`: created but never uploaded,
 * imported without bytes; `would-import`: a dry run found it importable.
 * The others are problems, reported and skipped: nothing of the item is kept.
 */
export type SynapseImportOutcome =
  | 'imported'
  | 'present'
  | 'pending'
  | 'would-import'
  | 'missing-file'
  | 'size-mismatch'
  | 'hash-mismatch'
  | 'unsafe-path'
  | 'invalid'
  | 'refused'
  | 'read-error';

/** One line of the report: an item (no `thumbnail`) or one of its thumbnails. */
export interface SynapseImportEntry {
  readonly outcome: SynapseImportOutcome;
  readonly serverName: string;
  readonly mediaId: string;
  /** `<w>x<h> <method> <type>` of a thumbnail. */
  readonly thumbnail?: string;
  /** Bytes stored (or that a dry run would store). */
  readonly bytes: number;
  readonly path?: string | null;
  readonly detail?: string;
}

/** Counts per outcome, and bytes stored (or that a dry run would store). */
export interface SynapseImportTally {
  readonly media: Record<SynapseImportOutcome, number>;
  readonly thumbnails: Record<SynapseImportOutcome, number>;
  readonly bytes: number;
}

/** Options of {@link SynapseImporter}. */
export interface SynapseImporterOptions {
  readonly source: SynapseMediaSource;
  /** The sink of the server imported into. */
  readonly imports: MediaImports;
  /** This server's name: Synapse's local media lands under it (it must be Synapse's `server_name`). */
  readonly localServerName: string;
  /** Count what would be imported, write nothing. */
  readonly dryRun?: boolean;
  /** Items imported at once, 1 to 512 (default 128). */
  readonly concurrency?: number;
  readonly logger?: Logger;
}

/** Options of one {@link SynapseImporter.run}. */
export interface SynapseImportRunOptions {
  /** Where to continue (a cursor saved by an earlier run); none: from the start. */
  readonly cursor?: string | null;
  /** Called with every entry of the report, in completion order. */
  readonly onEntry?: (entry: SynapseImportEntry) => void;
  /**
   * Called with the cursor below which every item is done (save it to
   * resume a killed run). Called often: after each item that moves it.
   */
  readonly onCursor?: (cursor: string) => void;
  /** Stops taking new items; running ones finish. */
  readonly signal?: AbortSignal;
}

/**
 * Items in flight by default: an item waits for its group commit (a round
 * of fsyncs, then one insert) while later ones are copied, and a round
 * takes tens of milliseconds, so enough must be in flight to keep copying
 * through it; larger rounds also cost fewer fsyncs and transactions per
 * item (docs/migrate-from-synapse.md "Speed").
 */
const DEFAULT_CONCURRENCY = 128;
const MAX_CONCURRENCY = 512;

/** Items per page read from Synapse and looked up here at once (`MediaImports.prefetch`). */
const PAGE_SIZE = 200;

const OUTCOMES: readonly SynapseImportOutcome[] = ['imported', 'present', 'pending', 'would-import', 'missing-file', 'size-mismatch', 'hash-mismatch', 'unsafe-path', 'invalid', 'refused', 'read-error'];

/** A failure reading a file of the media store (a bad disk sector, a file removed mid-read): that item only. */
class SourceReadError extends Error {
  override readonly name = 'SourceReadError';
}

async function* tagged(stream: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of stream) yield chunk;
  } catch (err) {
    // A located file's own report (missing, out of the store) is kept as it is.
    if (err instanceof SourceFileError) throw err;
    throw new SourceReadError((err as Error).message, { cause: err });
  }
}

/** A file of the store as the sink takes it: linked or copied by path where the sink may, else streamed. */
function importFile(file: MediaStoreFile): ImportFile {
  return { path: file.path, open: () => tagged(file.stream) };
}

/** The report's words for a file whose size is not the row's (as an opened file's check words it). */
async function sizeMismatchDetail(path: string, expectedSize: number, err: ImportError): Promise<string> {
  const size = await stat(path).then(
    (info) => info.size,
    () => null,
  );
  return size === null ? err.message : `file has ${size} bytes, the database says ${expectedSize}`;
}

function emptyCounts(): Record<SynapseImportOutcome, number> {
  return Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<SynapseImportOutcome, number>;
}

/** An `ImportError` code as a report outcome. */
function outcomeOf(err: ImportError): SynapseImportOutcome {
  switch (err.code) {
    case 'size-mismatch':
    case 'hash-mismatch':
      return err.code;
    case 'refused':
    case 'blocked':
      return 'refused';
    case 'invalid-id':
    case 'invalid-record':
      return 'invalid';
  }
}

/**
 * Imports Synapse's media into this server: every media row and thumbnail
 * of a {@link SynapseMediaSource}, through media-core's `MediaImports`
 * (same IDs, bytes hashed and size-checked on the way, quarantine kept).
 *
 * A problem with one item (missing file, wrong size or hash, a path that
 * leaves the store, a refused item, a read error) is reported and skipped;
 * anything else (the database or blob store going away) stops the run with
 * the error after the running items finish, and the cursor given to
 * `onCursor` marks where a rerun continues. A rerun imports nothing twice
 * either way: items already here answer `present`.
 */
export class SynapseImporter {
  readonly #source: SynapseMediaSource;
  readonly #imports: MediaImports;
  readonly #localServerName: string;
  readonly #dryRun: boolean;
  readonly #concurrency: number;
  readonly #logger: Logger;

  constructor(options: SynapseImporterOptions) {
    this.#source = options.source;
    this.#imports = options.imports;
    this.#localServerName = options.localServerName;
    this.#dryRun = options.dryRun === true;
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) throw new RangeError(`SynapseImporter: concurrency must be 1 to ${MAX_CONCURRENCY}`);
    this.#concurrency = concurrency;
    this.#logger = options.logger ?? noopLogger;
  }

  /** Runs the import (or the dry run) and gives the counts. Rejects when the run had to stop (see the class). */
  async run(options: SynapseImportRunOptions = {}): Promise<SynapseImportTally> {
    const media = emptyCounts();
    const thumbnails = emptyCounts();
    let bytes = 0;
    const record = (entry: SynapseImportEntry): void => {
      (entry.thumbnail === undefined ? media : thumbnails)[entry.outcome]++;
      if (entry.outcome === 'imported' || entry.outcome === 'would-import') bytes += entry.bytes;
      options.onEntry?.(entry);
    };
    // Items run `concurrency` at a time; the cursor moves only past a done prefix.
    const window: { cursor: string; done: boolean }[] = [];
    const running = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    const items = this.#items(options.cursor ?? null);
    try {
      for await (const { item, cursor } of items) {
        if (failure !== undefined || options.signal?.aborted === true) break;
        const slot = { cursor, done: false };
        window.push(slot);
        const task = this.#importItem(item, record).then(
          () => {
            slot.done = true;
            let moved: string | undefined;
            while (window[0]?.done === true) moved = window.shift()!.cursor;
            if (moved !== undefined) options.onCursor?.(moved);
          },
          (error: unknown) => {
            failure ??= { error };
          },
        );
        running.add(task);
        void task.finally(() => running.delete(task));
        if (running.size >= this.#concurrency) await Promise.race(running);
      }
    } catch (error) {
      failure ??= { error };
    }
    await Promise.all(running);
    if (failure !== undefined) throw failure.error;
    options.signal?.throwIfAborted();
    return { media, thumbnails, bytes };
  }

  /**
   * Every item from `cursor` on, page by page, each with the cursor that
   * resumes right after it; each page is announced to the sink first, so the
   * records and blocked hashes of its items are looked up in one query each.
   */
  async *#items(cursor: string | null): AsyncGenerator<{ readonly item: SynapseMediaItem; readonly cursor: string }> {
    let next: string | null = cursor;
    do {
      const page = await this.#source.page(next, PAGE_SIZE);
      await this.#imports.prefetch(page.items.filter((item) => !item.thumbnailOnly).map((item) => toImportedRecord(item, this.#localServerName)));
      for (const item of page.items) yield { item, cursor: cursorAfter(item) };
      next = page.next;
    } while (next !== null);
  }

  async #importItem(item: SynapseMediaItem, record: (entry: SynapseImportEntry) => void): Promise<void> {
    const serverName = serverNameOf(item, this.#localServerName);
    const entry = (outcome: SynapseImportOutcome, bytes: number, detail?: string): SynapseImportEntry => ({
      outcome,
      serverName,
      mediaId: item.mediaId,
      bytes,
      path: item.path,
      ...(detail === undefined ? {} : { detail }),
    });
    if (!item.thumbnailOnly) {
      const outcome = await this.#importMedia(item, serverName, entry);
      record(outcome);
      // Thumbnails only of media that is here (or would be): a skipped item keeps nothing.
      if (!['imported', 'present', 'would-import'].includes(outcome.outcome)) return;
    }
    for (const thumbnail of item.thumbnails) record(await this.#importThumbnail(item, serverName, thumbnail));
  }

  async #importMedia(
    item: SynapseMediaItem,
    serverName: string,
    entry: (outcome: SynapseImportOutcome, bytes: number, detail?: string) => SynapseImportEntry,
  ): Promise<SynapseImportEntry> {
    const imported = toImportedRecord(item, this.#localServerName);
    // The sink checks presence itself before reading a byte; a dry run asks, as it writes nothing.
    if (this.#dryRun && (await this.#imports.has(serverName, item.mediaId))) return entry('present', 0);
    if (item.pending) return entry(this.#dryRun ? 'pending' : (await this.#imports.importMedia(imported, null)) === 'imported' ? 'pending' : 'present', 0);
    if (this.#byPath(item.mediaLength)) {
      return entry(...(await this.#storeByPath(() => this.#source.mediaFiles(item), item.mediaLength!, (file) => this.#imports.importMedia(imported, file))));
    }
    const opened = await this.#open(() => this.#source.openMedia(item), item.mediaLength);
    if ('outcome' in opened) return entry(opened.outcome, 0, opened.detail);
    const { file } = opened;
    if (this.#dryRun) {
      await file.close();
      return entry('would-import', file.size);
    }
    return entry(...(await this.#store(() => this.#imports.importMedia(imported, importFile(file)), file)));
  }

  async #importThumbnail(item: SynapseMediaItem, serverName: string, thumbnail: SynapseThumbnail): Promise<SynapseImportEntry> {
    const entry = (outcome: SynapseImportOutcome, bytes: number, detail?: string): SynapseImportEntry => ({
      outcome,
      serverName,
      mediaId: item.mediaId,
      thumbnail: `${thumbnail.width}x${thumbnail.height} ${thumbnail.method} ${thumbnail.type}`,
      bytes,
      path: thumbnail.path,
      ...(detail === undefined ? {} : { detail }),
    });
    const spec = toImportedThumbnail(item, thumbnail);
    if (spec === null) return entry('invalid', 0, `unknown thumbnail method ${JSON.stringify(thumbnail.method)}`);
    if (this.#byPath(thumbnail.length)) {
      return entry(
        ...(await this.#storeByPath(() => this.#source.thumbnailFiles(thumbnail), thumbnail.length!, (file) => this.#imports.importThumbnail(serverName, item.mediaId, spec, file))),
      );
    }
    const opened = await this.#open(() => this.#source.openThumbnail(thumbnail), thumbnail.length);
    if ('outcome' in opened) return entry(opened.outcome, 0, opened.detail);
    const { file } = opened;
    if (this.#dryRun) {
      await file.close();
      return entry('would-import', file.size);
    }
    return entry(...(await this.#store(() => this.#imports.importThumbnail(serverName, item.mediaId, spec, importFile(file)), file)));
  }

  /**
   * Whether a file is handed to the sink unopened (it copies or links it by
   * path, checking the path and the size itself): one hand-off to the blob
   * store's workers per file instead of an open, a stat and a stream here.
   * Not for a dry run (nothing is written) or a row without a size.
   */
  #byPath(expectedSize: number | null): boolean {
    return !this.#dryRun && expectedSize !== null && this.#imports.takesFilePaths;
  }

  /**
   * Imports a file by path, trying each candidate (a thumbnail's legacy name
   * after its name) while the previous one is missing: the outcome, the
   * bytes and any detail, as {@link SynapseImporter.#store} reports them.
   */
  async #storeByPath(
    locate: () => LocatedMediaFile[],
    expectedSize: number,
    importing: (file: ImportFile) => Promise<'imported' | 'present'>,
  ): Promise<[SynapseImportOutcome, number, string?]> {
    let candidates: LocatedMediaFile[];
    try {
      candidates = locate();
    } catch (err) {
      if (err instanceof UnsafeMediaPathError) return ['unsafe-path', 0, err.message];
      throw err;
    }
    for (const file of candidates) {
      try {
        const done = await importing({ path: file.path, within: file.within, open: () => tagged(file.open()) });
        return [done, done === 'imported' ? expectedSize : 0];
      } catch (err) {
        if (err instanceof ImportError && err.code === 'size-mismatch') return ['size-mismatch', 0, await sizeMismatchDetail(file.path, expectedSize, err)];
        if (err instanceof ImportError) return [outcomeOf(err), 0, err.message];
        if (!(err instanceof SourceFileError)) throw err;
        if (err.reason === 'missing') continue;
        if (err.reason === 'outside') return ['unsafe-path', 0, `${file.path.slice(file.within.length + 1)} resolves outside the media store`];
        this.#logger.warn({ err }, 'could not read a file of the media store');
        return ['read-error', 0, err.message];
      }
    }
    return ['missing-file', 0, 'no file in the media store'];
  }

  /** Opens a file and checks its size against the row: the file, or the problem to report. */
  async #open(
    open: () => Promise<MediaStoreFile | null>,
    expectedSize: number | null,
  ): Promise<{ file: MediaStoreFile } | { outcome: SynapseImportOutcome; detail: string }> {
    let file: MediaStoreFile | null;
    try {
      file = await open();
    } catch (err) {
      if (err instanceof UnsafeMediaPathError) return { outcome: 'unsafe-path', detail: err.message };
      throw err;
    }
    if (file === null) return { outcome: 'missing-file', detail: 'no file in the media store' };
    if (expectedSize !== null && file.size !== expectedSize) {
      await file.close();
      return { outcome: 'size-mismatch', detail: `file has ${file.size} bytes, the database says ${expectedSize}` };
    }
    return { file };
  }

  /** Streams a file into the sink: the outcome, the bytes and any detail. */
  async #store(importing: () => Promise<'imported' | 'present'>, file: MediaStoreFile): Promise<[SynapseImportOutcome, number, string?]> {
    try {
      const done = await importing();
      return [done, done === 'imported' ? file.size : 0];
    } catch (err) {
      if (err instanceof ImportError) return [outcomeOf(err), 0, err.message];
      // A store that copied it by path reports the source's faults as SourceFileError.
      if (err instanceof SourceReadError || err instanceof SourceFileError) {
        this.#logger.warn({ err }, 'could not read a file of the media store');
        return ['read-error', 0, err.message];
      }
      throw err;
    } finally {
      await file.close();
    }
  }
}
