import { errors, type MatrixError } from '@hsmedia/errors';

const BRAND: symbol = Symbol.for('hsmedia.error.ThumbnailError');

/**
 * Why a thumbnail could not be made.
 * - `unsupported`: not an image type we thumbnail (SVG, PDF, video, unknown bytes, a type that lies).
 * - `too_large`: over the byte, pixel or time budget (decompression bombs land here).
 * - `corrupt`: looks like a supported image but does not decode.
 */
export type ThumbnailErrorCode = 'unsupported' | 'too_large' | 'corrupt';

/** A source that cannot be thumbnailed. Never a crash: every failure of the generator is one of these or an abort. */
export class ThumbnailError extends Error {
  override readonly name: 'ThumbnailError' = 'ThumbnailError';
  /** Why; the one discriminator of every `@hsmedia` error is `code`. */
  readonly code: ThumbnailErrorCode;
  constructor(code: ThumbnailErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }
  /** `instanceof` that also recognises errors from another copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/**
 * The Matrix error a client sees for a {@link ThumbnailError}
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid):
 * `too_large` → `M_TOO_LARGE` 413 (502 when `remote`, the content came from another server);
 * anything else → 400 `M_UNKNOWN` "Cannot generate thumbnails for the requested content".
 */
export function thumbnailErrorToMatrixError(error: ThumbnailError, options: { readonly remote?: boolean } = {}): MatrixError {
  if (error.code === 'too_large') {
    const message = 'The content is too large to thumbnail';
    return options.remote === true ? errors.remoteTooLarge(message) : errors.tooLarge(message);
  }
  return errors.cannotThumbnail();
}
