import { bool, intOrNull, openSynapseDatabase, textOrNull, type Row, type SynapseDatabase, type SynapseDatabaseLocation } from './synapse-database.js';
import { SynapseMediaStore, UnsafeMediaPathError, type LocatedMediaFile, type MediaStoreFile } from './synapse-media-store.js';

/** Options of {@link SynapseMediaSource.open}. */
export interface SynapseMediaSourceOptions {
  /** Synapse's database, opened read-only. */
  readonly database: SynapseDatabaseLocation;
  /** Synapse's `media_store_path`. */
  readonly mediaStorePath: string;
}

/** Which optional columns this Synapse's schema has (older eras lack the later ones). */
export interface SynapseMediaSchema {
  /** `quarantined_by` (schema 43+). */
  readonly quarantinedBy: boolean;
  /** `local_media_repository.safe_from_quarantine` (schema 58+). */
  readonly safeFromQuarantine: boolean;
  /** `authenticated` (schema 86+). */
  readonly authenticated: boolean;
  /** `sha256` (schema 91+). */
  readonly sha256: boolean;
  /** `local_media_repository.url_cache` (schema 43+). */
  readonly urlCache: boolean;
}

/** One thumbnail row and where its file is. */
export interface SynapseThumbnail {
  readonly width: number;
  readonly height: number;
  /** `thumbnail_type`, e.g. `image/jpeg`. */
  readonly type: string;
  /** `thumbnail_method`: `crop` or `scale`. */
  readonly method: string;
  readonly length: number | null;
  /** The file, relative to the media store; null when the row names an unsafe path (see `pathProblem`). */
  readonly path: string | null;
  /** Remote only: the older file name without the method, tried when `path` is missing. */
  readonly legacyPath: string | null;
  readonly pathProblem: string | null;
}

/** One media row of Synapse (local or cached remote) with its thumbnails. */
export interface SynapseMediaItem {
  /** The origin server of remote media; null for local media. */
  readonly origin: string | null;
  readonly mediaId: string;
  readonly mediaType: string | null;
  /** Null for local media created but never uploaded (and for thumbnail-only remote media). */
  readonly mediaLength: number | null;
  readonly createdTs: number | null;
  readonly uploadName: string | null;
  /** Uploader (local media). */
  readonly userId: string | null;
  /** Who quarantined it (`system` for a re-upload of quarantined bytes); null when not quarantined. */
  readonly quarantinedBy: string | null;
  readonly safeFromQuarantine: boolean;
  readonly authenticated: boolean;
  /** Lower-case hex, when the schema has it and Synapse computed it. */
  readonly sha256: string | null;
  readonly lastAccessTs: number | null;
  /** The previewed URL of URL-preview media (stored under `url_cache/`). */
  readonly urlCache: string | null;
  /** Remote: the file's ID in `remote_content/<origin>/` (never the media ID). */
  readonly filesystemId: string | null;
  /** Remote media known only through thumbnails: no media row, no original file. */
  readonly thumbnailOnly: boolean;
  /** Local media created but never uploaded (no bytes, no file). */
  readonly pending: boolean;
  /** The original's file, relative to the media store; null when pending, thumbnail-only or unsafe. */
  readonly path: string | null;
  readonly pathProblem: string | null;
  readonly thumbnails: readonly SynapseThumbnail[];
}

/** Count and bytes of rows. */
export interface SynapseCount {
  readonly count: number;
  readonly bytes: number;
}

/** What {@link SynapseMediaSource.stats} counts. */
export interface SynapseMediaStats {
  readonly local: SynapseCount;
  readonly remote: SynapseCount;
  readonly localThumbnails: SynapseCount;
  readonly remoteThumbnails: SynapseCount;
  /** Local rows created but never uploaded. */
  readonly pending: number;
}

/** A page of {@link SynapseMediaSource.page}; `next` is null after the last page. */
export interface SynapseMediaPage {
  readonly items: SynapseMediaItem[];
  /** Opaque, serialisable: pass it back to continue (a run resumes from it). */
  readonly next: string | null;
}

type Phase = 'local' | 'remote' | 'thumbnail-only';
const PHASES: readonly Phase[] = ['local', 'remote', 'thumbnail-only'];
interface Cursor {
  readonly phase: Phase;
  readonly origin: string;
  readonly mediaId: string;
}

function parseCursor(cursor: string | null): Cursor {
  if (cursor === null) return { phase: 'local', origin: '', mediaId: '' };
  let value: unknown;
  try {
    value = JSON.parse(cursor);
  } catch {
    throw new TypeError('SynapseMediaSource: malformed cursor');
  }
  const c = value as Partial<Cursor>;
  if (!PHASES.includes(c.phase as Phase) || typeof c.origin !== 'string' || typeof c.mediaId !== 'string') throw new TypeError('SynapseMediaSource: malformed cursor');
  return c as Cursor;
}

const MAX_PAGE = 1000;

/**
 * Synapse's media as its database and `media_store` hold it, read-only:
 * `local_media_repository`, `remote_media_cache` and their thumbnail
 * tables, whatever schema era (columns added later are read when present),
 * with the files resolved in Synapse's layout and jail-checked.
 *
 * Iteration is keyset-paged in a stable order (local media by ID, then
 * remote media by origin and ID, then remote media known only through
 * thumbnails), so a cursor saved after a page resumes exactly there.
 */
export class SynapseMediaSource {
  readonly schema: SynapseMediaSchema;
  readonly store: SynapseMediaStore;
  readonly #db: SynapseDatabase;
  readonly #localColumns: string;
  readonly #remoteColumns: string;

  private constructor(db: SynapseDatabase, store: SynapseMediaStore, schema: SynapseMediaSchema) {
    this.#db = db;
    this.store = store;
    this.schema = schema;
    const opt = (present: boolean, column: string): string => (present ? column : `NULL AS ${column}`);
    this.#localColumns = [
      'media_id, media_type, media_length, created_ts, upload_name, user_id, last_access_ts',
      opt(schema.quarantinedBy, 'quarantined_by'),
      opt(schema.safeFromQuarantine, 'safe_from_quarantine'),
      opt(schema.authenticated, 'authenticated'),
      opt(schema.sha256, 'sha256'),
      opt(schema.urlCache, 'url_cache'),
    ].join(', ');
    this.#remoteColumns = [
      'media_origin, media_id, media_type, media_length, created_ts, upload_name, filesystem_id, last_access_ts',
      opt(schema.quarantinedBy, 'quarantined_by'),
      opt(schema.authenticated, 'authenticated'),
      opt(schema.sha256, 'sha256'),
    ].join(', ');
  }

  /** Opens the database (read-only) and the media store, and reads which columns the schema has. */
  static async open(options: SynapseMediaSourceOptions): Promise<SynapseMediaSource> {
    const store = await SynapseMediaStore.open(options.mediaStorePath);
    const db = await openSynapseDatabase(options.database);
    try {
      const local = await db.columns('local_media_repository');
      const remote = await db.columns('remote_media_cache');
      const needed = ['media_id', 'media_type', 'media_length', 'created_ts', 'upload_name', 'user_id', 'last_access_ts'];
      if (!needed.every((c) => local.has(c)) || !remote.has('filesystem_id') || (await db.columns('local_media_repository_thumbnails')).size === 0) {
        throw new Error('not a Synapse database with media tables (local_media_repository, remote_media_cache, their thumbnails; schema 47 or later)');
      }
      const schema: SynapseMediaSchema = {
        quarantinedBy: local.has('quarantined_by') && remote.has('quarantined_by'),
        safeFromQuarantine: local.has('safe_from_quarantine'),
        authenticated: local.has('authenticated') && remote.has('authenticated'),
        sha256: local.has('sha256') && remote.has('sha256'),
        urlCache: local.has('url_cache'),
      };
      return new SynapseMediaSource(db, store, schema);
    } catch (err) {
      await db.close().catch(() => {});
      throw err;
    }
  }

  /** A local media item by ID, with its thumbnails, or null. */
  async localMedia(mediaId: string): Promise<SynapseMediaItem | null> {
    const rows = await this.#db.query(`SELECT ${this.#localColumns} FROM local_media_repository WHERE media_id = ?`, [mediaId]);
    return rows[0] === undefined ? null : ((await this.#withThumbnails('local', rows))[0] ?? null);
  }

  /** A cached remote media item by origin and ID (or known only through thumbnails), or null. */
  async remoteMedia(origin: string, mediaId: string): Promise<SynapseMediaItem | null> {
    const rows = await this.#db.query(`SELECT ${this.#remoteColumns} FROM remote_media_cache WHERE media_origin = ? AND media_id = ?`, [origin, mediaId]);
    if (rows[0] !== undefined) return (await this.#withThumbnails('remote', rows))[0] ?? null;
    const items = await this.#withThumbnails('thumbnail-only', [{ media_origin: origin, media_id: mediaId }]);
    return items[0] !== undefined && items[0].thumbnails.length > 0 ? items[0] : null;
  }

  /** The next page of media after `cursor` (null: from the start), at most `limit` (1–1000) items. */
  async page(cursor: string | null, limit = 200): Promise<SynapseMediaPage> {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new RangeError(`SynapseMediaSource.page: limit must be 1 to ${MAX_PAGE}`);
    let at = parseCursor(cursor);
    for (;;) {
      const rows = await this.#rows(at, limit);
      if (rows.length > 0) {
        const items = await this.#withThumbnails(at.phase, rows);
        return { items, next: cursorAfter(items[items.length - 1]!) };
      }
      const following = PHASES[PHASES.indexOf(at.phase) + 1];
      if (following === undefined) return { items: [], next: null };
      at = { phase: following, origin: '', mediaId: '' };
    }
  }

  /**
   * Every item from `cursor` on, page by page, each with the cursor that
   * resumes right after it (save it once the item is done).
   */
  async *items(cursor: string | null = null, limit = 200): AsyncGenerator<{ readonly item: SynapseMediaItem; readonly cursor: string }> {
    let next: string | null = cursor;
    do {
      const page = await this.page(next, limit);
      for (const item of page.items) yield { item, cursor: cursorAfter(item) };
      next = page.next;
    } while (next !== null);
  }

  /** Counts and bytes of every table (for `--dry-run` and progress totals). */
  async stats(): Promise<SynapseMediaStats> {
    const count = async (sql: string): Promise<SynapseCount> => {
      const row = (await this.#db.query(sql))[0] ?? {};
      return { count: intOrNull(row.n) ?? 0, bytes: intOrNull(row.b) ?? 0 };
    };
    return {
      local: await count('SELECT COUNT(*) AS n, SUM(media_length) AS b FROM local_media_repository'),
      remote: await count('SELECT COUNT(*) AS n, SUM(media_length) AS b FROM remote_media_cache'),
      localThumbnails: await count('SELECT COUNT(*) AS n, SUM(thumbnail_length) AS b FROM local_media_repository_thumbnails'),
      remoteThumbnails: await count('SELECT COUNT(*) AS n, SUM(thumbnail_length) AS b FROM remote_media_cache_thumbnails'),
      pending: (await count('SELECT COUNT(*) AS n, 0 AS b FROM local_media_repository WHERE media_length IS NULL')).count,
    };
  }

  /**
   * The files that may hold an item's original, or a thumbnail (its legacy
   * name second), located in the store but not opened, in the order to try:
   * none when the row names no file. Throws `UnsafeMediaPathError` for a
   * path that would leave the store.
   */
  mediaFiles(item: SynapseMediaItem): LocatedMediaFile[] {
    if (item.pathProblem !== null) throw new UnsafeMediaPathError(item.pathProblem);
    return item.path === null ? [] : [this.store.locate(item.path)];
  }

  thumbnailFiles(thumbnail: SynapseThumbnail): LocatedMediaFile[] {
    if (thumbnail.pathProblem !== null || thumbnail.path === null) throw new UnsafeMediaPathError(thumbnail.pathProblem ?? 'no path');
    return [this.store.locate(thumbnail.path), ...(thumbnail.legacyPath === null ? [] : [this.store.locate(thumbnail.legacyPath)])];
  }

  /**
   * Opens an item's original, or a thumbnail of it: null when the file is
   * missing (or the item has none). Throws `UnsafeMediaPathError` for a
   * path that would leave the store.
   */
  async openMedia(item: SynapseMediaItem): Promise<MediaStoreFile | null> {
    if (item.pathProblem !== null) throw new UnsafeMediaPathError(item.pathProblem);
    return item.path === null ? null : this.store.open(item.path);
  }

  /** Opens a thumbnail's file (the legacy name of remote thumbnails too); null when missing. */
  async openThumbnail(thumbnail: SynapseThumbnail): Promise<MediaStoreFile | null> {
    if (thumbnail.pathProblem !== null || thumbnail.path === null) throw new UnsafeMediaPathError(thumbnail.pathProblem ?? 'no path');
    return (await this.store.open(thumbnail.path)) ?? (thumbnail.legacyPath === null ? null : this.store.open(thumbnail.legacyPath));
  }

  /** Closes the database connection(s). */
  async close(): Promise<void> {
    await this.#db.close();
  }

  #rows(at: Cursor, limit: number): Promise<Row[]> {
    switch (at.phase) {
      case 'local':
        return this.#db.query(`SELECT ${this.#localColumns} FROM local_media_repository WHERE media_id > ? ORDER BY media_id LIMIT ?`, [at.mediaId, limit]);
      case 'remote':
        return this.#db.query(
          `SELECT ${this.#remoteColumns} FROM remote_media_cache WHERE media_origin > ? OR (media_origin = ? AND media_id > ?) ORDER BY media_origin, media_id LIMIT ?`,
          [at.origin, at.origin, at.mediaId, limit],
        );
      case 'thumbnail-only':
        return this.#db.query(
          `SELECT t.media_origin, t.media_id FROM remote_media_cache_thumbnails t
           WHERE (t.media_origin > ? OR (t.media_origin = ? AND t.media_id > ?))
             AND NOT EXISTS (SELECT 1 FROM remote_media_cache m WHERE m.media_origin = t.media_origin AND m.media_id = t.media_id)
           GROUP BY t.media_origin, t.media_id ORDER BY t.media_origin, t.media_id LIMIT ?`,
          [at.origin, at.origin, at.mediaId, limit],
        );
    }
  }

  /** Items of the rows, with their thumbnail rows fetched in one query per origin. */
  async #withThumbnails(phase: Phase, rows: Row[]): Promise<SynapseMediaItem[]> {
    const byKey = new Map<string, Row[]>();
    const key = (origin: string, mediaId: string): string => `${origin}\u0000${mediaId}`;
    if (phase === 'local') {
      const ids = rows.map((r) => String(r.media_id));
      const thumbs = await this.#db.query(
        `SELECT media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method, thumbnail_length FROM local_media_repository_thumbnails WHERE media_id IN (${ids.map(() => '?').join(',')})`,
        ids,
      );
      for (const t of thumbs) push(byKey, key('', String(t.media_id)), t);
    } else {
      const origins = new Map<string, string[]>();
      for (const r of rows) push(origins, String(r.media_origin), String(r.media_id));
      for (const [origin, ids] of origins) {
        const thumbs = await this.#db.query(
          `SELECT media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method, thumbnail_length, filesystem_id FROM remote_media_cache_thumbnails WHERE media_origin = ? AND media_id IN (${ids.map(() => '?').join(',')})`,
          [origin, ...ids],
        );
        for (const t of thumbs) push(byKey, key(origin, String(t.media_id)), t);
      }
    }
    return rows.map((row) => {
      const origin = phase === 'local' ? null : String(row.media_origin);
      return toItem(phase, row, byKey.get(key(origin ?? '', String(row.media_id))) ?? []);
    });
  }
}

/** The cursor that resumes iteration right after `item`. */
export function cursorAfter(item: SynapseMediaItem): string {
  const phase: Phase = item.origin === null ? 'local' : item.thumbnailOnly ? 'thumbnail-only' : 'remote';
  return JSON.stringify({ phase, origin: item.origin ?? '', mediaId: item.mediaId } satisfies Cursor);
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** `path()` or its problem, when the row names an unsafe path. */
function safely(path: () => string): { path: string | null; problem: string | null } {
  try {
    return { path: path(), problem: null };
  } catch (err) {
    if (err instanceof UnsafeMediaPathError) return { path: null, problem: err.message };
    throw err;
  }
}

function toItem(phase: Phase, row: Row, thumbRows: Row[]): SynapseMediaItem {
  const mediaId = String(row.media_id);
  const origin = phase === 'local' ? null : String(row.media_origin);
  const urlCache = textOrNull(row.url_cache);
  const filesystemId = textOrNull(row.filesystem_id);
  const mediaLength = intOrNull(row.media_length);
  const pending = phase === 'local' && mediaLength === null;
  const original =
    phase === 'thumbnail-only' || pending
      ? { path: null, problem: null }
      : origin === null
        ? safely(() => SynapseMediaStore.localMediaPath(mediaId, urlCache !== null))
        : safely(() => SynapseMediaStore.remoteMediaPath(origin, filesystemId ?? ''));
  const thumbnails = thumbRows.map((t): SynapseThumbnail => {
    const width = intOrNull(t.thumbnail_width) ?? 0;
    const height = intOrNull(t.thumbnail_height) ?? 0;
    const type = String(t.thumbnail_type ?? '');
    const method = String(t.thumbnail_method ?? '');
    const thumbFsId = textOrNull(t.filesystem_id) ?? '';
    const at =
      origin === null
        ? safely(() => SynapseMediaStore.localThumbnailPath(mediaId, urlCache !== null, width, height, type, method))
        : safely(() => SynapseMediaStore.remoteThumbnailPath(origin, thumbFsId, width, height, type, method));
    const legacy = origin === null || at.path === null ? null : safely(() => SynapseMediaStore.remoteThumbnailPath(origin, thumbFsId, width, height, type, method, true)).path;
    return { width, height, type, method, length: intOrNull(t.thumbnail_length), path: at.path, legacyPath: legacy, pathProblem: at.problem };
  });
  return {
    origin,
    mediaId,
    mediaType: textOrNull(row.media_type),
    mediaLength,
    createdTs: intOrNull(row.created_ts),
    uploadName: textOrNull(row.upload_name),
    userId: textOrNull(row.user_id),
    quarantinedBy: textOrNull(row.quarantined_by),
    safeFromQuarantine: bool(row.safe_from_quarantine),
    authenticated: bool(row.authenticated),
    sha256: textOrNull(row.sha256),
    lastAccessTs: intOrNull(row.last_access_ts),
    urlCache,
    filesystemId,
    thumbnailOnly: phase === 'thumbnail-only',
    pending,
    path: original.path,
    pathProblem: original.problem,
    thumbnails,
  };
}
