import { errors, MatrixError } from '@hsmedia/errors';
import type { Logger } from '@hsmedia/runtime';
import { essenceOf } from './content-headers.js';
import { WeightedLru } from './internal/weighted-lru.js';
import type { MediaCatalog } from './media-catalog.js';
import type { MediaRecord, StoredThumbnail, ThumbnailGenerator, ThumbnailSpec } from './ports/index.js';
import { rowKey, specKey, type ThumbnailRows } from './thumbnail-rows.js';

/** Options of a {@link ThumbnailGeneration}. */
export interface ThumbnailGenerationOptions {
  readonly catalog: MediaCatalog;
  readonly rows: ThumbnailRows;
  readonly logger: Logger;
  readonly generator: ThumbnailGenerator;
  /** The sizes made once per media item. */
  readonly sizes: readonly ThumbnailSpec[];
  /** Maps a generator failure to the client's error (null: not the generator's, rethrown). */
  readonly errorFor: (error: unknown, record: MediaRecord) => MatrixError | null;
  readonly maxBackgroundJobs: number;
  readonly maxQueuedJobs: number;
}

/** A queued or running generation of a media item's configured sizes. */
interface PregenJob {
  started: boolean;
  readonly done: Promise<void>;
  run(): Promise<void>;
}

/** Sources are write-once: a failure stays a failure, but time-outs under load deserve a retry. */
const FAILURE_TTL_MS = 5 * 60_000;
/** Only GIF and WebP sources animate (MSC2705); for the others `animated=true` asks for a still. */
export const ANIMATABLE_TYPES: ReadonlySet<string> = new Set(['image/gif', 'image/webp']);

/** The essence of a record's type, '' when it has none. */
export function typeOf(record: MediaRecord): string {
  return record.contentType === null ? '' : essenceOf(record.contentType);
}

/**
 * Makes and stores thumbnails of stored media: the configured sizes once
 * per media item in a bounded background queue (or at once when a request
 * is waiting for them), and exact sizes on demand, single-flight per media
 * item and size. Each distinct output is stored once (the thumbnail index
 * refuses duplicates, so concurrent instances agree on one row). Failures
 * are remembered for a while so a broken source is not decoded per request.
 */
export class ThumbnailGeneration {
  readonly #catalog: MediaCatalog;
  readonly #rows: ThumbnailRows;
  readonly #logger: Logger;
  readonly #generator: ThumbnailGenerator;
  readonly #sizes: readonly ThumbnailSpec[];
  readonly #errorFor: (error: unknown, record: MediaRecord) => MatrixError | null;
  readonly #maxBackgroundJobs: number;
  readonly #maxQueuedJobs: number;
  readonly #failures = new WeightedLru<string, MatrixError>(10_000);
  readonly #pregen = new Map<string, PregenJob>();
  readonly #queue: PregenJob[] = [];
  readonly #exact = new Map<string, Promise<StoredThumbnail>>();
  readonly #shutdown = new AbortController();
  #running = 0;

  constructor(options: ThumbnailGenerationOptions) {
    this.#catalog = options.catalog;
    this.#rows = options.rows;
    this.#logger = options.logger;
    this.#generator = options.generator;
    this.#sizes = [...options.sizes];
    this.#errorFor = options.errorFor;
    this.#maxBackgroundJobs = options.maxBackgroundJobs;
    this.#maxQueuedJobs = options.maxQueuedJobs;
  }

  /** Whether the configured sizes of this item are queued or being made now. */
  isPending(record: MediaRecord): boolean {
    // Empty almost always once the sizes are made: no key is built per request then.
    return this.#pregen.size > 0 && this.#pregen.has(`${record.serverName}/${record.mediaId}`);
  }

  /** The remembered failure of this item's source, if any. */
  failureOf(record: MediaRecord): MatrixError | undefined {
    return this.#failures.size === 0 ? undefined : this.#failures.get(`${record.serverName}/${record.mediaId}`, this.#catalog.clock.now());
  }

  /** Queues the configured sizes of a stored item (no-op when there is nothing to make). */
  schedule(record: MediaRecord): void {
    if (this.#shutdown.signal.aborted || this.#sizes.length === 0 || record.blobId === null) return;
    if (!this.#generator.supports(typeOf(record))) return;
    if (this.isPending(record)) return;
    if (this.#queue.length >= this.#maxQueuedJobs) {
      this.#logger.warn({ mediaId: record.mediaId }, 'thumbnail queue full; thumbnails will be made on first request');
      return;
    }
    this.#queue.push(this.#newJob(record));
    this.#pump();
  }

  /** The configured sizes of `record`, made now if only queued (a request is waiting for them). */
  pregenerate(record: MediaRecord): Promise<void> {
    const job = this.#pregen.get(`${record.serverName}/${record.mediaId}`) ?? this.#newJob(record);
    if (!job.started) void job.run();
    return job.done;
  }

  /** Generates exactly `spec`, single-flight per item and spec, and gives the stored row that answers it. */
  exact(record: MediaRecord, spec: ThumbnailSpec): Promise<StoredThumbnail> {
    const key = `${record.serverName}/${record.mediaId}/${specKey(spec)}`;
    let flight = this.#exact.get(key);
    if (flight === undefined) {
      flight = (async () => {
        try {
          const [row] = await this.#generateAndStore(record, [spec]);
          this.#rows.answers(record, spec, row!);
          return row!;
        } catch (error) {
          throw this.#errorFor(error, record) ?? error;
        }
      })();
      this.#exact.set(key, flight);
      const forget = (): void => void this.#exact.delete(key);
      flight.then(forget, forget);
    }
    return flight;
  }

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.#pregen.size > 0) {
      await Promise.allSettled([...this.#pregen.values()].map((job) => job.done));
    }
  }

  /** Drops the queue and aborts running generations. */
  async close(): Promise<void> {
    this.#queue.length = 0;
    this.#shutdown.abort(new Error('ThumbnailService closed'));
    await Promise.allSettled([...this.#pregen.values()].filter((job) => job.started).map((job) => job.done));
  }

  #newJob(record: MediaRecord): PregenJob {
    const key = `${record.serverName}/${record.mediaId}`;
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined);
    const job: PregenJob = {
      started: false,
      done,
      run: async () => {
        job.started = true;
        try {
          await this.#generateSizes(record);
          resolve();
        } catch (error) {
          reject(error);
        } finally {
          this.#pregen.delete(key);
        }
      },
    };
    this.#pregen.set(key, job);
    return job;
  }

  #pump(): void {
    while (this.#running < this.#maxBackgroundJobs && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      if (job.started) continue; // a request ran it already
      this.#running++;
      void job.run().finally(() => {
        this.#running--;
        this.#pump();
      });
    }
  }

  async #generateSizes(record: MediaRecord): Promise<void> {
    // Animated variants too for types that can animate, so `animated=true` has an answer without dynamic mode.
    const specs = ANIMATABLE_TYPES.has(typeOf(record))
      ? [...this.#sizes, ...this.#sizes.filter((s) => !s.animated).map((s) => ({ ...s, animated: true }))]
      : this.#sizes;
    const log = { serverName: record.serverName, mediaId: record.mediaId };
    try {
      await this.#generateAndStore(record, specs);
      this.#logger.debug(log, 'thumbnails generated');
    } catch (error) {
      const mapped = this.#errorFor(error, record) ?? error;
      if (!this.#shutdown.signal.aborted && mapped instanceof MatrixError) {
        this.#failures.set(`${record.serverName}/${record.mediaId}`, mapped, 1, this.#catalog.clock.now() + FAILURE_TTL_MS);
      }
      this.#logger.info({ err: error, ...log }, 'could not generate thumbnails');
      throw mapped;
    }
  }

  /**
   * Generates `specs` from one read of the source and stores each distinct
   * output. Gives, per spec, the stored row (ours, or the one that was there first).
   */
  async #generateAndStore(record: MediaRecord, specs: readonly ThumbnailSpec[]): Promise<StoredThumbnail[]> {
    const catalog = this.#catalog;
    const signal = this.#shutdown.signal;
    const source = await catalog.blobs.open(record.blobId!, { signal });
    if (source === null) throw errors.notFound('Media not found');
    const outputs = await this.#generator.generate(source, typeOf(record), specs, { signal });
    const stored = new Set<string>();
    let inserted = false;
    for (const output of outputs) {
      const candidate = { width: output.width, height: output.height, method: output.spec.method, animated: output.animated, contentType: output.contentType };
      const key = rowKey(candidate);
      if (stored.has(key)) continue;
      stored.add(key);
      const blob = await catalog.putBytes(output.bytes, signal);
      const row: StoredThumbnail = { serverName: record.serverName, mediaId: record.mediaId, ...candidate, blobId: blob.blobId, size: blob.size, createdAt: catalog.clock.now() };
      if (await catalog.thumbnails.insertThumbnail(row)) {
        inserted = true;
        catalog.cacheThumbnailBytes(row.blobId, output.bytes);
      } else {
        // Another request or instance stored it first: theirs is the answer from now on.
        await catalog.discardBlob(blob.blobId);
      }
    }
    this.#rows.forget(record);
    if (inserted && (await catalog.records.getMedia(record.serverName, record.mediaId)) === null) {
      // The media was deleted while we worked: do not leave its thumbnails behind.
      await catalog.deleteThumbnails(record.serverName, record.mediaId);
      throw errors.notFound('Media not found');
    }
    const byKey = new Map((await this.#rows.list(record)).map((r) => [rowKey(r), r] as const));
    return outputs.map((output) => {
      const row = byKey.get(rowKey({ width: output.width, height: output.height, method: output.spec.method, animated: output.animated, contentType: output.contentType }));
      if (row === undefined) throw new Error('ThumbnailService: a stored thumbnail vanished');
      return row;
    });
  }
}
