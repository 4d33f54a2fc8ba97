import { open } from 'node:fs/promises';

/** fsyncs a file or directory by path (POSIX allows fsync on a read-only descriptor); directories are a no-op on Windows, which cannot. */
export async function syncPath(path: string, directory: boolean): Promise<void> {
  if (directory && process.platform === 'win32') return;
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * The blobs written with `deferSync` that are not durable yet: for each, its
 * file and the directories its rename touched. {@link DeferredSyncs.sync}
 * flushes a set of them in one pass — every file, then the union of their
 * directories, all at once — so a bulk import pays one round of fsyncs per
 * batch (which the filesystem's journal commits together) instead of a
 * file + directory fsync per blob in sequence.
 */
export class DeferredSyncs {
  readonly #pending = new Map<string, { readonly file: string; readonly dirs: readonly string[] }>();

  /** Records a renamed, not yet durable blob. */
  add(blobId: string, file: string, dirs: readonly string[]): void {
    this.#pending.set(blobId, { file, dirs });
  }

  /** Forgets a blob (deleted before it was synced). */
  forget(blobId: string): void {
    this.#pending.delete(blobId);
  }

  /** Makes the given blobs durable; IDs not pending (already durable, or never deferred) are skipped. */
  async sync(blobIds: readonly string[]): Promise<void> {
    const entries = blobIds.flatMap((id) => {
      const entry = this.#pending.get(id);
      return entry === undefined ? [] : [{ id, ...entry }];
    });
    if (entries.length === 0) return;
    await Promise.all(entries.map((entry) => syncPath(entry.file, false)));
    // A directory sync after the files: the names then point at flushed data.
    await Promise.all([...new Set(entries.flatMap((entry) => entry.dirs))].map((dir) => syncPath(dir, true)));
    for (const { id } of entries) this.#pending.delete(id);
  }
}
