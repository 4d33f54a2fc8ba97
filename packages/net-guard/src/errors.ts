/**
 * The errors of this package: `BlockedAddressError` when an outbound
 * connection would reach an address the policy refuses, and
 * `GuardedRequestError` for a guarded request's own limits.
 */

const BRAND: symbol = Symbol.for('hsmedia.error.BlockedAddressError');

/** Options of {@link BlockedAddressError}. */
export interface BlockedAddressErrorOptions {
  /** The host name that resolved to `address`, when the target was not an IP literal. */
  readonly hostname?: string;
  /** The range `address` falls in (from `classifyAddress`), for logs. */
  readonly range?: string;
  readonly cause?: unknown;
}

/**
 * An outbound connection was refused because its destination address is not
 * allowed (loopback, private, link-local or another non-public range, or a
 * configured deny range). Thrown before any packet is sent to the address.
 * `instanceof` works across duplicate installs of this package.
 */
export class BlockedAddressError extends Error {
  override readonly name: 'BlockedAddressError' = 'BlockedAddressError';
  /** Node-style error code, so generic socket error handling can spot it. */
  readonly code: 'ERR_BLOCKED_ADDRESS' = 'ERR_BLOCKED_ADDRESS';
  /** The refused IP address (empty when a host name resolved to nothing allowed). */
  readonly address: string;
  readonly hostname: string | undefined;
  readonly range: string | undefined;

  constructor(address: string, message: string, options: BlockedAddressErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.address = address;
    this.hostname = options.hostname;
    this.range = options.range;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isBlockedAddressError(value);
  }
}

/** True for any {@link BlockedAddressError}, whichever installed copy made it. */
export function isBlockedAddressError(value: unknown): value is BlockedAddressError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

const REQUEST_BRAND: symbol = Symbol.for('hsmedia.error.GuardedRequestError');

/**
 * Why a {@link GuardedHttpClient} request or its body failed, when the
 * reason is the request's own rule rather than the network:
 * - `invalid_url`: not an `http:` or `https:` URL.
 * - `timeout`: no connection, no response headers, or no body bytes within the configured time.
 * - `too_large`: the body passed `maxBodyBytes` (nothing past the limit is delivered).
 * - `truncated`: the connection ended before the body did (fewer bytes than `Content-Length`,
 *   or a chunked body without its last chunk).
 */
export type GuardedRequestErrorCode = 'invalid_url' | 'timeout' | 'too_large' | 'truncated';

/**
 * A guarded request failed by one of its own rules (see
 * {@link GuardedRequestErrorCode}). Network errors (`ECONNREFUSED`, TLS
 * failures, `HPE_*` parse errors) pass through unchanged, refused addresses
 * are {@link BlockedAddressError}s and aborts reject with the signal's
 * reason. `instanceof` works across duplicate installs of this package.
 */
export class GuardedRequestError extends Error {
  override readonly name: 'GuardedRequestError' = 'GuardedRequestError';
  readonly code: GuardedRequestErrorCode;

  constructor(code: GuardedRequestErrorCode, message: string, options: { readonly cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    Object.defineProperty(this, REQUEST_BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isGuardedRequestError(value);
  }
}

/** True for any {@link GuardedRequestError}, whichever installed copy made it. */
export function isGuardedRequestError(value: unknown): value is GuardedRequestError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[REQUEST_BRAND] === true;
}
