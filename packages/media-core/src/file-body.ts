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

/** An open file that a stream may own: positional reads, and a close. `FileHandle` of `node:fs/promises` is one. */
export interface OwnedFile extends PositionalFile {
  close(): Promise<void>;
}

/**
 * Bytes per read. Larger reads mean fewer pulls through the Web-stream
 * machinery per megabyte (that overhead, not the disk, dominates when
 * serving from the page cache); 256 KiB keeps the per-reader buffer small.
 */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * A Web `ReadableStream` over `[start, end]` (inclusive) of an open file.
 * The handle is owned by the stream: it is closed at the end, on error, on
 * `cancel()` and when `signal` aborts, whichever comes first.
 *
 * Until the first read, a server may take the file itself instead
 * ({@link takeFileBody}) and write it with reused buffers; the stream
 * then ends and the handle is the taker's to close. So nothing is read ahead
 * (`highWaterMark: 0`): a read before anyone asks would rule that out.
 */
export function fileReadStream(
  handle: OwnedFile,
  start: number,
  end: number,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  let position = start;
  let remaining = end - start + 1;
  let closing: Promise<void> | undefined;
  let taken = false;
  let started = false;
  const release = (): Promise<void> => {
    // close() waits for an in-flight read, so this is safe to call from any callback.
    closing ??= handle.close().catch(() => undefined);
    return closing;
  };
  let onAbort: (() => void) | undefined;
  const detach = (): void => {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  };
  let streamController: ReadableStreamDefaultController<Uint8Array> | undefined;

  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        streamController = controller;
        if (!signal) return;
        onAbort = () => {
          controller.error(signal.reason);
          void release();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      },
      async pull(controller) {
        started = true;
        if (closing || taken) return;
        try {
          if (remaining <= 0) {
            detach();
            await release();
            controller.close();
            return;
          }
          const length = Math.min(READ_CHUNK_BYTES, remaining);
          const buffer = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buffer, 0, length, position);
          if (closing) return; // aborted or cancelled while reading
          if (bytesRead === 0) {
            detach();
            await release();
            controller.close();
            return;
          }
          position += bytesRead;
          remaining -= bytesRead;
          controller.enqueue(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
        } catch (error) {
          detach();
          await release();
          throw error;
        }
      },
      async cancel() {
        detach();
        if (!taken) await release();
      },
    },
    { highWaterMark: 0 },
  );
  offerFileBody(stream, () => {
    if (started || closing || taken || signal?.aborted === true) return undefined;
    taken = true;
    detach();
    streamController?.close();
    return {
      file: handle,
      start,
      end,
      signal,
      close: release,
    };
  });
  return stream;
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
