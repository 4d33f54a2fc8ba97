/**
 * Typed errors of the media domain. `ContentTooLargeError` lives in
 * `@hsmedia/errors` (every layer throws it); the media services map these
 * to the `MatrixError` a client gets, with statuses from that package's table.
 */

const REMOTE: symbol = Symbol.for('hsmedia.error.RemoteMediaError');

/** Why a remote fetch failed; decides the Matrix error the client sees. */
export type RemoteMediaFailure =
  | 'not_found' // the remote says it has no such media (404 M_NOT_FOUND)
  | 'too_large' // over max download size (502 M_TOO_LARGE)
  | 'timeout' // remote too slow (504)
  | 'unreachable' // DNS, connect, TLS, refused by SSRF guard (502)
  | 'bad_response' // malformed multipart, truncated body, remote 5xx (502)
  | 'forbidden'; // the remote refused us (403 upstream → 502 for clients)

/** A failed fetch of another server's media. */
export class RemoteMediaError extends Error {
  override readonly name: 'RemoteMediaError' = 'RemoteMediaError';
  readonly code: RemoteMediaFailure;
  /** The remote's HTTP status and errcode, when it answered. */
  readonly remoteStatus: number | undefined;
  readonly remoteErrcode: string | undefined;
  constructor(
    failure: RemoteMediaFailure,
    message: string,
    options: { remoteStatus?: number; remoteErrcode?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = failure;
    this.remoteStatus = options.remoteStatus;
    this.remoteErrcode = options.remoteErrcode;
    Object.defineProperty(this, REMOTE, { value: true });
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[REMOTE] === true;
  }
}
