/** Any byte stream the public API accepts: a Web stream (`fetch` bodies) or an async iterable (Node streams). */
export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** One read: the shape both `ReadableStreamDefaultReader.read()` and `AsyncIterator.next()` resolve to. */
export type ReadResult = { readonly done: true; readonly value?: unknown } | { readonly done: false; readonly value: unknown };

/**
 * Pull-based view of a {@link ByteSource}: one `read()` is one chunk,
 * nothing is read ahead. `read` is the source's own method (no wrapper
 * promise per chunk: the hot path of the decoder and encoder).
 */
export interface ChunkReader {
  /** The next chunk, unconverted; see {@link toBuffer}. */
  read(): Promise<ReadResult>;
  /** Stops the source (releases the connection). Never throws. */
  cancel(reason?: unknown): Promise<void>;
}

/** A chunk as a Buffer view (no copy). */
export function toBuffer(chunk: unknown): Buffer {
  if (chunk instanceof Uint8Array) {
    return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  throw new TypeError('multipart: byte source yielded a non-Uint8Array chunk (set no encoding on Node streams)');
}

const DONE: ReadResult = { done: true };

/** Wraps a Web `ReadableStream` or an async iterable as a {@link ChunkReader}. */
export function chunkReader(source: ByteSource): ChunkReader {
  let cancelled = false;
  if (typeof (source as ReadableStream<Uint8Array>).getReader === 'function') {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    return {
      read: () => (cancelled ? Promise.resolve(DONE) : reader.read()),
      async cancel(reason) {
        if (cancelled) return;
        cancelled = true;
        try {
          await reader.cancel(reason);
        } catch {
          // the source already failed; nothing to release
        }
      },
    };
  }
  const it = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return {
    read: () => (cancelled ? Promise.resolve(DONE) : it.next()),
    async cancel() {
      if (cancelled) return;
      cancelled = true;
      try {
        await it.return?.();
      } catch {
        // ignore: best effort
      }
    },
  };
}
