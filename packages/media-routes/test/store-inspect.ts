import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SqliteMetadataStore } from '@hsmedia/store-sqlite';

/** Every file under a blob store's root (staging included): what a failed request must not leave. */
export async function blobFilesUnder(root: string): Promise<string[]> {
  try {
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** How many media rows the SQLite metadata store holds. */
export async function countMediaRows(metadata: SqliteMetadataStore): Promise<number> {
  const [row] = (await metadata.knex('media').count({ n: '*' })) as { n: number | string }[];
  return Number(row?.n ?? 0);
}
