import { parseBoundary } from './content-type.js';
import { chunkReader, type ByteSource, type ChunkReader } from './internal/source.js';
import { MultipartPushDecoder, type MultipartHead, type PushDecoderLimits } from './push-decoder.js';

/** Limits and cancellation for {@link decodeMultipart}. */
export interface DecodeOptions {
  /** Largest media part accepted, in bytes (the caller's max file size). Required. */
  readonly maxContentBytes: number;
  /** Largest JSON metadata part (and ignored `Location` part body). Default 65536. */
  readonly maxMetadataBytes?: number;
  /** Largest header block of one part, line ends included. Default 16384. */
  readonly maxHeaderBytes?: number;
  /** Most header lines in one part. Default 32. */
  readonly maxHeaderLines?: number;
  /** Largest preamble before the first delimiter. Default 16384. */
  readonly maxPreambleBytes?: number;
  /** Aborts reading; the pending promise or the content stream fails with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** Fields common to both results of {@link decodeMultipart}. */
interface DecodedBase {
  /** The first part's JSON object (`{}` today; unknown keys must be ignored). */
  readonly metadata: Record<string, unknown>;
  /** The second part's headers, names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The media bytes are inline in the second part (the first form of the federation download answer). */
export interface DecodedContent extends DecodedBase {
  readonly kind: 'content';
  /** The part's `Content-Type`, if any. */
  readonly contentType: string | undefined;
  /** The part's `Content-Disposition`, if any. */
  readonly contentDisposition: string | undefined;
  /**
   * The media bytes. Errors with {@link MultipartTruncatedError} if the body
   * ends before the closing delimiter, {@link MultipartTooLargeError} past
   * `maxContentBytes`, {@link MultipartParseError} if a third part follows.
   * Cancel it if you stop reading early; that releases the source.
   */
  readonly stream: ReadableStream<Uint8Array>;
}

/** The second part redirects (the `Location` form): fetch `location` without X-Matrix auth. */
export interface DecodedLocation extends DecodedBase {
  readonly kind: 'location';
  /** The absolute `http:`/`https:` URL of the `Location` header. */
  readonly location: string;
}

/** Result of {@link decodeMultipart}. */
export type DecodedMultipart = DecodedContent | DecodedLocation;

const DEFAULTS = {
  maxMetadataBytes: 64 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxHeaderLines: 32,
  maxPreambleBytes: 16 * 1024,
} as const;

function limit(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(v >= 0) || (!Number.isSafeInteger(v) && v !== Number.POSITIVE_INFINITY)) {
    throw new RangeError(`decodeMultipart: ${name} must be a non-negative integer`);
  }
  return v;
}

/**
 * Decodes a federation media response body (see the package doc; RFC 2046 §5.1) as
 * it streams in. Resolves once the media part's headers are read (for a
 * `Location` part: once the closing delimiter is read), so the caller can
 * start storing the bytes while they arrive.
 *
 * Tolerant: quoted or unquoted boundary, other parameters, preamble
 * (leading CRLFs), epilogue, transport padding, header names in any case,
 * bare-LF line ends, `application/json` with parameters, a final delimiter
 * without `--`. Strict: exactly two parts, first part a JSON object,
 * truncation is an error. Every failure is a {@link MultipartError}; limits
 * are enforced while reading, so nothing past a limit is read.
 *
 * @param contentType the response's `Content-Type` header value
 * @param body the response body (`fetch` body, Node stream, async iterable)
 */
export async function decodeMultipart(
  contentType: string,
  body: ByteSource,
  options: DecodeOptions,
): Promise<DecodedMultipart> {
  const limits: PushDecoderLimits = {
    maxContentBytes: limit('maxContentBytes', options.maxContentBytes, Number.NaN),
    maxMetadataBytes: limit('maxMetadataBytes', options.maxMetadataBytes, DEFAULTS.maxMetadataBytes),
    maxHeaderBytes: limit('maxHeaderBytes', options.maxHeaderBytes, DEFAULTS.maxHeaderBytes),
    maxHeaderLines: limit('maxHeaderLines', options.maxHeaderLines, DEFAULTS.maxHeaderLines),
    maxPreambleBytes: limit('maxPreambleBytes', options.maxPreambleBytes, DEFAULTS.maxPreambleBytes),
  };
  const { signal } = options;
  const reader = chunkReader(body);
  const onAbort = (): void => {
    void reader.cancel(signal?.reason);
  };
  // What the push core found during the last push, for the stream to take.
  let head: MultipartHead | undefined;
  const pieces: Buffer[] = [];
  let ended = false;
  let deferred: { error: unknown } | undefined;
  try {
    signal?.throwIfAborted();
    const boundary = parseBoundary(contentType);
    const decoder = new MultipartPushDecoder(boundary, limits, {
      onHead: (found) => {
        head = found;
      },
      onContent: (piece) => {
        pieces.push(piece);
      },
      onEnd: () => {
        ended = true;
      },
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    // Reads one chunk into the decoder. A failure after media pieces of the
    // same chunk is held back until the stream has delivered them.
    const feed = async (): Promise<void> => {
      const r = await reader.read();
      signal?.throwIfAborted();
      try {
        if (r.done) decoder.end();
        else decoder.push(r.value as Uint8Array);
      } catch (error) {
        if (head === undefined) throw error;
        deferred = { error };
      }
    };
    while (head === undefined) await feed();
    // Once the media part's headers are read, every failure belongs to the content stream.
    const found: MultipartHead = head;
    if (found.location !== undefined) {
      signal?.removeEventListener('abort', onAbort);
      await reader.cancel();
      return { kind: 'location', metadata: found.metadata, headers: found.headers, location: found.location };
    }
    const cleanup = (): void => signal?.removeEventListener('abort', onAbort);
    return {
      kind: 'content',
      metadata: found.metadata,
      headers: found.headers,
      contentType: found.headers['content-type'],
      contentDisposition: found.headers['content-disposition'],
      stream: contentStream({ pieces, isEnded: () => ended, failure: () => deferred, feed, reader, signal, cleanup }),
    };
  } catch (err) {
    signal?.removeEventListener('abort', onAbort);
    const reason = signal?.aborted === true ? signal.reason : err;
    await reader.cancel(reason);
    throw reason;
  }
}

interface ContentSource {
  /** Media pieces the decoder produced and the stream has not enqueued yet. */
  readonly pieces: Buffer[];
  isEnded(): boolean;
  /** A decoding failure held back behind {@link pieces}. */
  failure(): { error: unknown } | undefined;
  /** Reads one more source chunk into the decoder. */
  feed(): Promise<void>;
  readonly reader: ChunkReader;
  readonly signal: AbortSignal | undefined;
  readonly cleanup: () => void;
}

function contentStream(source: ContentSource): ReadableStream<Uint8Array> {
  const { pieces, reader, signal, cleanup } = source;
  let next = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          signal?.throwIfAborted();
          // Hot path: one source read and one synchronous push per chunk,
          // the chunk enqueued as it is. Only read when the consumer reads
          // (back-pressure); a chunk holding only a delimiter yields nothing.
          while (next === pieces.length && !source.isEnded() && source.failure() === undefined) {
            next = 0;
            pieces.length = 0;
            await source.feed();
          }
          if (next < pieces.length) {
            controller.enqueue(pieces[next++]!);
            return;
          }
          const failure = source.failure();
          if (failure !== undefined) throw failure.error;
          cleanup();
          controller.close();
          await reader.cancel();
        } catch (err) {
          cleanup();
          const reason = signal?.aborted === true ? signal.reason : err;
          pieces.length = 0;
          controller.error(reason);
          await reader.cancel(reason);
        }
      },
      async cancel(reason) {
        cleanup();
        pieces.length = 0;
        await reader.cancel(reason);
      },
    },
    // Read from the body only when the consumer reads (backpressure).
    { highWaterMark: 0 },
  );
}
