import type { FileHandle } from 'node:fs/promises';
import { constants, open, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { SourceFileError } from '@hsmedia/media-core';

/** A database row names a file that would lie outside the media store: refused, never opened. */
export class UnsafeMediaPathError extends Error {
  override readonly name = 'UnsafeMediaPathError';
  readonly code = 'unsafe-path' as const;
}

/** An opened file of the media store. */
export interface MediaStoreFile {
  /** Its real path (inside the store), for a blob store that links files instead of copying them. */
  readonly path: string;
  /** Its size when opened, in bytes. */
  readonly size: number;
  /** Its bytes, once; the file is closed when the stream ends, fails or is abandoned. */
  readonly stream: AsyncIterable<Uint8Array>;
  /** Closes the file when the stream is not read. */
  close(): Promise<void>;
}

/** A file of the store located but not opened (see {@link SynapseMediaStore.locate}). */
export interface LocatedMediaFile {
  readonly path: string;
  /** The store's real path: `path` must resolve inside it. */
  readonly within: string;
  /** Its bytes, opened and checked on first read. */
  open(): AsyncIterable<Uint8Array>;
}

// Synapse's rule for a path component (synapse/media/filepath.py,
// `_validate_path_component`): letters, digits and `_-.[]:` (server names),
// never empty, `.` or `..`. Anything else in a row is refused, not mapped.
const SAFE_COMPONENT = /^[A-Za-z0-9_\-.[\]:]+$/;
// URL-preview media IDs of the new format start with the date (`YYYY-MM-DD_…`).
const DATED_URL_CACHE_ID = /^\d\d\d\d-\d\d-\d\d/;

function component(name: string): string {
  if (!SAFE_COMPONENT.test(name) || name === '.' || name === '..') throw new UnsafeMediaPathError(`invalid path component ${JSON.stringify(name)}`);
  return name;
}

/** `ab/cd/rest` of an ID, as Synapse shards its files. */
function sharded(id: string): string[] {
  return [component(id.slice(0, 2)), component(id.slice(2, 4)), component(id.slice(4))];
}

function urlCacheSharded(mediaId: string): string[] {
  return DATED_URL_CACHE_ID.test(mediaId) ? [component(mediaId.slice(0, 10)), component(mediaId.slice(11))] : sharded(mediaId);
}

/** `<w>-<h>-<top>-<sub>[-<method>]`, Synapse's thumbnail file name. */
function thumbnailName(width: number, height: number, contentType: string, method: string | null): string {
  const [top, sub, ...rest] = contentType.split('/');
  if (top === undefined || sub === undefined || rest.length > 0) throw new UnsafeMediaPathError(`invalid thumbnail type ${JSON.stringify(contentType)}`);
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height)) throw new UnsafeMediaPathError('invalid thumbnail size');
  return component(method === null ? `${width}-${height}-${top}-${sub}` : `${width}-${height}-${top}-${sub}-${method}`);
}

/**
 * Paths of Synapse's `media_store` (relative to it, `/`-separated), and the
 * only way files are opened from it. Every component comes from the
 * database, so each is checked like Synapse checks it, and an opened path
 * must resolve (symlinks followed) inside the store: a row or a link that
 * points elsewhere is an {@link UnsafeMediaPathError}, never read.
 */
export class SynapseMediaStore {
  /** The store's real path (symlinks resolved). */
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens the store at `path` (must exist). */
  static async open(path: string): Promise<SynapseMediaStore> {
    return new SynapseMediaStore(await realpath(path));
  }

  /** `local_content/ab/cd/rest`, or `url_cache/…` for URL-preview media. */
  static localMediaPath(mediaId: string, urlCache: boolean): string {
    return [urlCache ? 'url_cache' : 'local_content', ...(urlCache ? urlCacheSharded(mediaId) : sharded(mediaId))].join('/');
  }

  /** `local_thumbnails/ab/cd/rest/<w>-<h>-<top>-<sub>-<method>`, or under `url_cache_thumbnails/`. */
  static localThumbnailPath(mediaId: string, urlCache: boolean, width: number, height: number, contentType: string, method: string): string {
    const dir = urlCache ? ['url_cache_thumbnails', ...urlCacheSharded(mediaId)] : ['local_thumbnails', ...sharded(mediaId)];
    return [...dir, thumbnailName(width, height, contentType, component(method))].join('/');
  }

  /** `remote_content/<origin>/ab/cd/rest` of the row's `filesystem_id`. */
  static remoteMediaPath(origin: string, filesystemId: string): string {
    return ['remote_content', component(origin), ...sharded(filesystemId)].join('/');
  }

  /** `remote_thumbnail/<origin>/ab/cd/rest/<name>`; `legacy` is the older name without the method. */
  static remoteThumbnailPath(origin: string, filesystemId: string, width: number, height: number, contentType: string, method: string, legacy = false): string {
    return ['remote_thumbnail', component(origin), ...sharded(filesystemId), thumbnailName(width, height, contentType, legacy ? null : component(method))].join('/');
  }

  /**
   * A file of the store to be taken by path, not opened here: its absolute
   * path (every component checked, as `open` does) and the store's real
   * path, inside which whoever opens it must find it (symlinks followed);
   * `open()` reads it with `open`'s checks. Throws
   * {@link UnsafeMediaPathError} for an invalid component.
   */
  locate(relativePath: string): LocatedMediaFile {
    const parts = relativePath.split('/');
    for (const part of parts) component(part);
    return {
      path: join(this.root, ...parts),
      within: this.root,
      open: () => this.#lazyStream(relativePath),
    };
  }

  /** The file's bytes, opened on first read; its faults as the stores that take paths report them. */
  async *#lazyStream(relativePath: string): AsyncGenerator<Uint8Array> {
    let file: MediaStoreFile | null;
    try {
      file = await this.open(relativePath);
    } catch (err) {
      if (err instanceof UnsafeMediaPathError) throw new SourceFileError('outside', relativePath, err.message);
      throw err;
    }
    if (file === null) throw new SourceFileError('missing', relativePath, `${relativePath}: no file in the media store`, 'ENOENT');
    yield* file.stream;
  }

  /**
   * Opens a file of the store, or null when it does not exist (or is not a
   * regular file). Throws {@link UnsafeMediaPathError} when it resolves
   * outside the store.
   */
  async open(relativePath: string): Promise<MediaStoreFile | null> {
    const parts = relativePath.split('/');
    for (const part of parts) component(part);
    let real: string;
    try {
      real = await realpath(join(this.root, ...parts));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    if (!real.startsWith(this.root + sep)) throw new UnsafeMediaPathError(`${relativePath} resolves outside the media store`);
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a link swapped in after the check is not followed.
      handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ELOOP') return null;
      throw err;
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) {
        await handle.close();
        return null;
      }
      return {
        path: real,
        size: stat.size,
        stream: handle.createReadStream({ highWaterMark: 256 * 1024, autoClose: true }),
        close: () => handle.close().catch(() => {}),
      };
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
