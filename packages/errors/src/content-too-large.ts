const TOO_LARGE: symbol = Symbol.for('hsmedia.error.ContentTooLargeError');

/**
 * More bytes arrived than a limit allows. Thrown by byte stores and readers
 * while streaming, not after; the HTTP edge answers 413 `M_TOO_LARGE` (or
 * 502 for remote media, see `errors.remoteTooLarge`). Lives here, at the
 * bottom of the package graph, so every layer can throw and recognise it.
 */
export class ContentTooLargeError extends Error {
  override readonly name: 'ContentTooLargeError' = 'ContentTooLargeError';
  readonly code: 'too_large' = 'too_large';
  readonly limit: number;
  constructor(limit: number, message: string = `Content exceeds the limit of ${limit} bytes`) {
    super(message);
    this.limit = limit;
    Object.defineProperty(this, TOO_LARGE, { value: true });
  }
  /** `instanceof` that also recognises errors from another installed copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TOO_LARGE] === true;
  }
}
