import { parseBoundary } from './content-type.js';
import { MultipartParseError, MultipartTooLargeError } from './errors.js';
import { MultipartParser } from './internal/parser.js';
import { chunkReader, type ByteSource } from './internal/source.js';

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

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseMetadata(bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    // Trim: the MSC3916 example puts a blank line after the JSON
    // (https://github.com/matrix-org/matrix-spec-proposals/pull/3916).
    value = JSON.parse(utf8.decode(bytes).trim());
  } catch (cause) {
    throw new MultipartParseError('metadata part is not valid JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MultipartParseError('metadata part is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function checkLocation(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new MultipartParseError('Location header is not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new MultipartParseError('Location header is not an http(s) URL');
  }
  return value;
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
  const maxContentBytes = limit('maxContentBytes', options.maxContentBytes, Number.NaN);
  const maxMetadataBytes = limit('maxMetadataBytes', options.maxMetadataBytes, DEFAULTS.maxMetadataBytes);
  const maxHeaderBytes = limit('maxHeaderBytes', options.maxHeaderBytes, DEFAULTS.maxHeaderBytes);
  const maxHeaderLines = limit('maxHeaderLines', options.maxHeaderLines, DEFAULTS.maxHeaderLines);
  const maxPreambleBytes = limit('maxPreambleBytes', options.maxPreambleBytes, DEFAULTS.maxPreambleBytes);
  const { signal } = options;
  const reader = chunkReader(body);
  let parser: MultipartParser | undefined;
  const onAbort = (): void => {
    void reader.cancel(signal?.reason);
  };
  try {
    signal?.throwIfAborted();
    const boundary = parseBoundary(contentType);
    parser = new MultipartParser(reader, boundary, { maxHeaderBytes, maxHeaderLines }, signal);
    signal?.addEventListener('abort', onAbort, { once: true });

    // Preamble, then the JSON part (part 1).
    if ((await parser.skipBody(maxPreambleBytes, 'preambleBytes')) !== 'part') {
      throw new MultipartParseError('body has no parts');
    }
    const h1 = await parser.readHeaders();
    const jsonType = h1['content-type'];
    // Synapse requires exactly `application/json`; we accept parameters and,
    // like MMR, an untyped part.
    if (jsonType !== undefined && jsonType.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
      throw new MultipartParseError('first part is not application/json');
    }
    const meta = await parser.collectBody(maxMetadataBytes, 'metadataBytes');
    if (meta.kind !== 'part') throw new MultipartParseError('body has no media part');
    const metadata = parseMetadata(meta.bytes);

    // The media part (part 2).
    const headers = await parser.readHeaders();
    const location = headers['location'];
    if (location !== undefined) {
      const url = checkLocation(location);
      // Its body SHOULD be empty and is ignored, but must still be framed.
      const kind = await parser.skipBody(maxMetadataBytes, 'metadataBytes');
      if (kind === 'part') await parser.expectEnd();
      signal?.removeEventListener('abort', onAbort);
      await parser.release();
      return { kind: 'location', metadata, headers, location: url };
    }
    const declared = headers['content-length'];
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxContentBytes) {
      throw new MultipartTooLargeError('contentBytes', maxContentBytes);
    }
    return {
      kind: 'content',
      metadata,
      headers,
      contentType: headers['content-type'],
      contentDisposition: headers['content-disposition'],
      stream: contentStream(parser, maxContentBytes, signal, () => signal?.removeEventListener('abort', onAbort)),
    };
  } catch (err) {
    signal?.removeEventListener('abort', onAbort);
    const reason = signal?.aborted === true ? signal.reason : err;
    await (parser?.release(reason) ?? reader.cancel(reason));
    throw reason;
  }
}

function contentStream(
  parser: MultipartParser,
  max: number,
  signal: AbortSignal | undefined,
  cleanup: () => void,
): ReadableStream<Uint8Array> {
  let total = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          signal?.throwIfAborted();
          // Hot path: one source read (no wrapper promise) and one
          // synchronous scan per chunk, the chunk enqueued as it is.
          let r = parser.step();
          while (r === undefined) {
            parser.accept(await parser.read());
            r = parser.step();
          }
          if (typeof r !== 'string') {
            total += r.length;
            if (total > max) throw new MultipartTooLargeError('contentBytes', max);
            controller.enqueue(r);
            return;
          }
          if (r === 'part') await parser.expectEnd();
          cleanup();
          controller.close();
          await parser.release();
        } catch (err) {
          cleanup();
          const reason = signal?.aborted === true ? signal.reason : err;
          controller.error(reason);
          await parser.release(reason);
        }
      },
      async cancel(reason) {
        cleanup();
        await parser.release(reason);
      },
    },
    // Read from the body only when the consumer reads (backpressure).
    { highWaterMark: 0 },
  );
}
