import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Staging file names `@hsmedia/store-fs` generates: `<random id>.tmp`. */
const STAGING_NAME_RE = /^[A-Za-z0-9_-]{1,255}\.tmp$/;

/**
 * Removes staging files under `<root>/staging` not modified for
 * `olderThanMs`: leftovers of uploads whose process died. Unlike
 * `FsBlobStore.cleanupStaging` (everything but this process's own writes),
 * this is safe while other instances write to the same media directory: a
 * live upload keeps touching its file. Names come from `readdir` and must
 * look like the store's own; anything else is left alone. Returns how many
 * it removed.
 */
export async function sweepStaleStaging(root: string, olderThanMs: number, now: number = Date.now()): Promise<number> {
  const dir = join(root, 'staging');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let removed = 0;
  for (const name of names) {
    if (!STAGING_NAME_RE.test(name)) continue;
    const path = join(dir, name);
    try {
      const info = await stat(path);
      if (!info.isFile() || now - info.mtimeMs < olderThanMs) continue;
      await rm(path, { force: true });
      removed++;
    } catch (error) {
      // Finished (renamed) or removed by its writer meanwhile.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return removed;
}
