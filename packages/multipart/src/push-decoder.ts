import { MultipartParseError, MultipartTooLargeError, type MultipartLimit } from './errors.js';
import { MultipartParser } from './internal/parser.js';
import { toBuffer } from './internal/source.js';

/** Limits of a {@link MultipartPushDecoder}, all in bytes but `maxHeaderLines`. */
export interface PushDecoderLimits {
  /** Largest media part accepted (the caller's max file size). */
  readonly maxContentBytes: number;
  /** Largest JSON metadata part (and ignored `Location` part body). */
  readonly maxMetadataBytes: number;
  /** Largest header block of one part, line ends included. */
  readonly maxHeaderBytes: number;
  /** Most header lines in one part. */
  readonly maxHeaderLines: number;
  /** Largest preamble before the first delimiter. */
  readonly maxPreambleBytes: number;
}

/** The metadata and the media part's headers, known before any media byte. */
export interface MultipartHead {
  /** The first part's JSON object. */
  readonly metadata: Record<string, unknown>;
  /** The second part's headers, names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  /** The absolute `http:`/`https:` URL of a `Location` part; undefined when the media is inline. */
  readonly location: string | undefined;
}

/** Receives what a {@link MultipartPushDecoder} finds, synchronously, from inside `push`/`end`. */
export interface MultipartPushHandler {
  /**
   * The media part's headers were read. Inline media: its bytes follow as
   * {@link onContent} calls. `Location` form: called once the body is
   * complete (its closing delimiter read), and {@link onEnd} follows at once.
   */
  onHead(head: MultipartHead): void;
  /** A piece of the media, a view into a pushed chunk (never a copy); valid as long as that chunk is. */
  onContent(chunk: Buffer): void;
  /** The body is complete (closing delimiter, or end of input after the MSC3916 plain delimiter). */
  onEnd(): void;
}

type Phase = 'preamble' | 'metadata-headers' | 'metadata' | 'media-headers' | 'content' | 'location' | 'trailer' | 'done';

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
 * The synchronous core of {@link decodeMultipart}: push the bytes of a
 * federation media body (RFC 2046 §5.1) in as they come, and the handler
 * is called with the head, each media piece, and the end, from inside the
 * `push` that completed them. No promise, no stream, no copy of media bytes
 * on the way: a chunk holding only media is handed on as it is.
 *
 * Same tolerance and strictness as {@link decodeMultipart} (which is built on
 * it): every failure is a `MultipartError` thrown from `push` or `end`, and
 * after one the decoder accepts nothing more. Limits are checked as bytes
 * arrive, so the caller can stop reading at the first chunk past one.
 *
 * @example
 * ```ts
 * const decoder = new MultipartPushDecoder(parseBoundary(contentType), limits, {
 *   onHead: (head) => console.log(head.headers['content-type']),
 *   onContent: (piece) => file.write(piece),
 *   onEnd: () => file.end(),
 * });
 * for await (const chunk of body) decoder.push(chunk);
 * decoder.end();
 * ```
 */
export class MultipartPushDecoder {
  readonly #parser: MultipartParser;
  readonly #limits: PushDecoderLimits;
  readonly #handler: MultipartPushHandler;
  #phase: Phase = 'preamble';
  /** Bytes of the current preamble, metadata or ignored body; then of media. */
  #counted = 0;
  #metadataPieces: Buffer[] = [];
  #metadata: Record<string, unknown> | undefined;
  #failed: unknown;
  /** A `Location` head, reported once the body is complete. */
  #pendingHead: MultipartHead | undefined;

  /** `boundary` as {@link parseBoundary} returns it. Throws `RangeError` for a limit that is not a non-negative integer (or Infinity). */
  constructor(boundary: string, limits: PushDecoderLimits, handler: MultipartPushHandler) {
    for (const [name, value] of Object.entries(limits)) {
      if (!(value >= 0) || (!Number.isSafeInteger(value) && value !== Number.POSITIVE_INFINITY)) {
        throw new RangeError(`MultipartPushDecoder: ${name} must be a non-negative integer`);
      }
    }
    this.#limits = limits;
    this.#handler = handler;
    this.#parser = new MultipartParser(boundary, { maxHeaderBytes: limits.maxHeaderBytes, maxHeaderLines: limits.maxHeaderLines });
  }

  /** Whether the body is complete ({@link MultipartPushHandler.onEnd} was called). */
  get done(): boolean {
    return this.#phase === 'done';
  }

  /** Feeds the next bytes of the body. Throws a `MultipartError` when they break it. */
  push(chunk: Uint8Array): void {
    this.#check();
    if (this.#phase === 'done') {
      // Past the closing delimiter: the epilogue is ignored (RFC 2046 §5.1.1).
      return;
    }
    this.#parser.push(toBuffer(chunk));
    this.#run();
  }

  /** The body ended. Throws `MultipartTruncatedError` unless it was complete. */
  end(): void {
    this.#check();
    if (this.#phase === 'done') return;
    this.#parser.endOfInput();
    this.#run();
  }

  #check(): void {
    if (this.#failed !== undefined) throw this.#failed;
  }

  #count(bytes: number, max: number, limit: MultipartLimit): void {
    this.#counted += bytes;
    if (this.#counted > max) throw new MultipartTooLargeError(limit, max);
  }

  #run(): void {
    try {
      this.#advance();
    } catch (error) {
      this.#failed = error;
      this.#parser.clear();
      throw error;
    }
  }

  #advance(): void {
    const parser = this.#parser;
    const limits = this.#limits;
    for (;;) {
      switch (this.#phase) {
        case 'content': {
          // The hot path: one scan per chunk, the chunk handed on as it is.
          for (;;) {
            const piece = parser.step();
            if (piece === undefined) return;
            if (typeof piece === 'string') {
              this.#phase = piece === 'part' ? 'trailer' : 'done';
              break;
            }
            this.#count(piece.length, limits.maxContentBytes, 'contentBytes');
            this.#handler.onContent(piece);
          }
          if (this.#phase === 'done') {
            parser.clear();
            this.#handler.onEnd();
            return;
          }
          continue;
        }
        case 'preamble': {
          const piece = parser.step();
          if (piece === undefined) return;
          if (typeof piece === 'string') {
            if (piece !== 'part') throw new MultipartParseError('body has no parts');
            this.#phase = 'metadata-headers';
            this.#counted = 0;
          } else this.#count(piece.length, limits.maxPreambleBytes, 'preambleBytes');
          continue;
        }
        case 'metadata-headers': {
          const headers = parser.readHeaders();
          if (headers === undefined) return;
          const jsonType = headers['content-type'];
          // Synapse requires exactly `application/json`; we accept parameters and,
          // like MMR, an untyped part.
          if (jsonType !== undefined && jsonType.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
            throw new MultipartParseError('first part is not application/json');
          }
          this.#phase = 'metadata';
          continue;
        }
        case 'metadata': {
          const piece = parser.step();
          if (piece === undefined) return;
          if (typeof piece === 'string') {
            if (piece !== 'part') throw new MultipartParseError('body has no media part');
            this.#metadata = parseMetadata(Buffer.concat(this.#metadataPieces, this.#counted));
            this.#metadataPieces = [];
            this.#counted = 0;
            this.#phase = 'media-headers';
          } else {
            this.#count(piece.length, limits.maxMetadataBytes, 'metadataBytes');
            this.#metadataPieces.push(piece);
          }
          continue;
        }
        case 'media-headers': {
          const headers = parser.readHeaders();
          if (headers === undefined) return;
          const location = headers['location'];
          if (location !== undefined) {
            this.#pendingHead = { metadata: this.#metadata!, headers, location: checkLocation(location) };
            this.#phase = 'location';
            continue;
          }
          const declared = headers['content-length'];
          if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limits.maxContentBytes) {
            throw new MultipartTooLargeError('contentBytes', limits.maxContentBytes);
          }
          this.#phase = 'content';
          this.#handler.onHead({ metadata: this.#metadata!, headers, location: undefined });
          continue;
        }
        case 'location': {
          // Its body SHOULD be empty and is ignored, but must still be framed.
          const piece = parser.step();
          if (piece === undefined) return;
          if (typeof piece === 'string') {
            if (piece !== 'part') {
              this.#finishLocation();
              return;
            }
            this.#phase = 'trailer';
          } else this.#count(piece.length, limits.maxMetadataBytes, 'metadataBytes');
          continue;
        }
        case 'trailer': {
          if (!parser.skipTrailer()) return;
          if (this.#pendingHead !== undefined) {
            this.#finishLocation();
            return;
          }
          this.#phase = 'done';
          parser.clear();
          this.#handler.onEnd();
          return;
        }
        case 'done':
          return;
      }
    }
  }

  #finishLocation(): void {
    const head = this.#pendingHead!;
    this.#pendingHead = undefined;
    this.#phase = 'done';
    this.#parser.clear();
    this.#handler.onHead(head);
    this.#handler.onEnd();
  }
}
