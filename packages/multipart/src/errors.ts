/**
 * Typed errors of the multipart codec. Every failure the decoder (and the
 * encoder's framing checks) can raise is one of these three, so the HTTP
 * edge can map them without string matching: a peer's malformed body and a
 * truncated body are usually `502`, a body over the caller's limit is
 * `502 M_TOO_LARGE` (remote content too large, https://spec.matrix.org/v1.12/client-server-api/#content-repository).
 */

/** Machine-readable kind of a {@link MultipartError}. */
export type MultipartErrorCode = 'MALFORMED' | 'TOO_LARGE' | 'TRUNCATED';

/** Which limit a {@link MultipartTooLargeError} hit. */
export type MultipartLimit =
  | 'preambleBytes'
  | 'headerBytes'
  | 'headerLines'
  | 'metadataBytes'
  | 'contentBytes';

/** Options accepted by every {@link MultipartError} constructor. */
export interface MultipartErrorOptions {
  /** The underlying error, for logs. */
  readonly cause?: unknown;
}

// `Symbol.for` so that errors made by another installed copy of this
// package are still recognised (see `isMultipartError`).
const BRAND: symbol = Symbol.for('hsmedia.error.MultipartError');

/**
 * Base class of every error this package throws for a bad body. Use
 * `instanceof` on the subclasses or switch on {@link MultipartError.code}.
 * `instanceof` works across duplicate copies of the package.
 */
export class MultipartError extends Error {
  /** The code instances of this class carry; `undefined` on the base class. */
  static readonly code: MultipartErrorCode | undefined = undefined;
  override readonly name: string = 'MultipartError';
  /** What went wrong, in one word. */
  readonly code: MultipartErrorCode;

  constructor(code: MultipartErrorCode, message: string, options: MultipartErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    Object.defineProperty(this, BRAND, { value: code });
  }

  /** Brand-based `instanceof`: the base matches any code, a subclass only its own. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (!isMultipartError(value)) return false;
    const want = (this as { readonly code?: MultipartErrorCode | undefined }).code;
    return want === undefined || value.code === want;
  }
}

/** The body does not follow RFC 2046 / the federation media format (bad header, wrong part count, non-object JSON, ...). */
export class MultipartParseError extends MultipartError {
  static override readonly code: 'MALFORMED' = 'MALFORMED';
  override readonly name: string = 'MultipartParseError';
  constructor(message: string, options: MultipartErrorOptions = {}) {
    super('MALFORMED', message, options);
  }
}

/** The body ended before the closing delimiter: never treat what was read as a whole file. */
export class MultipartTruncatedError extends MultipartError {
  static override readonly code: 'TRUNCATED' = 'TRUNCATED';
  override readonly name: string = 'MultipartTruncatedError';
  constructor(message: string, options: MultipartErrorOptions = {}) {
    super('TRUNCATED', message, options);
  }
}

/** A limit was exceeded while streaming; nothing past the limit was read. */
export class MultipartTooLargeError extends MultipartError {
  static override readonly code: 'TOO_LARGE' = 'TOO_LARGE';
  override readonly name: string = 'MultipartTooLargeError';
  /** The limit that was exceeded. */
  readonly limit: MultipartLimit;
  /** Its configured value. */
  readonly max: number;
  constructor(limit: MultipartLimit, max: number, message?: string, options: MultipartErrorOptions = {}) {
    super('TOO_LARGE', message ?? `multipart ${limit} limit of ${max} exceeded`, options);
    this.limit = limit;
    this.max = max;
  }
}

/** True for any {@link MultipartError}, whichever installed copy of this package made it. */
export function isMultipartError(value: unknown): value is MultipartError {
  if (typeof value !== 'object' || value === null) return false;
  const code = (value as Record<symbol, unknown>)[BRAND];
  return code === 'MALFORMED' || code === 'TOO_LARGE' || code === 'TRUNCATED';
}
