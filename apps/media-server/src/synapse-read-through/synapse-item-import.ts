/**
 * One Synapse media item (with its thumbnails) into hsmedia's stores, through
 * media-core's `MediaImports` sink: what read-through does on first access and
 * the backfill does for the rest. Also the one lazily opened, self-healing
 * connection to Synapse's database and media store both of them read through.
 */
import { ImportError, type MediaImports } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';
import { SynapseMediaSource, toImportedRecord, toImportedThumbnail, UnsafeMediaPathError, type SynapseMediaItem, type SynapseMediaSourceOptions } from '@hsmedia/synapse-import';

/** Why an item could not be imported (reported by the admin API, logged). */
export type ItemFailureCode = 'missing-file' | 'unsafe-path' | 'size-mismatch' | 'hash-mismatch' | 'refused' | 'invalid' | 'source-unavailable';

/** An item that could not be imported; nothing of it was kept. */
export class ItemImportFailure extends Error {
  override readonly name = 'ItemImportFailure';
  readonly code: ItemFailureCode;
  constructor(code: ItemFailureCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** What importing one item did. */
export interface ItemImportResult {
  readonly outcome: 'imported' | 'present';
  readonly thumbnailsImported: number;
  /** Thumbnails skipped (file missing, unknown method, refused): the item is served, they are made again on demand. */
  readonly thumbnailProblems: readonly string[];
}

/**
 * Synapse's database and media store, opened on first use and reopened after
 * a failure: a database that went away makes calls fail (a
 * `source-unavailable` failure) until it is back, and never takes the server down.
 */
export class SynapseConnection {
  readonly #options: SynapseMediaSourceOptions;
  readonly #logger: Logger;
  #opening: Promise<SynapseMediaSource> | undefined;
  #closed = false;

  constructor(options: SynapseMediaSourceOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
  }

  /** Runs `work` on the source; a failure of the database (not of the item) drops the connection for the next call. */
  async use<T>(work: (source: SynapseMediaSource) => Promise<T>): Promise<T> {
    if (this.#closed) throw new ItemImportFailure('source-unavailable', 'the Synapse read-through is closed');
    const opening = (this.#opening ??= SynapseMediaSource.open(this.#options));
    let source: SynapseMediaSource;
    try {
      source = await opening;
    } catch (err) {
      if (this.#opening === opening) this.#opening = undefined;
      this.#logger.warn({ err }, "cannot open Synapse's media database or media store");
      throw new ItemImportFailure('source-unavailable', "Synapse's media database or media store is unavailable", { cause: err });
    }
    try {
      return await work(source);
    } catch (err) {
      if (err instanceof ItemImportFailure || err instanceof ImportError || err instanceof UnsafeMediaPathError) throw err;
      if (isAbort(err)) throw err;
      // Anything else came from the database or the file system: start over with a fresh connection.
      if (this.#opening === opening) {
        this.#opening = undefined;
        void source.close().catch(() => {});
      }
      this.#logger.warn({ err }, "reading Synapse's media failed");
      throw new ItemImportFailure('source-unavailable', "Synapse's media database or media store is unavailable", { cause: err });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const opening = this.#opening;
    this.#opening = undefined;
    const source = await opening?.catch(() => undefined);
    await source?.close().catch(() => {});
  }
}

function isAbort(err: unknown): boolean {
  return (err as { name?: unknown }).name === 'AbortError';
}

/**
 * Imports `item` and its thumbnails. The media first (the sink admits
 * thumbnails of media it knows), then every thumbnail, each idempotent, so a
 * rerun after an interruption completes what is missing. A thumbnail that
 * cannot be imported is a problem reported in the result, not a failure.
 * Throws {@link ItemImportFailure} when the item itself cannot be imported.
 */
export async function importSynapseItem(
  source: SynapseMediaSource,
  imports: MediaImports,
  item: SynapseMediaItem,
  localServerName: string,
  now: number,
  signal?: AbortSignal,
): Promise<ItemImportResult> {
  const where = `${item.origin ?? localServerName}/${item.mediaId}`;
  let outcome: 'imported' | 'present' = 'present';
  if (!item.thumbnailOnly) {
    const imported = toImportedRecord(item, localServerName);
    // A row without a creation time (never seen, but the column is nullable) counts as created now.
    const record = item.createdTs === null ? { ...imported, createdAt: now } : imported;
    const file = item.pending ? null : await openOrFail(() => source.openMedia(item), where);
    if (!item.pending && file === null) throw new ItemImportFailure('missing-file', `${where}: the file is missing from Synapse's media store (${item.path ?? 'no path'})`);
    try {
      outcome = await imports.importMedia(record, file?.stream ?? null, signal);
    } catch (err) {
      throw failureOf(err, where);
    } finally {
      // The stream closes its file when read to the end; this covers an import that did not read it.
      await file?.close();
    }
  }
  let thumbnailsImported = 0;
  const thumbnailProblems: string[] = [];
  for (const thumbnail of item.thumbnails) {
    const spec = toImportedThumbnail(item, thumbnail);
    const name = `${thumbnail.width}x${thumbnail.height} ${thumbnail.method} ${thumbnail.type}`;
    if (spec === null) {
      thumbnailProblems.push(`${name}: unknown method`);
      continue;
    }
    let file;
    try {
      file = await source.openThumbnail(thumbnail);
    } catch (err) {
      if (!(err instanceof UnsafeMediaPathError)) throw err;
      thumbnailProblems.push(`${name}: ${err.message}`);
      continue;
    }
    if (file === null) {
      thumbnailProblems.push(`${name}: file missing`);
      continue;
    }
    try {
      if ((await imports.importThumbnail(item.origin ?? localServerName, item.mediaId, spec, file.stream, signal)) === 'imported') thumbnailsImported++;
    } catch (err) {
      if (!(err instanceof ImportError)) throw err;
      thumbnailProblems.push(`${name}: ${err.code} (${err.message})`);
    } finally {
      await file.close();
    }
  }
  if (item.thumbnailOnly && thumbnailsImported > 0) outcome = 'imported';
  return { outcome, thumbnailsImported, thumbnailProblems };
}

async function openOrFail<T>(open: () => Promise<T>, where: string): Promise<T> {
  try {
    return await open();
  } catch (err) {
    if (err instanceof UnsafeMediaPathError) throw new ItemImportFailure('unsafe-path', `${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

function failureOf(err: unknown, where: string): unknown {
  if (!(err instanceof ImportError)) return err;
  const code: ItemFailureCode = err.code === 'size-mismatch' || err.code === 'hash-mismatch' || err.code === 'refused' ? err.code : err.code === 'blocked' ? 'refused' : 'invalid';
  return new ItemImportFailure(code, `${where}: ${err.message}`, { cause: err });
}
