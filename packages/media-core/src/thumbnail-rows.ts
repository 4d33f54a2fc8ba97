import { WeightedLru } from './internal/weighted-lru.js';
import type { MediaCatalog } from './media-catalog.js';
import type { MediaRecord, StoredThumbnail, ThumbnailSpec } from './ports/index.js';

const ROWS_TTL_MS = 60_000;
/** Spec objects remembered per rows array (see `knownAnswer`). */
const MAX_CHOSEN_PER_ITEM = 64;

/** The identity of a stored thumbnail within its media item (the thumbnail index's unique key). */
export function rowKey(t: Pick<StoredThumbnail, 'width' | 'height' | 'method' | 'animated' | 'contentType'>): string {
  return `${t.width}x${t.height}/${t.method}/${t.animated ? 'a' : 's'}/${t.contentType}`;
}

/** The identity of a requested size. */
export function specKey(spec: ThumbnailSpec): string {
  return `${spec.width}x${spec.height}/${spec.method}/${spec.animated ? 'a' : 's'}`;
}

/**
 * Whether a stored thumbnail is what generating `spec` alone gives (dynamic
 * mode serves only exact answers): a crop fills its box; a scale of a larger
 * source touches the box on one side.
 */
export function answersExactly(row: StoredThumbnail, spec: ThumbnailSpec): boolean {
  if (row.method !== spec.method || row.animated !== spec.animated) return false;
  if (spec.method === 'crop') return row.width === spec.width && row.height === spec.height;
  return (row.width === spec.width && row.height <= spec.height) || (row.height === spec.height && row.width <= spec.width);
}

type MediaKey = Pick<MediaRecord, 'serverName' | 'mediaId'>;

/**
 * The thumbnail rows of media items, cached (sorted, so selection ties
 * break the same way whatever order the store gives), and which row answered
 * which exact request. The catalog's invalidation drops a media item's rows.
 */
export class ThumbnailRows {
  readonly #catalog: MediaCatalog;
  readonly #rows = new WeightedLru<string, StoredThumbnail[]>(10_000);
  /** `media/spec` → the row that answered it (dynamic mode), for outputs the exact test cannot recognise. */
  readonly #answered = new WeightedLru<string, string>(50_000);
  /** Cached rows array → spec object → the row chosen for it ({@link knownAnswer}). */
  readonly #chosen = new WeakMap<readonly StoredThumbnail[], Map<ThumbnailSpec, StoredThumbnail>>();
  readonly #unsubscribe: () => void;
  readonly #unsubscribeResync: () => void;

  constructor(catalog: MediaCatalog) {
    this.#catalog = catalog;
    this.#unsubscribe = catalog.onInvalidate((serverName, mediaId) => void this.#rows.delete(`${serverName}/${mediaId}`));
    this.#unsubscribeResync = catalog.onResync(() => this.#rows.clear());
  }

  /** The stored rows of a media item. */
  async list(media: MediaKey): Promise<StoredThumbnail[]> {
    const key = `${media.serverName}/${media.mediaId}`;
    const now = this.#catalog.clock.now();
    const cached = this.#rows.get(key, now);
    if (cached !== undefined) return cached;
    const rows = await this.#catalog.thumbnails.listThumbnails(media.serverName, media.mediaId);
    rows.sort((a, b) => (rowKey(a) < rowKey(b) ? -1 : rowKey(a) > rowKey(b) ? 1 : 0));
    if (rows.length > 0) this.#rows.set(key, rows, 1, now + ROWS_TTL_MS);
    return rows;
  }

  /**
   * The row already chosen for `spec` among the cached rows of a media item,
   * without I/O; undefined when the rows are not cached or `spec` was not
   * answered from them yet. Keyed by the rows array (a new listing starts
   * afresh) and by the spec object (the routes share one per query string).
   */
  knownAnswer(media: MediaKey, spec: ThumbnailSpec): StoredThumbnail | undefined {
    const rows = this.#rows.get(`${media.serverName}/${media.mediaId}`, this.#catalog.clock.now());
    return rows === undefined ? undefined : this.#chosen.get(rows)?.get(spec);
  }

  /** Remembers that `row` of `rows` (as {@link list} gave them) answers `spec`. */
  rememberAnswer(rows: readonly StoredThumbnail[], spec: ThumbnailSpec, row: StoredThumbnail): void {
    let chosen = this.#chosen.get(rows);
    if (chosen === undefined) this.#chosen.set(rows, (chosen = new Map()));
    // Bounded: distinct spec objects come from distinct query strings.
    if (chosen.size >= MAX_CHOSEN_PER_ITEM) chosen.clear();
    chosen.set(spec, row);
  }

  /** Forgets the cached rows of a media item (after inserting one). */
  forget(media: MediaKey): void {
    this.#rows.delete(`${media.serverName}/${media.mediaId}`);
  }

  /** The row that answers `spec` exactly: the one remembered for it, or one that passes {@link answersExactly}. */
  exactAnswer(media: MediaKey, rows: readonly StoredThumbnail[], spec: ThumbnailSpec): StoredThumbnail | undefined {
    const known = this.#answered.get(`${media.serverName}/${media.mediaId}/${specKey(spec)}`, 0);
    return rows.find((r) => (known === undefined ? answersExactly(r, spec) : rowKey(r) === known));
  }

  /** Remembers that `row` answers `spec` exactly. */
  answers(media: MediaKey, spec: ThumbnailSpec, row: StoredThumbnail): void {
    // The choices made from the cached rows followed the previous answers: choose again.
    const rows = this.#rows.get(`${media.serverName}/${media.mediaId}`, Number.NEGATIVE_INFINITY);
    if (rows !== undefined) this.#chosen.delete(rows);
    this.#answered.set(`${media.serverName}/${media.mediaId}/${specKey(spec)}`, rowKey(row), 1);
  }

  close(): void {
    this.#unsubscribe();
    this.#unsubscribeResync();
  }
}
