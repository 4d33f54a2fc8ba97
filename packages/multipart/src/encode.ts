import { randomUUID } from 'node:crypto';
import { isWritableBoundary } from './content-type.js';
import { MultipartTooLargeError, MultipartTruncatedError } from './errors.js';
import { chunkReader, toBuffer, type ByteSource } from './internal/source.js';

/** Inline media for the second part (the first form of the federation download answer). */
export interface EncodeContent {
  /** The media bytes. Read only as fast as the body is consumed. */
  readonly stream: ByteSource;
  /**
   * The part's `Content-Type` value, as computed for client downloads
   * (https://spec.matrix.org/v1.12/client-server-api/#serving-inline-content).
   */
  readonly contentType: string;
  /**
   * The full `Content-Disposition` value
   * (https://spec.matrix.org/v1.12/client-server-api/#serving-inline-content); written as given.
   */
  readonly contentDisposition?: string;
  /**
   * Exact byte length of `stream`, when known. Enables
   * {@link EncodedMultipart.contentLength}; the body errors if the stream
   * yields a different number of bytes, so a wrong length never goes out.
   */
  readonly contentLength?: number;
}

/** A redirect for the second part (the `Location` form). */
export interface EncodeLocation {
  /** Absolute URL the requester fetches without X-Matrix auth. */
  readonly location: string;
}

/** Input of {@link encodeMultipart}. */
export interface EncodeOptions {
  /** The first part's JSON object. Default `{}` (every spec version so far). */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** The second part: inline bytes or a `Location`. */
  readonly content: EncodeContent | EncodeLocation;
  /**
   * Fixed boundary, for tests and reproducible output: 1–70 characters of
   * `[0-9A-Za-z'+_.-]`. Default: 32 random lowercase hex characters, like
   * Synapse's `uuid4().hex`. Must not occur in the content.
   */
  readonly boundary?: string;
  /** Aborts the body stream (it errors with `signal.reason`) and cancels `content.stream`. */
  readonly signal?: AbortSignal;
}

/** Output of {@link encodeMultipart}. */
export interface EncodedMultipart {
  /** The exact response `Content-Type`: `multipart/mixed; boundary=<b>`. */
  readonly contentType: string;
  /** Total body length in bytes, when the content length is known (always for `Location`). */
  readonly contentLength: number | undefined;
  /** The boundary used. */
  readonly boundary: string;
  /** The body; pull-based, so it reads the content only as fast as it is consumed. */
  readonly body: ReadableStream<Uint8Array>;
}

const CRLF = '\r\n';

function headerValue(name: string, value: string): string {
  // A CR or LF would let a value inject headers or end the header block.
  if (/[\r\n\0]/.test(value)) throw new TypeError(`encodeMultipart: ${name} contains a line break or NUL`);
  return value;
}

/** Input of {@link multipartFrame}: {@link EncodeOptions} without the content's bytes. */
export interface MultipartFrameOptions {
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly content: Pick<EncodeContent, 'contentType' | 'contentDisposition'> | EncodeLocation;
  readonly boundary?: string;
}

/** The framing of a content part, for a writer that sends the content itself: see {@link multipartFrame}. */
export interface MultipartFrame {
  /** The exact response `Content-Type`: `multipart/mixed; boundary=<b>`. */
  readonly contentType: string;
  readonly boundary: string;
  /** Everything before the content's bytes: the metadata part and the content part's headers. */
  readonly head: Buffer;
  /** Everything after them: the closing delimiter. */
  readonly tail: Buffer;
}

/**
 * The bytes {@link encodeMultipart} writes around the content, for a server
 * that writes the content itself (straight from a file, say): the answer is
 * `head`, exactly the content's bytes, then `tail`, byte for byte what
 * `encodeMultipart` would have produced.
 */
export function multipartFrame(options: MultipartFrameOptions): MultipartFrame {
  // randomUUID draws from Node's pooled CSPRNG output (no syscall per answer): 122 random bits as 32 hex characters.
  const boundary = options.boundary ?? randomUUID().replaceAll('-', '');
  if (!isWritableBoundary(boundary)) {
    throw new TypeError("encodeMultipart: boundary must be 1-70 characters of [0-9A-Za-z'+_.-]");
  }
  const metadata = options.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new TypeError('encodeMultipart: metadata must be a JSON object');
  }
  const json = JSON.stringify(metadata);
  const { content } = options;
  let partHeaders: string;
  if ('location' in content) {
    partHeaders = `Location: ${headerValue('location', content.location)}${CRLF}`;
  } else {
    partHeaders = `Content-Type: ${headerValue('contentType', content.contentType)}${CRLF}`;
    if (content.contentDisposition !== undefined) {
      partHeaders += `Content-Disposition: ${headerValue('contentDisposition', content.contentDisposition)}${CRLF}`;
    }
  }
  const head = Buffer.from(
    `${CRLF}--${boundary}${CRLF}Content-Type: application/json${CRLF}${CRLF}${json}${CRLF}` +
      `--${boundary}${CRLF}${partHeaders}${CRLF}`,
    'utf8',
  );
  const tail = Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'latin1');
  return { contentType: `multipart/mixed; boundary=${boundary}`, boundary, head, tail };
}

/**
 * Encodes a federation media response
 * (https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediadownloadmediaid) in the layout
 * the most widely deployed servers expect (Synapse's `_MultipartParserProtocol`,
 * https://github.com/element-hq/synapse/blob/develop/synapse/http/client.py): unquoted
 * boundary as the last `Content-Type` parameter, first part with exactly one
 * header `Content-Type: application/json`, CRLF line ends, a leading CRLF,
 * `CRLF--b--CRLF` at the end and no epilogue. The content is streamed
 * through without copies.
 */
export function encodeMultipart(options: EncodeOptions): EncodedMultipart {
  const { contentType, boundary, head, tail } = multipartFrame(options);
  const { content, signal } = options;

  if ('location' in content) {
    // The Location part has an empty body.
    const whole = Buffer.concat([head, tail]);
    return {
      contentType,
      contentLength: whole.length,
      boundary,
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(whole);
          controller.close();
        },
      }),
    };
  }

  const declared = content.contentLength;
  if (declared !== undefined && !(Number.isSafeInteger(declared) && declared >= 0)) {
    throw new RangeError('encodeMultipart: contentLength must be a non-negative integer');
  }
  const reader = chunkReader(content.stream);
  let written = 0;
  let headSent = false;
  const onAbort = (): void => {
    void reader.cancel(signal?.reason);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const cleanup = (): void => signal?.removeEventListener('abort', onAbort);

  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          signal?.throwIfAborted();
          if (!headSent) {
            headSent = true;
            controller.enqueue(head);
            return;
          }
          let r = await reader.read();
          signal?.throwIfAborted();
          let chunk = r.done ? undefined : toBuffer(r.value);
          while (chunk !== undefined && chunk.length === 0) {
            r = await reader.read();
            chunk = r.done ? undefined : toBuffer(r.value);
          }
          if (chunk !== undefined) {
            written += chunk.length;
            if (declared !== undefined && written > declared) {
              throw new MultipartTooLargeError('contentBytes', declared, 'content stream is longer than contentLength');
            }
            controller.enqueue(chunk);
            return;
          }
          if (declared !== undefined && written !== declared) {
            throw new MultipartTruncatedError(`content stream ended after ${written} of ${declared} bytes`);
          }
          controller.enqueue(tail);
          controller.close();
          cleanup();
        } catch (err) {
          cleanup();
          const reason = signal?.aborted === true ? signal.reason : err;
          controller.error(reason);
          await reader.cancel(reason);
        }
      },
      async cancel(reason) {
        cleanup();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return {
    contentType,
    contentLength: declared === undefined ? undefined : head.length + declared + tail.length,
    boundary,
    body,
  };
}
