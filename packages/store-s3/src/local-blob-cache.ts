import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  fileReadStream,
  generateId,
  type BlobPutOptions,
  type BlobReadOptions,
  type BlobStore,
  type ByteSource,
  type DirectUrlOptions,
  type StoredBlob,
} from '@hsmedia/media-core';
import { isValidBlobId } from './internal/blob-key.js';

/** Options of {@link LocalBlobCache}. */
export interface LocalBlobCacheOptions {
  /** The store in front of which this cache sits (an {@link S3BlobStore}, normally). */
  readonly origin: BlobStore;
  /** Directory of the cache; created when missing. One per instance (not shared over the network). */
  readonly path: string;
  /** Most bytes kept; the least recently read blobs are removed first. A blob larger than this is never cached. */
  readonly maxBytes: number;
  /** Told about a fill that failed (the read itself was served from the origin). Default: ignored. */
  readonly onFillError?: (blobId: string, error: unknown) => void;
}

interface Entry {
  readonly size: number;
}

const BLOBS_DIR = 'blobs';
const TMP_DIR = 'tmp';

function isMissing(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
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
 * File names come from the blob ID only, after the same allow-list as the
 * S3 keys (no separator, dot or NUL). The index lives in memory and is
 * rebuilt from the directory at start; several processes sharing one
 * directory each keep their own view (a file another one removed is a miss).
 */
export class LocalBlobCache implements BlobStore {
  readonly #origin: BlobStore;
  readonly #root: string;
  readonly #maxBytes: number;
  readonly #onFillError: (blobId: string, error: unknown) => void;
  /** Insertion order is recency: the first entry is the least recently read. */
  readonly #entries = new Map<string, Entry>();
  readonly #filling = new Map<string, Promise<void>>();
  /** Blobs evicted while a fill of theirs was running: the fill must not install them. */
  readonly #evictedWhileFilling = new Set<string>();
  #bytes = 0;
  #ready: Promise<void> | undefined;

  constructor(options: LocalBlobCacheOptions) {
    if (typeof options?.path !== 'string' || options.path === '') throw new TypeError('LocalBlobCache: path is required');
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) {
      throw new TypeError('LocalBlobCache: maxBytes must be a positive integer');
    }
    this.#origin = options.origin;
    const { origin } = options;
    if (origin.release !== undefined) this.release = (blobId) => origin.release!(blobId);
    this.#root = resolve(options.path);
    this.#maxBytes = options.maxBytes;
    this.#onFillError = options.onFillError ?? (() => undefined);
  }

  /** As the origin: the cache keys its copies by the origin's blob IDs, whatever they name. */
  get contentAddressed(): boolean {
    return this.#origin.contentAddressed === true;
  }

  /** Bytes held now (what the LRU bounds). */
  get cachedBytes(): number {
    return this.#bytes;
  }

  /** True when `blobId` is held here now. */
  has(blobId: string): boolean {
    return this.#entries.has(blobId);
  }

  /** Waits for the background fills in progress (for tests and an orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#filling.size > 0) await Promise.all(this.#filling.values());
  }

  put(source: ByteSource, options?: BlobPutOptions): Promise<StoredBlob> {
    return this.#origin.put(source, options);
  }

  async open(blobId: string, options: BlobReadOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const { start = 0, end, signal } = options;
    if (!isValidBlobId(blobId)) return this.#origin.open(blobId, options);
    await this.#init();
    const entry = this.#entries.get(blobId);
    if (entry !== undefined && Number.isSafeInteger(start) && start >= 0 && (end === undefined || end >= start)) {
      let handle: FileHandle | undefined;
      try {
        handle = await open(this.#pathOf(blobId), 'r');
      } catch (error) {
        // Removed by another process sharing the directory: a miss.
        if (!isMissing(error)) throw error;
        this.#forget(blobId);
      }
      if (handle !== undefined) {
        if (signal?.aborted === true) {
          await handle.close();
          signal.throwIfAborted();
        }
        this.#entries.delete(blobId);
        this.#entries.set(blobId, entry);
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
    await unlink(this.#pathOf(blobId)).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }

  async cleanupStaging(): Promise<number> {
    return this.#origin.cleanupStaging();
  }

  async directUrl(blobId: string, options: DirectUrlOptions): Promise<string | null> {
    return this.#origin.directUrl === undefined ? null : this.#origin.directUrl(blobId, options);
  }

  /** `<root>/blobs/<id[0..1]>/<id>`; the ID is allow-listed by every caller. */
  #pathOf(blobId: string): string {
    return join(this.#root, BLOBS_DIR, blobId.slice(0, 2), blobId);
  }

  #forget(blobId: string): void {
    const entry = this.#entries.get(blobId);
    if (entry === undefined) return;
    this.#entries.delete(blobId);
    this.#bytes -= entry.size;
  }

  /** Creates the directories, removes leftover temporary files and indexes the cached files, oldest first. */
  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await rm(join(this.#root, TMP_DIR), { recursive: true, force: true });
      await mkdir(join(this.#root, TMP_DIR), { recursive: true });
      await mkdir(join(this.#root, BLOBS_DIR), { recursive: true });
      const found: { blobId: string; size: number; mtimeMs: number }[] = [];
      for (const shard of await readdir(join(this.#root, BLOBS_DIR))) {
        for (const name of await readdir(join(this.#root, BLOBS_DIR, shard)).catch(() => [] as string[])) {
          if (!isValidBlobId(name) || name.slice(0, 2) !== shard) continue;
          const info = await stat(this.#pathOf(name)).catch(() => undefined);
          if (info?.isFile() === true) found.push({ blobId: name, size: info.size, mtimeMs: info.mtimeMs });
        }
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
      await unlink(this.#pathOf(oldest.value)).catch(() => undefined);
    }
  }

  #startFill(blobId: string): void {
    if (this.#filling.has(blobId) || this.#entries.has(blobId)) return;
    const fill = this.#fill(blobId)
      .catch((error: unknown) => this.#onFillError(blobId, error))
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
    const tmp = join(this.#root, TMP_DIR, `${generateId()}.part`);
    let written = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        written += chunk.byteLength;
        // The origin changed under us (or lies): never cache more than it said.
        done(written > size ? new Error('LocalBlobCache: the blob grew while it was copied') : null, chunk);
      },
    });
    try {
      // `flush`: the data is on disk before the rename makes the file visible.
      await pipeline(Readable.fromWeb(stream as never), counter, createWriteStream(tmp, { flags: 'wx', flush: true }));
      if (written !== size) throw new Error(`LocalBlobCache: copied ${written} of ${size} bytes`);
      if (this.#evictedWhileFilling.has(blobId)) return;
      await mkdir(join(this.#root, BLOBS_DIR, blobId.slice(0, 2)), { recursive: true });
      await rename(tmp, this.#pathOf(blobId));
    } finally {
      await rm(tmp, { force: true });
    }
    if (this.#evictedWhileFilling.has(blobId)) {
      await unlink(this.#pathOf(blobId)).catch(() => undefined);
      return;
    }
    this.#install(blobId, size);
    await this.#evictOverflow();
  }
}
