import { ContentTooLargeError, errors, type MatrixError } from '@hsmedia/errors';
import { raceAbort, type Logger, type SignalSource } from '@hsmedia/runtime';
import { essenceOf } from './content-headers.js';
import { RemoteMediaError } from './errors.js';
import { WeightedLru } from './internal/weighted-lru.js';
import type { MediaCatalog } from './media-catalog.js';
import { REMOTE_THUMBNAIL_CONTENT_TYPES, type ImageProbe, type RemoteMediaSource, type StoredThumbnail, type ThumbnailSpec } from './ports/index.js';
import { rowKey, specKey, type ThumbnailRows } from './thumbnail-rows.js';

/** Options of {@link RemoteThumbnails}. */
export interface RemoteThumbnailsOptions {
  readonly catalog: MediaCatalog;
  readonly rows: ThumbnailRows;
  readonly logger: Logger;
  /** Must have `fetchThumbnail`. */
  readonly remote: RemoteMediaSource;
  /** Largest remote thumbnail accepted, in bytes (read into memory to probe). */
  readonly maxBytes: number;
  /** Reads a thumbnail's real size, format and animation from its header; without it the request is trusted. */
  readonly probe?: ((bytes: Uint8Array) => Promise<ImageProbe>) | undefined;
}

/** A failed remote thumbnail (or a remote 404) is remembered this long per media item. */
const REMOTE_MISS_TTL_MS = 30_000;
/** The decoder format each remote thumbnail type must really be (probe check). */
const FORMAT_OF_TYPE: Readonly<Record<string, string>> = {
  'image/jpeg': 'jpeg',
  'image/png': 'png',
  'image/apng': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

/**
 * Thumbnails that other servers make of their own media (spec v1.11,
 * server-server API, `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`),
 * for remote media whose original is not cached here. Single-flight per
 * media item and size; an answer is accepted only when it is a thumbnail
 * type, within `maxBytes` and (with `probe`) really an image of that type,
 * and is then stored as a thumbnail row of the remote item without a media
 * row. A remote 404 is a 404; any other failure means "use the original".
 */
export class RemoteThumbnails {
  readonly #catalog: MediaCatalog;
  readonly #rows: ThumbnailRows;
  readonly #logger: Logger;
  readonly #remote: RemoteMediaSource;
  readonly #maxBytes: number;
  readonly #probe: ((bytes: Uint8Array) => Promise<ImageProbe>) | undefined;
  /** `media/spec` → the fetch of a remote thumbnail: its stored row, or null (fall back to the original). */
  readonly #flights = new Map<string, Promise<StoredThumbnail | null>>();
  /** `media` → a recent failure: the 404 to give, or 'fallback' (go to the original directly). */
  readonly #misses = new WeightedLru<string, MatrixError | 'fallback'>(10_000);
  readonly #shutdown = new AbortController();

  constructor(options: RemoteThumbnailsOptions) {
    this.#catalog = options.catalog;
    this.#rows = options.rows;
    this.#logger = options.logger;
    this.#remote = options.remote;
    this.#maxBytes = options.maxBytes;
    this.#probe = options.probe;
  }

  /**
   * The stored row that answers `wanted` for a remote item, fetched now when
   * none is stored; null when the caller should thumbnail the original.
   * Throws 404 when the remote has no such media.
   */
  async rowFor(serverName: string, mediaId: string, wanted: ThumbnailSpec, timeoutMs: number, signal: SignalSource | undefined): Promise<StoredThumbnail | null> {
    const media = { serverName, mediaId };
    const rows = await this.#rows.list(media);
    const row = this.#rows.exactAnswer(media, rows, wanted);
    if (row !== undefined) return row;
    const key = `${serverName}/${mediaId}`;
    const missed = this.#misses.get(key, this.#catalog.clock.now());
    if (missed === 'fallback') return null;
    if (missed !== undefined) throw missed;
    const flightKey = `${key}/${specKey(wanted)}`;
    let flight = this.#flights.get(flightKey);
    if (flight === undefined) {
      flight = this.#fetch(serverName, mediaId, wanted, timeoutMs);
      this.#flights.set(flightKey, flight);
      const forget = (): void => void this.#flights.delete(flightKey);
      flight.then(forget, forget);
    }
    return raceAbort(flight, signal);
  }

  close(): void {
    this.#shutdown.abort(new Error('ThumbnailService closed'));
  }

  /** Fetches, checks and stores the remote's thumbnail for `spec`; null when the original should be used instead. */
  async #fetch(serverName: string, mediaId: string, spec: ThumbnailSpec, timeoutMs: number): Promise<StoredThumbnail | null> {
    const catalog = this.#catalog;
    const key = `${serverName}/${mediaId}`;
    const signal = this.#shutdown.signal;
    const maxBytes = this.#maxBytes;
    const log = { serverName, mediaId, width: spec.width, height: spec.height, method: spec.method, animated: spec.animated };
    const fallBack = (reason: string, err?: unknown): null => {
      // Any remote can cause this at will: one line, no stack.
      this.#logger.info({ ...log, reason, ...(err instanceof Error ? { error: err.message } : {}) }, 'remote thumbnail unusable; thumbnailing the original instead');
      if (!signal.aborted) this.#misses.set(key, 'fallback', 1, catalog.clock.now() + REMOTE_MISS_TTL_MS);
      return null;
    };
    let bytes: Uint8Array;
    let contentType: string;
    try {
      const answer = await this.#remote.fetchThumbnail!({ serverName, mediaId, ...spec, maxBytes, timeoutMs, signal });
      contentType = answer.contentType === null ? '' : essenceOf(answer.contentType);
      if (!REMOTE_THUMBNAIL_CONTENT_TYPES.includes(contentType)) {
        await answer.body.cancel().catch(() => undefined);
        return fallBack(`not a thumbnail type: ${JSON.stringify(answer.contentType)}`);
      }
      if (answer.contentLength !== null && answer.contentLength > maxBytes) {
        await answer.body.cancel().catch(() => undefined);
        return fallBack('too large');
      }
      bytes = await readAtMost(answer.body, maxBytes);
    } catch (err) {
      if (signal.aborted) throw err;
      if (err instanceof RemoteMediaError && err.code === 'not_found') {
        const notFound = errors.notFound('Media not found');
        this.#misses.set(key, notFound, 1, catalog.clock.now() + REMOTE_MISS_TTL_MS);
        throw notFound;
      }
      return fallBack(err instanceof ContentTooLargeError ? 'too large' : 'fetch failed', err);
    }
    if (bytes.byteLength === 0) return fallBack('empty');
    let width = spec.width;
    let height = spec.height;
    let animated = spec.animated && (contentType === 'image/gif' || contentType === 'image/webp' || contentType === 'image/apng');
    if (this.#probe !== undefined) {
      let probe: ImageProbe;
      try {
        probe = await this.#probe(bytes);
      } catch (err) {
        return fallBack('not a readable image', err);
      }
      if (probe.format !== FORMAT_OF_TYPE[contentType]) return fallBack(`declared ${contentType} but is ${probe.format}`);
      ({ width, height, animated } = probe);
      // Spec v1.11, "Thumbnails": animated=false MUST NOT get an animated thumbnail.
      if (animated && !spec.animated) return fallBack('animated answer to a still request');
    }
    const blob = await catalog.putBytes(bytes, signal);
    const row: StoredThumbnail = { serverName, mediaId, width, height, method: spec.method, animated, contentType, blobId: blob.blobId, size: blob.size, createdAt: catalog.clock.now() };
    try {
      await catalog.admit({ kind: 'remote_thumbnail', serverName, mediaId, blobId: blob.blobId, size: blob.size, sha256: blob.sha256, contentType, userId: null }, signal);
    } catch (err) {
      await catalog.discardBlob(blob.blobId);
      throw err;
    }
    const inserted = await catalog.thumbnails.insertThumbnail(row);
    // Another request or instance stored the same thumbnail first: theirs is the answer from now on.
    if (!inserted) await catalog.discardBlob(blob.blobId);
    this.#rows.forget(row);
    const stored = (await this.#rows.list(row)).find((r) => rowKey(r) === rowKey(row));
    if (stored === undefined) throw new Error('ThumbnailService: a stored thumbnail vanished');
    if (inserted) catalog.cacheThumbnailBytes(stored.blobId, bytes);
    this.#rows.answers(row, spec, stored);
    this.#logger.debug(log, 'remote thumbnail stored');
    return stored;
  }
}

/** Reads a (small) body whole, refusing it once more than `maxBytes` arrive. */
async function readAtMost(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    // Leaving the loop cancels the stream.
    if (total > maxBytes) throw new ContentTooLargeError(maxBytes);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
