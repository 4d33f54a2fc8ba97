/**
 * Typed errors of this package. They are not HTTP errors: the HTTP edge
 * (for example `@hsmedia/xmatrix-auth`) maps them to a `MatrixError`.
 *
 * Each class carries a `Symbol.for` brand so that `instanceof` also works
 * across duplicate installed copies of this package.
 */

/**
 * Why a signature, header or key could not be used.
 *
 * - `MISSING_AUTH`: no `Authorization: X-Matrix` header at all.
 * - `MALFORMED_HEADER`: an X-Matrix header that does not parse, or lacks `origin`, `key` or `sig`.
 * - `INVALID_SERVER_NAME`: a server name outside the grammar (spec appendix "Server Name").
 * - `DESTINATION_MISMATCH`: the header names another server as `destination` (spec: MUST 401).
 * - `INVALID_BASE64`: a signature or key that is not (unpadded) base64.
 * - `INVALID_KEY`: key material of the wrong length or algorithm, or an unreadable key file.
 * - `MISSING_SIGNATURE`: no usable signature by the expected entity.
 * - `UNKNOWN_KEY`: no currently valid verify key could be found for the key ID.
 * - `BAD_SIGNATURE`: a signature that does not verify.
 * - `KEY_FETCH_FAILED`: a `/_matrix/key/v2/server` or notary answer that could not be used.
 */
export type SignatureErrorCode =
  | 'MISSING_AUTH'
  | 'MALFORMED_HEADER'
  | 'INVALID_SERVER_NAME'
  | 'DESTINATION_MISMATCH'
  | 'INVALID_BASE64'
  | 'INVALID_KEY'
  | 'MISSING_SIGNATURE'
  | 'UNKNOWN_KEY'
  | 'BAD_SIGNATURE'
  | 'KEY_FETCH_FAILED';

const SIGNATURE_BRAND: symbol = Symbol.for('hsmedia.error.SignatureError');
const CANONICAL_BRAND: symbol = Symbol.for('hsmedia.error.CanonicalJsonError');

/** A signature, X-Matrix header or server key that cannot be trusted. */
export class SignatureError extends Error {
  override readonly name: 'SignatureError' = 'SignatureError';
  /** Stable machine-readable reason. */
  readonly code: SignatureErrorCode;

  constructor(code: SignatureErrorCode, message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    Object.defineProperty(this, SIGNATURE_BRAND, { value: true });
  }

  /** `instanceof` that also recognises errors from another copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isSignatureError(value);
  }
}

/** True for any {@link SignatureError}, whichever installed copy made it. */
export function isSignatureError(value: unknown): value is SignatureError {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SIGNATURE_BRAND] === true
  );
}

/**
 * A value that has no Canonical JSON form: a float, an integer outside
 * `[-(2**53)+1, 2**53-1]`, a lone surrogate, `undefined`, a cycle, a
 * non-plain object (spec appendix "Canonical JSON").
 */
export class CanonicalJsonError extends TypeError {
  override readonly name: 'CanonicalJsonError' = 'CanonicalJsonError';
  /** JSON-pointer-like path of the offending value, e.g. `/content/size`. */
  readonly path: string;

  constructor(message: string, path: string) {
    super(`${message} at ${path === '' ? '/' : path}`);
    this.path = path;
    Object.defineProperty(this, CANONICAL_BRAND, { value: true });
  }

  /** `instanceof` that also recognises errors from another copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isCanonicalJsonError(value);
  }
}

/** True for any {@link CanonicalJsonError}, whichever installed copy made it. */
export function isCanonicalJsonError(value: unknown): value is CanonicalJsonError {
  return (
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[CANONICAL_BRAND] === true
  );
}
