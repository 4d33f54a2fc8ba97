import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';

/**
 * Reading the tar.gz parts of media archives (matrix-media-repo's and ours)
 * as a stream of entries, one at a time, never a whole part or file in
 * memory. Nothing is ever extracted to the filesystem: an entry's bytes go
 * straight to the blob store, so an entry name is only ever a lookup key.
 * Even so, names are checked (POSIX tar, IEEE 1003.1 `ustar`): a name that
 * would leave an extraction directory (`..`, absolute, backslashes) and any
 * entry that is not a regular file (symlink, hard link, device, ...) is
 * reported by the caller and its bytes skipped, never followed.
 */

/** Why an entry is not a plain file with a safe relative name. */
export type UnsafeEntryReason = 'not-a-file' | 'unsafe-name';

/** One entry of a part, as the reader gives it. */
export interface ArchiveEntry {
  /** The name as stored (after PAX/GNU long names). */
  readonly name: string;
  /** The tar entry type (`file`, `symlink`, `link`, `directory`, ...). */
  readonly type: string;
  /** Declared size in bytes. */
  readonly size: number;
  /** The link target for symlink and hard-link entries. */
  readonly linkName: string | null;
  /** Null for a plain file with a safe name, else why it must not be used. */
  readonly unsafe: UnsafeEntryReason | null;
  /**
   * The entry's bytes, once. A consumer may stop early (an error, a size
   * limit): the reader skips what is left before the next entry.
   */
  readonly bytes: AsyncIterable<Uint8Array>;
}

/** A part that is not a complete tar.gz (truncated, corrupt gzip or tar). */
export class ArchivePartError extends Error {
  readonly part: string;
  readonly reason: string;

  constructor(part: string, reason: string) {
    super(`${part}: ${reason}`);
    this.name = 'ArchivePartError';
    this.part = part;
    this.reason = reason;
  }
}

/** Whether `name` is a plain relative path that stays inside a directory it would be extracted to. */
export function isSafeEntryName(name: string): boolean {
  if (name === '' || name.length > 1024) return false;
  // eslint-disable-next-line no-control-regex -- control characters and NUL never belong in a member name
  if (/[\x00-\x1f\x7f\\]/.test(name)) return false;
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return false;
  return name.split('/').every((segment) => segment !== '..' && segment !== '.' && segment !== '');
}

function describeReadError(error: unknown): string {
  const err = error as NodeJS.ErrnoException;
  if (err.code === 'Z_BUF_ERROR' || /unexpected end/i.test(err.message)) return 'truncated (the gzip stream ends early)';
  if (err.code === 'Z_DATA_ERROR') return `not a valid gzip stream (${err.message})`;
  if (err.code === 'ENOENT') return 'no such file';
  if (/unexpected end|truncated/i.test(err.message)) return 'truncated (the tar stream ends early)';
  return err.message;
}

/**
 * Calls `onEntry` for each entry of the tar.gz file at `path`, in order,
 * waiting for it before reading on. Throws {@link ArchivePartError} when the
 * part is truncated or corrupt (entries before the damage have been given;
 * the one being read fails inside `onEntry`, which must keep nothing of it).
 * An error thrown by `onEntry` stops the reading and is rethrown as is.
 */
export async function readArchivePart(path: string, partName: string, onEntry: (entry: ArchiveEntry) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const tar = extract();
  const piping = pipeline(createReadStream(path), createGunzip(), tar, ...(signal === undefined ? [] : [{ signal }]));
  // The pipeline's own failure surfaces through the extract iterator; keep it from being unhandled.
  let pipeError: unknown;
  piping.catch((error: unknown) => {
    pipeError = error;
  });
  let consumerError: { error: unknown } | undefined;
  try {
    for await (const entry of tar) {
      const header = entry.header;
      const type: string = header.type ?? 'file';
      const name = header.name;
      const unsafe: UnsafeEntryReason | null = type !== 'file' && type !== 'contiguous-file' ? 'not-a-file' : isSafeEntryName(name) ? null : 'unsafe-name';
      const source = (entry as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      let sourceDone = false;
      let streamFailure: { error: unknown } | undefined;
      const bytes: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          // Never calls source.return(): stopping early must not destroy the whole extract stream.
          for (;;) {
            let next: IteratorResult<Uint8Array>;
            try {
              next = await source.next();
            } catch (error) {
              streamFailure = { error };
              throw error;
            }
            if (next.done === true) {
              sourceDone = true;
              return;
            }
            yield next.value;
          }
        },
      };
      try {
        await onEntry({ name, type, size: header.size ?? 0, linkName: header.linkname ?? null, unsafe, bytes });
      } catch (error) {
        consumerError = { error };
      }
      if (streamFailure !== undefined) throw new ArchivePartError(partName, describeReadError(pipeError ?? streamFailure.error));
      if (consumerError !== undefined) break;
      // Skip whatever the consumer left; a truncated part fails here too.
      while (!sourceDone) {
        const next = await source.next();
        if (next.done === true) sourceDone = true;
      }
    }
  } catch (error) {
    if (error instanceof ArchivePartError) throw error;
    throw new ArchivePartError(partName, describeReadError(pipeError ?? error));
  }
  if (consumerError !== undefined) {
    tar.destroy();
    await piping.catch(() => undefined);
    throw consumerError.error;
  }
  try {
    await piping;
  } catch (error) {
    throw new ArchivePartError(partName, describeReadError(error));
  }
}

/** A part file to read. */
export interface ArchivePartFile {
  readonly path: string;
  /** Its file name, for reports. */
  readonly name: string;
}

const naturalOrder = new Intl.Collator('en', { numeric: true });

/**
 * The part files named on the command line: files as given, directories
 * expanded to the regular files in them (not recursively, dot files left
 * out), each directory's files in natural order (`part-2` before `part-10`).
 * Throws when a path does not exist or nothing is found.
 */
export async function listArchiveParts(paths: readonly string[], cwd: string): Promise<ArchivePartFile[]> {
  const parts: ArchivePartFile[] = [];
  for (const given of paths) {
    const path = resolve(cwd, given);
    const info = await stat(path);
    if (info.isDirectory()) {
      const names = (await readdir(path, { withFileTypes: true }))
        .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
        .map((entry) => entry.name)
        .sort(naturalOrder.compare);
      for (const name of names) parts.push({ path: join(path, name), name });
    } else {
      parts.push({ path, name: basename(path) });
    }
  }
  if (parts.length === 0) throw new Error('no archive parts found');
  return parts;
}

/** Reads a small entry whole, as UTF-8 text; throws when it is longer than `maxBytes`. */
export async function readEntryText(entry: ArchiveEntry, maxBytes: number): Promise<string> {
  if (entry.size > maxBytes) throw new Error(`${entry.name} is larger than ${maxBytes} bytes`);
  const chunks: Uint8Array[] = [];
  for await (const chunk of entry.bytes) chunks.push(chunk);
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
}
