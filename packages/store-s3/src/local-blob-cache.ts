import { createWriteStream } from 'node:fs';
import { open, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  fileReadStream,
  type BlobPutOptions,
  type BlobReadOptions,
  type BlobStore,
  type ByteSource,
  type DirectUrlOptions,
  type StoredBlob,
} from '@hsmedia/media-core';
import { isValidBlobId } from './internal/blob-key.js';
import { CacheDirectory } from './internal/cache-directory.js';
import { FillFailureTally, type FillFailure } from './internal/fill-failures.js';

/** Options of {@link LocalBlobCache}. */
export interface LocalBlobCacheOptions {
  /** The store in front of which this cache sits (an {@link S3BlobStore}, normally). */
  readonly origin: BlobStore;
  /**
   * Directory of the cache; created when missing. Several processes of one
   * host (the server's workers) may share it; not shared over the network.
   */
  readonly path: string;
  /**
   * Most bytes kept in the directory, by all the processes sharing it; the
   * least recently read blobs are removed first. A blob larger than this is never cached.
   */
  readonly maxBytes: number;
  /**
   * Told about a fill that failed (the read itself was served from the
   * origin): the first failure of each cause, then at most one per cause per
   * `fillErrorReportEveryMs`. Every failure is counted in {@link LocalBlobCache.fillFailures}.
   */
  readonly onFillError?: (blobId: string, error: unknown, failure: FillFailure) => void;
  /** See `onFillError`. Default one hour. */
  readonly fillErrorReportEveryMs?: number;
}

interface Entry {
  readonly size: number;
}

const HOUR_MS = 60 * 60 * 1000;

/** Not there: no file, or something that is not a directory where the shard should be. */
function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function sizeMismatch(message: string): Error {
  return Object.assign(new Error(message), { code: 'size_mismatch' });
}

/**
 * A size-bounded local disk cache in front of a remote {@link BlobStore}
 * (S3), so that hot media is served at local-disk speed, through the file
 * byte path of the server (the stream offers its file, see media-core's
 * `takeFileBody`).
 *
 * - Filled on read: a read that misses is served from the origin while the
 *   whole blob is copied here in the background (one copy per blob at a
 *   time), into a temporary file that is fsynced and renamed into place, so
 *   a cached file is always complete.
 * - LRU: every hit moves the blob to the back; above `maxBytes` the front
 *   goes. Removing a file never breaks a read in progress (an open file
 *   stays readable after unlink, POSIX).
 * - `delete` and {@link LocalBlobCache.evict} drop the local copy first (a
 *   fill still running for that blob is discarded).
 *
 * Shared by several processes (the server's workers on one directory): the
 * directory, not a process's memory, is what `maxBytes` bounds. After each
 * fill the process re-reads the directory's file names (a `readdir` per
 * shard; sizes are known for its own files and read once for the others')
 * and evicts until the directory's total fits. So the bound holds for the
 * directory once the fills in progress have settled, without a lock or a
 * shared ledger: two processes evicting at once can only remove more, never
 * keep too much. A file another process copied is a hit here too (found by
 * name on a miss). The LRU order is each process's own reads; files another
 * process added count as the most recent.
 *
 * File names come from the blob ID only, after the same allow-list as the
 * S3 keys (no separator, dot or NUL).
 */
export class LocalBlobCache implements BlobStore {
  readonly #origin: BlobStore;
  readonly #dir: CacheDirectory;
  readonly #maxBytes: number;
  readonly #onFillError: (blobId: string, error: unknown, failure: FillFailure) => void;
  readonly #failures: FillFailureTally;
  /** Insertion order is recency: the first entry is the least recently read. */
  readonly #entries = new Map<string, Entry>();
  readonly #filling = new Map<string, Promise<void>>();
  /** Blobs evicted while a fill of theirs was running: the fill must not install them. */
  readonly #evictedWhileFilling = new Set<string>();
  #bytes = 0;
  #ready: Promise<void> | undefined;
  /** The directory pass running now, and whether another must follow it (a fill installed meanwhile). */
  #trimming: Promise<void> | undefined;
  #trimAgain = false;

  constructor(options: LocalBlobCacheOptions) {
    if (typeof options?.path !== 'string' || options.path === '') throw new TypeError('LocalBlobCache: path is required');
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) {
      throw new TypeError('LocalBlobCache: maxBytes must be a positive integer');
    }
    this.#origin = options.origin;
    const { origin } = options;
    if (origin.release !== undefined) this.release = (blobId) => origin.release!(blobId);
    this.#dir = new CacheDirectory(resolve(options.path));
    this.#maxBytes = options.maxBytes;
    this.#onFillError = options.onFillError ?? (() => undefined);
    this.#failures = new FillFailureTally(options.fillErrorReportEveryMs ?? HOUR_MS);
  }

  /** As the origin: the cache keys its copies by the origin's blob IDs, whatever they name. */
  get contentAddressed(): boolean {
    return this.#origin.contentAddressed === true;
  }

  /** Bytes held now, as this process sees the directory (what the LRU bounds). */
  get cachedBytes(): number {
    return this.#bytes;
  }

  /** Failed fills so far in this process, by cause (see {@link FillFailure.cause}): for a metric. */
  get fillFailures(): ReadonlyMap<string, number> {
    return this.#failures.counts;
  }

  /** True when `blobId` is held here now (as far as this process knows). */
  has(blobId: string): boolean {
    return this.#entries.has(blobId);
  }

  /** Waits for the background fills and directory passes in progress (for tests and an orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#filling.size > 0 || this.#trimming !== undefined) {
      await Promise.all([...this.#filling.values(), this.#trimming]);
    }
  }

  put(source: ByteSource, options?: BlobPutOptions): Promise<StoredBlob> {
    return this.#origin.put(source, options);
  }

  async open(blobId: string, options: BlobReadOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const { start = 0, end, signal } = options;
    if (!isValidBlobId(blobId)) return this.#origin.open(blobId, options);
    await this.#init();
    const known = this.#entries.get(blobId);
    // Not known here, it may still be there: copied by another process sharing the directory.
    if ((known !== undefined || !this.#filling.has(blobId)) && Number.isSafeInteger(start) && start >= 0 && (end === undefined || end >= start)) {
      let handle: FileHandle | undefined;
      try {
        handle = await open(this.#dir.pathOf(blobId), 'r');
      } catch (error) {
        // Removed by another process sharing the directory (or never there): a miss.
        if (!isMissing(error)) throw error;
        this.#forget(blobId);
      }
      if (handle !== undefined) {
        if (signal?.aborted === true) {
          await handle.close();
          signal.throwIfAborted();
        }
        if (known !== undefined) {
          this.#entries.delete(blobId);
          this.#entries.set(blobId, known);
        } else {
          this.#install(blobId, (await handle.stat()).size);
        }
        return fileReadStream(handle, start, end ?? Number.POSITIVE_INFINITY, signal);
      }
    }
    const stream = await this.#origin.open(blobId, options);
    if (stream !== null) this.#startFill(blobId);
    return stream;
  }

  async stat(blobId: string): Promise<{ readonly size: number } | null> {
    const entry = isValidBlobId(blobId) ? this.#entries.get(blobId) : undefined;
    return entry === undefined ? this.#origin.stat(blobId) : { size: entry.size };
  }

  /**
   * As the origin's `release` (a content-addressed origin), present only when
   * the origin has one: a put that will not be published gives up its claim.
   * A local copy can stay: under content addressing an ID always names the same bytes.
   */
  readonly release?: (blobId: string) => Promise<void>;

  /** Removes the local copy, then the blob from the origin. */
  async delete(blobId: string): Promise<boolean> {
    await this.evict(blobId);
    return this.#origin.delete(blobId);
  }

  /**
   * Drops the local copy of `blobId` (quarantined media, say), and discards a
   * fill of it in progress. Reads already open go on; the next read misses.
   */
  async evict(blobId: string): Promise<void> {
    if (!isValidBlobId(blobId)) return;
    await this.#init();
    if (this.#filling.has(blobId)) this.#evictedWhileFilling.add(blobId);
    this.#forget(blobId);
    await unlink(this.#dir.pathOf(blobId)).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }

  async cleanupStaging(): Promise<number> {
    return this.#origin.cleanupStaging();
  }

  async directUrl(blobId: string, options: DirectUrlOptions): Promise<string | null> {
    return this.#origin.directUrl === undefined ? null : this.#origin.directUrl(blobId, options);
  }

  #forget(blobId: string): void {
    const entry = this.#entries.get(blobId);
    if (entry === undefined) return;
    this.#entries.delete(blobId);
    this.#bytes -= entry.size;
  }

  /** Creates the directories, removes copies left by crashed processes and indexes the cached files, oldest first. */
  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await this.#dir.prepare();
      const found: { blobId: string; size: number; mtimeMs: number }[] = [];
      for (const blobId of await this.#dir.listIds()) {
        const info = await this.#dir.statOf(blobId);
        if (info !== undefined) found.push({ blobId, ...info });
      }
      found.sort((x, y) => x.mtimeMs - y.mtimeMs);
      for (const { blobId, size } of found) this.#install(blobId, size);
      await this.#evictOverflow();
    })();
    return this.#ready;
  }

  #install(blobId: string, size: number): void {
    this.#forget(blobId);
    this.#entries.set(blobId, { size });
    this.#bytes += size;
  }

  async #evictOverflow(): Promise<void> {
    while (this.#bytes > this.#maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) return;
      this.#forget(oldest.value);
      await unlink(this.#dir.pathOf(oldest.value)).catch(() => undefined);
    }
  }

  /**
   * Brings the index in line with the directory (files other processes
   * removed are forgotten, those they added are learnt) and evicts down to
   * `maxBytes`. One pass at a time; a request during a pass runs one more
   * after it, so the last fill's pass always sees that fill's file.
   */
  #trim(): Promise<void> {
    if (this.#trimming !== undefined) {
      this.#trimAgain = true;
      return this.#trimming;
    }
    const pass = async (): Promise<void> => {
      do {
        this.#trimAgain = false;
        const onDisk = new Set(await this.#dir.listIds());
        for (const blobId of [...this.#entries.keys()]) {
          if (!onDisk.has(blobId)) this.#forget(blobId);
        }
        for (const blobId of onDisk) {
          if (this.#entries.has(blobId)) continue;
          const info = await this.#dir.statOf(blobId);
          if (info !== undefined && !this.#entries.has(blobId)) this.#install(blobId, info.size);
        }
        await this.#evictOverflow();
      } while (this.#trimAgain);
    };
    this.#trimming = pass().finally(() => {
      this.#trimming = undefined;
    });
    return this.#trimming;
  }

  #startFill(blobId: string): void {
    if (this.#filling.has(blobId) || this.#entries.has(blobId)) return;
    const fill = this.#fill(blobId)
      .catch((error: unknown) => {
        const failure = this.#failures.record(blobId, error, Date.now());
        if (failure !== undefined) this.#onFillError(blobId, error, failure);
      })
      .finally(() => {
        this.#filling.delete(blobId);
        this.#evictedWhileFilling.delete(blobId);
      });
    this.#filling.set(blobId, fill);
  }

  async #fill(blobId: string): Promise<void> {
    const size = (await this.#origin.stat(blobId))?.size;
    if (size === undefined || size > this.#maxBytes) return;
    const stream = await this.#origin.open(blobId);
    if (stream === null) return;
    const tmp = this.#dir.tmpFile();
    let written = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        written += chunk.byteLength;
        // The origin changed under us (or lies): never cache more than it said.
        done(written > size ? sizeMismatch('LocalBlobCache: the blob grew while it was copied') : null, chunk);
      },
    });
    try {
      // `flush`: the data is on disk before the rename makes the file visible.
      await pipeline(Readable.fromWeb(stream as never), counter, createWriteStream(tmp, { flags: 'wx', flush: true }));
      if (written !== size) throw sizeMismatch(`LocalBlobCache: copied ${written} of ${size} bytes`);
      if (this.#evictedWhileFilling.has(blobId)) return;
      await this.#dir.makeShard(blobId);
      await rename(tmp, this.#dir.pathOf(blobId));
    } finally {
      await rm(tmp, { force: true });
    }
    if (this.#evictedWhileFilling.has(blobId)) {
      await unlink(this.#dir.pathOf(blobId)).catch(() => undefined);
      return;
    }
    this.#install(blobId, size);
    await this.#trim();
  }
}
