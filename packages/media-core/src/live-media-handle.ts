import { contentDispositionFor, DEFAULT_CONTENT_TYPE, normaliseUploadContentType } from './content-headers.js';
import type { ByteRange, MediaHandle } from './media-handle.js';
import type { MediaRecord } from './ports/index.js';
import type { RemoteTee } from './remote-tee.js';

/** A live handle nobody opens within this time stops holding its fetch back. */
const LIVE_OPEN_DEADLINE_MS = 30_000;

/**
 * The handle of the first caller of an uncached remote item: its bytes as
 * they arrive from the remote (see `RemoteTee`). Opened once, whole.
 */
export class LiveMediaHandle implements MediaHandle {
  readonly record: MediaRecord;
  readonly live: true = true;
  readonly contentType: string;
  readonly uploadName: string | null;
  readonly contentDisposition: string;
  readonly size: number | null;
  readonly etag: null = null;
  readonly #tee: RemoteTee;
  readonly #signal: AbortSignal | undefined;
  readonly #deadline: ReturnType<typeof setTimeout>;
  #opened = false;

  constructor(record: MediaRecord, contentLength: number | null, tee: RemoteTee, signal: AbortSignal | undefined) {
    this.record = record;
    this.contentType = (record.contentType === null ? null : normaliseUploadContentType(record.contentType)) ?? DEFAULT_CONTENT_TYPE;
    this.uploadName = record.uploadName;
    this.contentDisposition = contentDispositionFor(this.contentType, this.uploadName);
    this.size = contentLength;
    this.#tee = tee;
    this.#signal = signal;
    // A handle nobody opens (a bug, a HEAD without discard) must not stall the fetch for everyone.
    this.#deadline = setTimeout(() => {
      if (!this.#opened) tee.detach(new Error('live media handle was never opened'));
    }, LIVE_OPEN_DEADLINE_MS);
    this.#deadline.unref();
  }

  readSmall(): Promise<Uint8Array | null> {
    return Promise.resolve(null);
  }

  cachedSmall(): Uint8Array | undefined {
    return undefined;
  }

  open(range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (this.#opened) return Promise.reject(new Error('a live media handle can be opened only once'));
    if (range !== undefined) return Promise.reject(new Error('a live media handle has no ranges'));
    this.#opened = true;
    clearTimeout(this.#deadline);
    if (this.#signal?.aborted === true) this.#tee.detach(this.#signal.reason);
    return Promise.resolve(this.#tee.live);
  }

  discard(): void {
    this.#opened = true;
    clearTimeout(this.#deadline);
    this.#tee.detach(new Error('live media handle discarded'));
  }
}
