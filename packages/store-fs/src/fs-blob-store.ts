import { closeSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  generateId,
  type BlobPutOptions,
  type BlobReadOptions,
  type BlobStaging,
  type FileImportOptions,
  type BlobStore,
  type ByteSource,
  type ListedBlob,
  type StagedBlob,
  type StoredBlob,
} from '@hsmedia/media-core';
import { ContentTooLargeError } from '@hsmedia/errors';
import { BLOBS_DIR, blobDirOf, blobPathOf, jailedPath, stagingDirOf, stagingPathOf } from './internal/blob-path.js';
import { DeferredSyncs, syncDirectory } from './internal/deferred-syncs.js';
import { adoptOnWorker } from './internal/file-copy-pool.js';
import { fileReadStream } from './internal/file-read-stream.js';
import { writeAllTo } from './internal/write-all-to.js';
import { Sha256Hasher } from './internal/sha256-hasher.js';

/** Options of {@link FsBlobStore}. */
export interface FsBlobStoreOptions {
  /** Directory that holds `blobs/` and `staging/`; created on first write. Relative paths resolve against the cwd. */
  readonly root: string;
  /**
   * fsync each blob and its directory before `put` resolves, so an
   * acknowledged upload survives power loss. Default true; turn off only for
   * tests or throwaway caches.
   */
  readonly fsync?: boolean;
}

/** Error codes that mean "no such blob" when opening, statting or unlinking its path. */
const MISSING_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR']);

function isMissing(error: unknown): boolean {
  return MISSING_CODES.has((error as NodeJS.ErrnoException | null)?.code ?? '');
}

function checkOffset(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
}

/** The names in a directory, or none when it does not exist. */
async function readdirOrEmpty(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

/**
 * Closes a source that `put` will not read, so the upstream (a request body, a remote
 * download) is released rather than left hanging.
 */
function isDestroyable(value: object): value is { destroy(): void } {
  return typeof (value as { destroy?: unknown }).destroy === 'function';
}

async function releaseSource(source: ByteSource, reason: unknown): Promise<void> {
  try {
    if (source instanceof ReadableStream) {
      if (!source.locked) await source.cancel(reason);
    } else if (isDestroyable(source)) {
      // No error argument: an 'error' event nobody listens to would crash the process.
      source.destroy();
    } else {
      const iterator = source[Symbol.asyncIterator]();
      await iterator.return?.();
    }
  } catch {
    // Releasing is best effort; the caller gets the original error.
  }
}

/**
 * A {@link BlobStore} on a local directory tree.
 *
 * Layout: finished blobs at `<root>/blobs/<id[0..1]>/<id[2..3]>/<id>`,
 * in-progress writes at `<root>/staging/<random>.tmp`. A write becomes
 * visible only through the final `rename`, so a failed, aborted or
 * oversized upload (or a crash) never shows up as a blob. Blob IDs are
 * generated here and every ID passed in is validated against
 * `^[A-Za-z0-9_-]{8,255}$` and jail-checked before it touches a path.
 *
 * @example
 * ```ts
 * const store = new FsBlobStore({ root: '/var/lib/hsmedia' });
 * await store.cleanupStaging(); // at start-up, before serving
 * const { blobId, size, sha256 } = await store.put(request.body, { maxBytes: 50 * 1024 * 1024 });
 * const body = await store.open(blobId, { start: 0, end: 1023 });
 * ```
 *
 * One class past the size guideline on purpose: every way a file enters the
 * tree (put, staging for content addressing, linkFile, copyFile, deferred syncs) shares
 * the one jail, the in-flight set that `cleanupStaging` spares and the durable
 * rename (`#commit`); split apart, each would need those private parts exposed.
 * What stands alone is in internal/ (paths, reads, hashing, the copy worker pool, deferred syncs).
 */
export class FsBlobStore implements BlobStore, BlobStaging {
  readonly #root: string;
  readonly #fsync: boolean;
  /** Staging names of this instance's writes in progress, which cleanupStaging must not remove. */
  readonly #inFlight = new Set<string>();
  /** Blobs written with `deferSync`, durable only after `syncBlobs`. */
  readonly #deferred = new DeferredSyncs();
  /** `staging/` made once per instance (the copy workers create files in it). */
  #stagingDir: Promise<void> | undefined;

  constructor(options: FsBlobStoreOptions) {
    if (typeof options?.root !== 'string' || options.root.trim() === '' || options.root.includes('\0')) {
      throw new TypeError('FsBlobStore: root must be a non-empty path');
    }
    if (options.fsync !== undefined && typeof options.fsync !== 'boolean') {
      throw new TypeError('FsBlobStore: fsync must be a boolean');
    }
    this.#root = resolve(options.root);
    this.#fsync = options.fsync ?? true;
  }

  /** The absolute root directory. */
  get root(): string {
    return this.#root;
  }

  /**
   * Where the blob's file is under {@link FsBlobStore.root}, `/`-separated
   * (e.g. `blobs/ab/cd/abcd…`), for a reverse proxy that sends files itself
   * (`X-Accel-Redirect`); null for an invalid ID. Derived from the ID alone
   * through the same jail-checked layout as every read; no I/O, so the file
   * may be gone.
   */
  relativePathOf(blobId: string): string | null {
    const path = blobPathOf(this.#root, blobId);
    return path === null ? null : relative(this.#root, path).split(sep).join('/');
  }

  /**
   * Streams `source` into a staging file while counting and hashing, then
   * renames it into place. Rejects with {@link ContentTooLargeError} as soon
   * as more than `maxBytes` arrive; on any failure the staging file is removed
   * and the source is closed.
   */
  async put(source: ByteSource, options: BlobPutOptions = {}): Promise<StoredBlob> {
    const staged = await this.stageBlob(source, options);
    const blobId = generateId();
    try {
      options.signal?.throwIfAborted();
      await staged.publishAs(blobId);
    } catch (error) {
      await staged.discard();
      // A fresh ID names nobody else's bytes: a blob renamed into place before the failure is removed here.
      await unlink(blobPathOf(this.#root, blobId)!).catch(() => undefined);
      throw error;
    }
    return { blobId, size: staged.size, sha256: staged.sha256 };
  }

  /**
   * Like {@link put}, but the bytes stay in a durable staging file until
   * `publishAs` renames them into place (content addressing names them by
   * their hash, known only now). The staging file is spared by
   * `cleanupStaging` until it is published or discarded.
   */
  async stageBlob(source: ByteSource, options: BlobPutOptions = {}): Promise<StagedBlob> {
    const { maxBytes = Number.POSITIVE_INFINITY, signal, offloadHashing = false } = options;
    const syncNow = this.#fsync && options.deferSync !== true;
    try {
      if (!(maxBytes === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxBytes) && maxBytes >= 0))) {
        throw new RangeError(`maxBytes must be a non-negative safe integer, got ${maxBytes}`);
      }
      signal?.throwIfAborted();
    } catch (error) {
      await releaseSource(source, error);
      throw error;
    }

    const stagingName = `${generateId()}.tmp`;
    const stagingPath = stagingPathOf(this.#root, stagingName);
    if (!stagingPath) throw new Error('FsBlobStore: generated an invalid path');

    this.#inFlight.add(stagingName);
    let handle: FileHandle | undefined;
    let hasher: Sha256Hasher | undefined;
    let piping = false;
    try {
      await mkdir(dirname(stagingPath), { recursive: true });
      // 'wx': fail rather than share a file if a name ever repeats.
      handle = await open(stagingPath, 'wx');
      // Inline unless the caller's thread is busy with the same bytes: the worker costs a copy and a
      // message per MiB (docs/byte-path.md).
      const hash = new Sha256Hasher(offloadHashing);
      hasher = hash;
      let size = 0;
      piping = true;
      await pipeline(
        source,
        async function* countAndHash(chunks: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
          for await (const chunk of chunks) {
            if (!(chunk instanceof Uint8Array)) throw new TypeError('FsBlobStore: source yielded a non-Uint8Array chunk');
            size += chunk.byteLength;
            if (size > maxBytes) throw new ContentTooLargeError(maxBytes);
            if (chunk.byteLength === 0) continue;
            const behind = hash.update(chunk);
            if (behind !== undefined) await behind;
            yield chunk;
          }
        },
        writeAllTo(handle),
        signal ? { signal } : {},
      );
      // When offloaded, the worker finishes hashing while the file syncs.
      const digest = hash.digest();
      digest.catch(() => undefined);
      // With deferSync the file stays open, unsynced, until syncBlobs (a group commit of many imports).
      let deferred: FileHandle | undefined = handle;
      if (syncNow || !this.#fsync) {
        if (syncNow) await handle.sync();
        await handle.close();
        deferred = undefined;
      }
      handle = undefined;
      try {
        const sha256 = await digest;
        return this.#staged(stagingName, stagingPath, size, sha256, deferred);
      } catch (error) {
        await deferred?.close().catch(() => undefined);
        throw error;
      }
    } catch (error) {
      // Once piping, the pipeline has closed the source; before that, nobody has.
      if (!piping) await releaseSource(source, error);
      hasher?.dispose();
      await handle?.close().catch(() => undefined);
      await unlink(stagingPath).catch(() => undefined);
      this.#inFlight.delete(stagingName);
      throw error;
    }
  }

  #staged(stagingName: string, stagingPath: string, size: number, sha256: string, deferred: FileHandle | undefined): StagedBlob {
    let settled = false;
    const settle = (): void => {
      settled = true;
      this.#inFlight.delete(stagingName);
    };
    return {
      size,
      sha256,
      publishAs: async (blobId: string): Promise<void> => {
        if (settled) throw new Error('FsBlobStore: the staged blob was already published or discarded');
        const finalPath = blobPathOf(this.#root, blobId);
        if (!finalPath || !blobDirOf(this.#root, blobId)) throw new TypeError('FsBlobStore: invalid blob ID');
        let renamed = false;
        try {
          await this.#commit(stagingPath, blobId, deferred, () => {
            renamed = true;
            settle();
          });
        } catch (error) {
          // Past the rename the file at `blobId` is complete, and under content addressing other records
          // may already share it: only the caller's reference accounting may remove it (an unreferenced
          // one is left to the orphan sweep). Before the rename, the staging file is ours alone.
          if (!renamed) {
            await deferred?.close().catch(() => undefined);
            await unlink(stagingPath).catch(() => undefined);
          }
          settle();
          throw error;
        }
      },
      discard: async (): Promise<void> => {
        if (settled) return;
        settle();
        await deferred?.close().catch(() => undefined);
        await unlink(stagingPath).catch(() => undefined);
      },
    };
  }

  /**
   * Every blob under `blobs/` with the time it entered this store (the orphan
   * sweep's age): the inode's change time, which the rename out of staging and
   * a `linkFile` link(2) set, where the modification time of a hard-linked
   * file is the original's (years old after an import with `--link`).
   */
  async *listBlobs(): AsyncIterable<ListedBlob> {
    const top = jailedPath(this.#root, BLOBS_DIR);
    if (top === null) return;
    for (const first of await readdirOrEmpty(top)) {
      for (const second of await readdirOrEmpty(join(top, first))) {
        for (const blobId of await readdirOrEmpty(join(top, first, second))) {
          const path = blobPathOf(this.#root, blobId);
          if (path === null) continue;
          try {
            const info = await stat(path);
            if (info.isFile()) yield { blobId, modifiedAt: Math.max(info.ctimeMs, info.mtimeMs) };
          } catch (error) {
            if (!isMissing(error)) throw error;
          }
        }
      }
    }
  }

  /**
   * Adopts a local file as a new blob by hard-linking it (no copy), reading
   * it once to count and hash it: for bulk imports from another media store
   * on the same filesystem. Null when it cannot be linked (another
   * filesystem, no permission, no hard links): copy it instead. The file is
   * then shared with its other name, so it must never be modified in place
   * (media stores are write-once); deleting either name leaves the other
   * intact. A symlink is refused, never read through. Same contract as
   * {@link copyFile} otherwise.
   */
  async linkFile(path: string, options: FileImportOptions = {}): Promise<StoredBlob | null> {
    return this.#adoptFile('link', path, options);
  }

  /**
   * Copies a local file into a new blob (for bulk imports from another media
   * store when it cannot or must not be linked). The whole file-system part
   * runs on a worker thread with synchronous calls (internal/file-copy-pool.ts):
   * the caller's thread posts one message per file. The source is opened
   * with O_NOFOLLOW and must be a regular file; with `within` it must resolve
   * inside that directory. A problem with the source rejects with a
   * `SourceFileError` (`missing`, `outside`, `unreadable`); more than
   * `maxBytes` with {@link ContentTooLargeError}; `deferSync` and `signal`
   * apply; on any failure nothing is left in `staging/` or `blobs/`.
   */
  async copyFile(path: string, options: FileImportOptions = {}): Promise<StoredBlob> {
    return (await this.#adoptFile('copy', path, options))!;
  }

  /**
   * What linkFile and copyFile share: limits, a staging name that `cleanupStaging` spares, one job on the
   * worker pool (which creates, fills, renames and, unless deferred, closes the file), and the record
   * of a deferred sync. Null when a link is not possible here.
   */
  async #adoptFile(mode: 'copy' | 'link', source: string, options: FileImportOptions): Promise<StoredBlob | null> {
    const { maxBytes = Number.POSITIVE_INFINITY, signal } = options;
    const syncNow = this.#fsync && options.deferSync !== true;
    if (!(maxBytes === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxBytes) && maxBytes >= 0))) {
      throw new RangeError(`maxBytes must be a non-negative safe integer, got ${maxBytes}`);
    }
    signal?.throwIfAborted();
    const stagingName = `${generateId()}.tmp`;
    const staging = stagingPathOf(this.#root, stagingName);
    const blobId = generateId();
    const target = blobPathOf(this.#root, blobId);
    const targetDir = blobDirOf(this.#root, blobId);
    if (!staging || !target || !targetDir) throw new Error('FsBlobStore: generated an invalid path');
    this.#inFlight.add(stagingName);
    try {
      this.#stagingDir ??= mkdir(dirname(staging), { recursive: true }).then(() => undefined);
      await this.#stagingDir.catch((error: unknown) => {
        this.#stagingDir = undefined;
        throw error;
      });
      const keepOpen = this.#fsync && !syncNow;
      const done = await adoptOnWorker({ mode, source, within: options.within ?? null, staging, target, targetDir, maxBytes, sync: syncNow, keepOpen }, signal);
      if (!done.adopted) return null;
      try {
        // Aborted while the worker finished: the blob is not handed out, so it goes.
        signal?.throwIfAborted();
        if (this.#fsync) {
          this.#deferred.made(done.made, targetDir);
          // Another worker may have made the shard directories a moment ago and not been heard from yet:
          // their entries are synced too (a clean directory's fsync costs next to nothing).
          const shardParents = [dirname(targetDir), dirname(dirname(targetDir))];
          if (keepOpen) this.#deferred.add(blobId, done.fd, targetDir, shardParents);
          else await this.#syncDirs([...new Set([...this.#deferred.dirsFor(targetDir), ...shardParents])]);
        }
      } catch (error) {
        // Recorded already: forget closes it; not yet: close it here.
        if (this.#deferred.has(blobId)) this.#deferred.forget(blobId);
        else if (done.fd >= 0) closeSync(done.fd);
        await unlink(target).catch(() => undefined);
        throw error;
      }
      return { blobId, size: done.size, sha256: done.sha256 };
    } finally {
      this.#inFlight.delete(stagingName);
    }
  }

  /** Syncs directories now, and notes that what was made in them is durable. */
  async #syncDirs(dirs: readonly string[]): Promise<void> {
    for (const dir of dirs) await syncDirectory(dir);
    this.#deferred.synced(new Set(dirs));
  }

  /**
   * Renames a complete staging file into place as `blobId` (replacing an existing file of that name
   * atomically: readers holding it keep their bytes); `onRenamed` runs right after the rename. With fsync
   * the rename is durable once its directory is, and new shard directories need their parents synced too:
   * now, or, for a `deferSync` write (`deferred`: its open, unsynced file, which this then owns),
   * recorded for {@link FsBlobStore.syncBlobs}.
   */
  async #commit(stagingPath: string, blobId: string, deferred: FileHandle | undefined, onRenamed?: () => void): Promise<void> {
    const finalDir = blobDirOf(this.#root, blobId)!;
    const made = await mkdir(finalDir, { recursive: true });
    await rename(stagingPath, blobPathOf(this.#root, blobId)!);
    onRenamed?.();
    if (!this.#fsync) return;
    this.#deferred.made(made, finalDir);
    if (deferred !== undefined) {
      this.#deferred.add(blobId, deferred, finalDir);
      return;
    }
    await this.#syncDirs(this.#deferred.dirsFor(finalDir));
  }

  /**
   * Makes blobs written with `deferSync` durable, in one pass (their files,
   * then the union of their directories). IDs that are already durable are
   * skipped. Call it before publishing any record that names them.
   */
  async syncBlobs(blobIds: readonly string[]): Promise<void> {
    if (this.#fsync) await this.#deferred.sync(blobIds);
  }

  /**
   * A stream of the blob, or of the inclusive range `[start, end]` (an `end`
   * past the last byte is clamped). Null when the blob does not exist or the ID
   * is invalid. Throws `RangeError` for negative, fractional or inverted
   * offsets. The file is opened before this resolves, so a concurrent delete
   * cannot turn a found blob into a failing stream.
   */
  async open(blobId: string, options: BlobReadOptions = {}): Promise<ReadableStream<Uint8Array> | null> {
    const { start = 0, end, signal } = options;
    checkOffset('start', start);
    checkOffset('end', end);
    if (end !== undefined && end < start) throw new RangeError(`end (${end}) is before start (${start})`);
    const path = blobPathOf(this.#root, blobId);
    if (path === null) return null;
    signal?.throwIfAborted();
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    if (signal?.aborted) {
      await handle.close();
      signal.throwIfAborted();
    }
    return fileReadStream(handle, start, end ?? Number.POSITIVE_INFINITY, signal);
  }

  /** The blob's size, or null when it does not exist or the ID is invalid. */
  async stat(blobId: string): Promise<{ readonly size: number } | null> {
    const path = blobPathOf(this.#root, blobId);
    if (path === null) return null;
    try {
      const info = await stat(path);
      return info.isFile() ? { size: info.size } : null;
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /** Removes the blob; true when it existed, false when it did not or the ID is invalid. */
  async delete(blobId: string): Promise<boolean> {
    const path = blobPathOf(this.#root, blobId);
    if (path === null) return false;
    this.#deferred.forget(blobId);
    try {
      await unlink(path);
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /**
   * Removes everything in `staging/` except this instance's writes in
   * progress, and answers how many entries it removed. Call it at start-up,
   * before serving: another process writing to the same root would lose its
   * in-progress uploads.
   */
  async cleanupStaging(): Promise<number> {
    const dir = stagingDirOf(this.#root);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (isMissing(error)) return 0;
      throw error;
    }
    let removed = 0;
    for (const name of names) {
      if (this.#inFlight.has(name)) continue;
      const path = stagingPathOf(this.#root, name);
      if (path === null) continue;
      await rm(path, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }
}
