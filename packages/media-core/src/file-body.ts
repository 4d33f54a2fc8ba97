/**
 * A blob stream that is really an open file can hand the file itself to the
 * server, which then writes it to the socket with a few reused buffers
 * instead of pulling fresh chunks through the Web-stream machinery (see
 * docs/byte-path.md for the measurements). Everyone else reads the stream as
 * usual; the port stays `ReadableStream`.
 */

/** Positional reads of an open file: what `FileHandle` of `node:fs/promises` offers. */
export interface PositionalFile {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ readonly bytesRead: number }>;
}

/** An open file and the inclusive byte range of it a stream would have yielded. */
export interface FileBody {
  readonly file: PositionalFile;
  readonly start: number;
  /** Inclusive last byte; `Infinity` for "to the end of the file". */
  readonly end: number;
  /** The read's signal (the request's): the writer stops and closes the file when it aborts. */
  readonly signal: AbortSignal | undefined;
  /** Closes the file. Idempotent; waits for a read in flight. The taker must call it, whatever happens. */
  close(): Promise<void>;
}

const offers = new WeakMap<ReadableStream<Uint8Array>, () => FileBody | undefined>();

/**
 * Marks `stream` as backed by a file: {@link takeFileBody} may take the file
 * instead of reading the stream. `take` answers undefined once the stream has
 * been read from or closed; otherwise it ends the stream without closing the
 * file, whose ownership passes to the taker.
 */
export function offerFileBody(stream: ReadableStream<Uint8Array>, take: () => FileBody | undefined): void {
  offers.set(stream, take);
}

/**
 * The file behind `stream`, when its store offered it and nothing has read
 * the stream yet. The caller then owns the file (and must `close()` it) and
 * must not read `stream`; otherwise undefined, and the stream is read as usual.
 */
export function takeFileBody(stream: ReadableStream<Uint8Array>): FileBody | undefined {
  const take = offers.get(stream);
  if (take === undefined) return undefined;
  offers.delete(stream);
  if (stream.locked) return undefined;
  return take();
}
