import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateId } from '@hsmedia/media-core';
import { isValidBlobId } from './blob-key.js';

const BLOBS_DIR = 'blobs';
const TMP_DIR = 'tmp';

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** True while process `pid` exists (EPERM: it exists under another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

/**
 * The on-disk layout of a {@link LocalBlobCache} directory, which several
 * processes (the server's workers) may share:
 *
 * - `blobs/<id[0..1]>/<id>`: complete copies, renamed into place (never written in place);
 * - `tmp/<pid>.<random>/`: each process's copies in progress. A process clears
 *   only the temporary directories of processes that no longer exist, never
 *   those of a live worker filling next to it.
 */
export class CacheDirectory {
  readonly root: string;
  readonly #tmp: string;

  constructor(root: string) {
    this.root = root;
    this.#tmp = join(root, TMP_DIR, `${process.pid}.${generateId()}`);
  }

  /** `<root>/blobs/<id[0..1]>/<id>`; the ID is allow-listed by every caller. */
  pathOf(blobId: string): string {
    return join(this.root, BLOBS_DIR, blobId.slice(0, 2), blobId);
  }

  /** A fresh temporary file name of this process. */
  tmpFile(): string {
    return join(this.#tmp, `${generateId()}.part`);
  }

  async makeShard(blobId: string): Promise<void> {
    await mkdir(join(this.root, BLOBS_DIR, blobId.slice(0, 2)), { recursive: true });
  }

  /** Creates the directories and removes the copies in progress of processes that are gone (a crash). */
  async prepare(): Promise<void> {
    const tmpRoot = join(this.root, TMP_DIR);
    await mkdir(join(this.root, BLOBS_DIR), { recursive: true });
    await mkdir(tmpRoot, { recursive: true });
    for (const name of await readdir(tmpRoot)) {
      const pid = /^(\d+)\./.exec(name)?.[1];
      // Another cache instance of this very process (same pid) may be filling there too.
      if (pid !== undefined && isAlive(Number(pid))) continue;
      await rm(join(tmpRoot, name), { recursive: true, force: true });
    }
    await mkdir(this.#tmp, { recursive: true });
  }

  /** The IDs of the cached files now (names only: one `readdir` per shard, no `stat`). */
  async listIds(): Promise<string[]> {
    const ids: string[] = [];
    const blobs = join(this.root, BLOBS_DIR);
    for (const shard of await readdir(blobs).catch(() => [] as string[])) {
      for (const name of await readdir(join(blobs, shard)).catch(() => [] as string[])) {
        if (isValidBlobId(name) && name.slice(0, 2) === shard) ids.push(name);
      }
    }
    return ids;
  }

  /** Size and modification time of a cached file, or undefined when it is not there (any more). */
  async statOf(blobId: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const info = await stat(this.pathOf(blobId));
      return info.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }
}
