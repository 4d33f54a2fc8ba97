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

/**
 * Where a {@link PushBody} writes: the server's response. `write` answers
 * false once the sink wants no more until the taker calls `drained()` (a
 * Node socket's `write` and `'drain'`).
 */
export interface BodySink {
  write(chunk: Uint8Array): boolean;
  /** Every byte was written: end the response. */
  end(): void;
  /** The body failed: abort the response (the client sees a cut connection, not a short body). */
  abort(reason: unknown): void;
}

/** What the taker of a {@link PushBody} reports back. */
export interface PushBodyControls {
  /** The sink can take more (after a `write` answered false). */
  drained(): void;
  /** The sink is gone (client disconnected): write nothing more. */
  gone(reason: unknown): void;
}

/**
 * A body whose producer writes its chunks straight to a sink (the remote
 * relay's live side): no pull and no promise per chunk between the producer
 * and the socket. `attach` is called once; after it the producer calls the
 * sink until it ends or aborts it, or until `gone`.
 */
export interface PushBody {
  attach(sink: BodySink): PushBodyControls;
}

const pushOffers = new WeakMap<ReadableStream<Uint8Array>, () => PushBody | undefined>();

/**
 * Marks `stream` as a body that can push to a sink instead: {@link takePushBody}
 * may take it while nothing has read the stream. `take` answers undefined when
 * pushing is no longer possible; otherwise the stream must not be read any more.
 */
export function offerPushBody(stream: ReadableStream<Uint8Array>, take: () => PushBody | undefined): void {
  pushOffers.set(stream, take);
}

/** The push side of `stream` when it offered one and nothing has read it yet; otherwise undefined (read the stream). */
export function takePushBody(stream: ReadableStream<Uint8Array>): PushBody | undefined {
  const take = pushOffers.get(stream);
  if (take === undefined) return undefined;
  pushOffers.delete(stream);
  if (stream.locked) return undefined;
  return take();
}
