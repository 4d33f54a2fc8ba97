/**
 * Typed errors of the media domain. The HTTP edge maps them to MatrixError;
 * `MediaService` already does so for the cases it owns.
 */

const TOO_LARGE: symbol = Symbol.for('hsmedia.error.ContentTooLargeError');
const REMOTE: symbol = Symbol.for('hsmedia.error.RemoteMediaError');

/** More bytes arrived than the limit allows. Thrown while streaming, not after. */
export class ContentTooLargeError extends Error {
  override readonly name: 'ContentTooLargeError' = 'ContentTooLargeError';
  readonly limit: number;
  constructor(limit: number, message: string = `Content exceeds the limit of ${limit} bytes`) {
    super(message);
    this.limit = limit;
    Object.defineProperty(this, TOO_LARGE, { value: true });
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TOO_LARGE] === true;
  }
}

/** Why a remote fetch failed; decides the Matrix error the client sees. */
export type RemoteMediaFailure =
  | 'not_found' // the remote says it has no such media (404 M_NOT_FOUND)
  | 'too_large' // over max download size (502 M_TOO_LARGE)
  | 'timeout' // remote too slow (504)
  | 'unreachable' // DNS, connect, TLS, refused by SSRF guard (502)
  | 'bad_response' // malformed multipart, truncated body, remote 5xx (502)
  | 'forbidden'; // the remote refused us (403 upstream → 502 for clients? see MediaService)

/** A failed fetch of another server's media. */
export class RemoteMediaError extends Error {
  override readonly name: 'RemoteMediaError' = 'RemoteMediaError';
  readonly failure: RemoteMediaFailure;
  /** The remote's HTTP status and errcode, when it answered. */
  readonly remoteStatus: number | undefined;
  readonly remoteErrcode: string | undefined;
  constructor(
    failure: RemoteMediaFailure,
    message: string,
    options: { remoteStatus?: number; remoteErrcode?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.failure = failure;
    this.remoteStatus = options.remoteStatus;
    this.remoteErrcode = options.remoteErrcode;
    Object.defineProperty(this, REMOTE, { value: true });
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[REMOTE] === true;
  }
}
