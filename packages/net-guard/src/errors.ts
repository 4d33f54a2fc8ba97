/**
 * The one error this package throws when an outbound connection would reach
 * an address the policy refuses.
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
