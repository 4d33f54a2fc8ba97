/**
 * The typed error of this package's own API (`getJson`, `resolveServer`,
 * the transport). `fetchMedia` reports failures as media-core's
 * `RemoteMediaError` instead, because that is what its port promises.
 */

const BRAND: symbol = Symbol.for('hsmedia.error.FederationError');

/** What went wrong with a federation request. */
export type FederationErrorCode =
  /** Invalid server name, DNS failure, connection refused, TLS failure, or an address refused by the SSRF guard. */
  | 'unreachable'
  /** No connection within the connect timeout, or no bytes within the idle timeout. */
  | 'timeout'
  /** The response is larger than the caller's limit. */
  | 'too_large'
  /** The response is malformed, cut short, or redirects too often. */
  | 'bad_response'
  /** The remote answered with an error status; see `remoteStatus`/`remoteErrcode`. */
  | 'remote_error';

/** Options of {@link FederationError}. */
export interface FederationErrorOptions {
  readonly remoteStatus?: number;
  readonly remoteErrcode?: string;
  readonly cause?: unknown;
}

/** A failed outbound federation request. `instanceof` works across duplicate installs. */
export class FederationError extends Error {
  override readonly name: 'FederationError' = 'FederationError';
  /** What went wrong; the one discriminator of every `@hsmedia` error is `code`. */
  readonly code: FederationErrorCode;
  /** The remote's HTTP status, when it answered. */
  readonly remoteStatus: number | undefined;
  /** The remote's `errcode`, when it answered with a Matrix error. */
  readonly remoteErrcode: string | undefined;

  constructor(code: FederationErrorCode, message: string, options: FederationErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.remoteStatus = options.remoteStatus;
    this.remoteErrcode = options.remoteErrcode;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isFederationError(value);
  }
}

/** True for any {@link FederationError}, whichever installed copy made it. */
export function isFederationError(value: unknown): value is FederationError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}
