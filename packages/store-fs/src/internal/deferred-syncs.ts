import { closeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncOnWorker } from './file-sync-worker.js';

interface Pending {
  readonly file: OpenBlobFile;
  readonly dirs: readonly string[];
  /** A descriptor's fsync, started when it was recorded (see the class). */
  readonly early: Promise<void> | undefined;
}

/** An open, renamed blob file: a descriptor (from the copy workers) or a handle (from streamed writes). */
export type OpenBlobFile = number | FileHandle;

function closeQuietly(file: OpenBlobFile): void {
  if (typeof file !== 'number') {
    file.close().catch(() => undefined);
    return;
  }
  try {
    closeSync(file);
  } catch {
    // Already closed or never valid: nothing more to release.
  }
}

/** fsyncs a directory so a rename or create inside it is durable (POSIX; a no-op on Windows, which cannot). */
export async function syncDirectory(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * The blobs written with `deferSync` that are not durable yet: for each, its
 * still open file (kept open so the flush needs no second open) and the
 * directories to sync for its name. {@link DeferredSyncs.sync} flushes a set
 * of them in one pass — every file, then the union of their directories, all
 * at once, from one worker thread (internal/file-sync-worker.ts) — so a bulk
 * import pays one round of fsyncs per batch (which the filesystem's journal
 * commits together) instead of a file + directory fsync per blob in sequence.
 *
 * A descriptor's fsync starts as soon as it is recorded (those recorded in
 * one turn of the event loop in one message), not when the batch is
 * flushed: the disk then writes while later files are still being copied,
 * and the flush mostly finds its files written already. (Linux's
 * `sync_file_range` would only start the writeback; Node has no binding.)
 *
 * A directory made for a blob is durable only once its parent is synced
 * too, and a later blob may land in it before that: the directories made
 * and not yet synced into their parents are remembered, and every blob
 * below one brings the parents along.
 */
export class DeferredSyncs {
  readonly #pending = new Map<string, Pending>();
  /** Descriptors recorded in this turn of the event loop, whose fsyncs start together at its end. */
  #starting: { readonly fd: number; resolve(): void; reject(error: unknown): void }[] = [];
  /** Files being flushed now: a `forget` meanwhile leaves their closing to the flush. */
  readonly #flushing = new Set<OpenBlobFile>();
  /** Directories made whose entry in their parent is not durable yet. */
  readonly #madeDirs = new Set<string>();

  /**
   * Notes the directories `mkdir -p` just made for `dir`: `outermost` (what
   * it answered) down to `dir`, each not durable in its parent yet.
   */
  made(outermost: string | null | undefined, dir: string): void {
    if (outermost === null || outermost === undefined) return;
    for (let at = dir; at.length >= outermost.length; at = dirname(at)) {
      this.#madeDirs.add(at);
      if (at === outermost || dirname(at) === at) break;
    }
  }

  /** The directories to sync so that a new name in `dir` is durable: `dir`, and the parent of each made one on the way up. */
  dirsFor(dir: string): string[] {
    const dirs = [dir];
    for (let at = dir; this.#madeDirs.has(at); at = dirname(at)) dirs.push(dirname(at));
    return dirs;
  }

  /** Notes that these directories were synced: directories made in them are durable now. */
  synced(dirs: ReadonlySet<string>): void {
    for (const dir of this.#madeDirs) if (dirs.has(dirname(dir))) this.#madeDirs.delete(dir);
  }

  /**
   * Records a renamed, not yet durable blob in `dir`; its file is closed by
   * `sync` or `forget`. The directories to sync are `dir`, the parents of
   * those still only made (see `made`) and `alsoSync`.
   */
  add(blobId: string, file: OpenBlobFile, dir: string, alsoSync: readonly string[] = []): void {
    const dirs = [...new Set([...this.dirsFor(dir), ...alsoSync])];
    // The same ID twice (a store that names blobs by content): the later file holds the name now.
    const earlier = this.#pending.get(blobId);
    if (earlier !== undefined) this.#release(earlier);
    const early = typeof file === 'number' ? this.#startSync(file) : undefined;
    this.#pending.set(blobId, { file, dirs: earlier === undefined ? dirs : [...new Set([...earlier.dirs, ...dirs])], early });
  }

  /** Whether the blob is recorded and not synced yet. */
  has(blobId: string): boolean {
    return this.#pending.has(blobId);
  }

  /** Forgets a blob (deleted before it was synced), closing its file. */
  forget(blobId: string): void {
    const entry = this.#pending.get(blobId);
    if (entry === undefined) return;
    this.#pending.delete(blobId);
    this.#release(entry);
  }

  /** Closes a file nobody will sync now: once its early fsync is done (never under a running fsync), unless a flush holds it. */
  #release(entry: Pending): void {
    if (this.#flushing.has(entry.file)) return;
    if (entry.early === undefined) closeQuietly(entry.file);
    else entry.early.then(() => closeQuietly(entry.file), () => closeQuietly(entry.file));
  }

  #startSync(fd: number): Promise<void> {
    const early = new Promise<void>((resolve, reject) => {
      if (this.#starting.length === 0) setImmediate(() => this.#sendStarting());
      this.#starting.push({ fd, resolve, reject });
    });
    // Awaited by the flush that covers it; a failure also fails that flush.
    early.catch(() => undefined);
    return early;
  }

  #sendStarting(): void {
    const batch = this.#starting;
    this.#starting = [];
    syncOnWorker(
      batch.map((item) => item.fd),
      [],
    ).then(
      () => batch.forEach((item) => item.resolve()),
      (error: unknown) => batch.forEach((item) => item.reject(error)),
    );
  }

  /**
   * Makes the given blobs durable; IDs not pending (already durable, or never
   * deferred) are skipped. On a failure the blobs stay pending (not durable):
   * the caller discards them. One call at a time for a given blob.
   */
  async sync(blobIds: readonly string[]): Promise<void> {
    const entries = blobIds.flatMap((id) => {
      const entry = this.#pending.get(id);
      return entry === undefined ? [] : [{ id, ...entry }];
    });
    if (entries.length === 0) return;
    for (const { file } of entries) this.#flushing.add(file);
    try {
      // The files (descriptors' fsyncs started when recorded), then their directories on the sync worker.
      await Promise.all(entries.map(({ file, early }) => early ?? (file as FileHandle).sync()));
      const dirs = new Set(entries.flatMap((entry) => entry.dirs));
      await syncOnWorker([], [...dirs]);
      this.synced(dirs);
      for (const { id, file } of entries) if (this.#pending.get(id)?.file === file) this.#pending.delete(id);
    } finally {
      const closing: Promise<void>[] = [];
      for (const { id, file } of entries) {
        this.#flushing.delete(file);
        // Synced, or forgotten meanwhile: closed now. Failed and still pending: kept for the caller's discard.
        if (this.#pending.get(id)?.file === file) continue;
        if (typeof file === 'number') closeQuietly(file);
        else closing.push(file.close().catch(() => undefined));
      }
      await Promise.all(closing);
    }
  }
}
