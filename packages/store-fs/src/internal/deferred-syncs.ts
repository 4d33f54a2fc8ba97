import { open, type FileHandle } from 'node:fs/promises';

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
 * directories its rename touched. {@link DeferredSyncs.sync}
 * flushes a set of them in one pass — every file, then the union of their
 * directories, all at once — so a bulk import pays one round of fsyncs per
 * batch (which the filesystem's journal commits together) instead of a
 * file + directory fsync per blob in sequence.
 */
export class DeferredSyncs {
  readonly #pending = new Map<string, { readonly file: FileHandle; readonly dirs: readonly string[] }>();

  /** Records a renamed, not yet durable blob; its handle is closed by `sync` or `forget`. */
  add(blobId: string, file: FileHandle, dirs: readonly string[]): void {
    // The same ID twice (a store that names blobs by content): the later file holds the name now.
    const earlier = this.#pending.get(blobId);
    if (earlier !== undefined) earlier.file.close().catch(() => undefined);
    this.#pending.set(blobId, { file, dirs: earlier === undefined ? dirs : [...new Set([...earlier.dirs, ...dirs])] });
  }

  /** Forgets a blob (deleted before it was synced), closing its handle. */
  forget(blobId: string): void {
    const entry = this.#pending.get(blobId);
    if (entry === undefined) return;
    this.#pending.delete(blobId);
    entry.file.close().catch(() => undefined);
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
    await Promise.all(entries.map((entry) => entry.file.sync()));
    // A directory sync after the files: the names then point at flushed data.
    await Promise.all([...new Set(entries.flatMap((entry) => entry.dirs))].map(syncDirectory));
    for (const { id, file } of entries) {
      this.#pending.delete(id);
      await file.close();
    }
  }
}
