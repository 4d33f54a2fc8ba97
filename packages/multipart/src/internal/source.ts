/** Any byte stream the public API accepts: a Web stream (`fetch` bodies) or an async iterable (Node streams). */
export type ByteSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** Pull-based view of a {@link ByteSource}: one `read()` is one chunk, nothing is read ahead. */
export interface ChunkReader {
  /** The next non-empty chunk as a Buffer view (no copy), or `undefined` at the end. */
  read(): Promise<Buffer | undefined>;
  /** Stops the source (releases the connection). Never throws. */
  cancel(reason?: unknown): Promise<void>;
}

function toBuffer(chunk: unknown): Buffer {
  if (chunk instanceof Uint8Array) {
    return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  throw new TypeError('multipart: byte source yielded a non-Uint8Array chunk (set no encoding on Node streams)');
}

/** Wraps a Web `ReadableStream` or an async iterable as a {@link ChunkReader}. */
export function chunkReader(source: ByteSource): ChunkReader {
  let done = false;
  if (typeof (source as ReadableStream<Uint8Array>).getReader === 'function') {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    return {
      async read() {
        while (!done) {
          const r = await reader.read();
          if (r.done) {
            done = true;
            reader.releaseLock();
            return undefined;
          }
          const buf = toBuffer(r.value);
          if (buf.length > 0) return buf;
        }
        return undefined;
      },
      async cancel(reason) {
        if (done) return;
        done = true;
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
    async read() {
      while (!done) {
        const r = await it.next();
        if (r.done === true) {
          done = true;
          return undefined;
        }
        const buf = toBuffer(r.value);
        if (buf.length > 0) return buf;
      }
      return undefined;
    },
    async cancel() {
      if (done) return;
      done = true;
      try {
        await it.return?.();
      } catch {
        // ignore: best effort
      }
    },
  };
}
