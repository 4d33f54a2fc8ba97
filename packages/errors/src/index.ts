/**
 * One `MatrixError` class and the single errcode → HTTP status table.
 *
 * Library packages throw their own typed errors; the HTTP edge turns them
 * into a `MatrixError`, which renders as `{"errcode", "error", ...data}`.
 */

/** The errcodes this project emits. Spelled exactly as the spec spells them. */
export const ErrCode = {
  FORBIDDEN: 'M_FORBIDDEN',
  UNKNOWN_TOKEN: 'M_UNKNOWN_TOKEN',
  MISSING_TOKEN: 'M_MISSING_TOKEN',
  UNAUTHORIZED: 'M_UNAUTHORIZED',
  GUEST_ACCESS_FORBIDDEN: 'M_GUEST_ACCESS_FORBIDDEN',
  BAD_JSON: 'M_BAD_JSON',
  NOT_JSON: 'M_NOT_JSON',
  NOT_FOUND: 'M_NOT_FOUND',
  LIMIT_EXCEEDED: 'M_LIMIT_EXCEEDED',
  USER_LIMIT_EXCEEDED: 'M_USER_LIMIT_EXCEEDED',
  UNRECOGNIZED: 'M_UNRECOGNIZED',
  UNKNOWN: 'M_UNKNOWN',
  MISSING_PARAM: 'M_MISSING_PARAM',
  INVALID_PARAM: 'M_INVALID_PARAM',
  TOO_LARGE: 'M_TOO_LARGE',
  CANNOT_OVERWRITE_MEDIA: 'M_CANNOT_OVERWRITE_MEDIA',
  NOT_YET_UPLOADED: 'M_NOT_YET_UPLOADED',
} as const;

/** A spec errcode (or any other `M_`/namespaced string a caller chooses). */
export type ErrCodeValue = (typeof ErrCode)[keyof typeof ErrCode];

/**
 * The default HTTP status of each errcode. Where the spec uses one errcode
 * with several statuses (`M_TOO_LARGE` 413 on upload, 502 for remote media;
 * `M_UNRECOGNIZED` 404 or 405), the default is the common one and the
 * caller passes the other explicitly.
 */
export const DEFAULT_STATUS: Readonly<Record<ErrCodeValue, number>> = Object.freeze({
  M_FORBIDDEN: 403,
  M_UNKNOWN_TOKEN: 401,
  M_MISSING_TOKEN: 401,
  M_UNAUTHORIZED: 401,
  M_GUEST_ACCESS_FORBIDDEN: 403,
  M_BAD_JSON: 400,
  M_NOT_JSON: 400,
  M_NOT_FOUND: 404,
  M_LIMIT_EXCEEDED: 429,
  M_USER_LIMIT_EXCEEDED: 403,
  M_UNRECOGNIZED: 404,
  M_UNKNOWN: 500,
  M_MISSING_PARAM: 400,
  M_INVALID_PARAM: 400,
  M_TOO_LARGE: 413,
  M_CANNOT_OVERWRITE_MEDIA: 409,
  M_NOT_YET_UPLOADED: 504,
});

/** Status for an errcode; unknown errcodes are client errors (400). */
export function statusForErrCode(errcode: string): number {
  return (DEFAULT_STATUS as Record<string, number>)[errcode] ?? 400;
}

/** Options for {@link MatrixError}. */
export interface MatrixErrorOptions {
  /** HTTP status; defaults to the errcode's row in {@link DEFAULT_STATUS}. */
  readonly httpStatus?: number;
  /** Extra top-level JSON fields, e.g. `retry_after_ms`. */
  readonly data?: Readonly<Record<string, unknown>>;
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The underlying error, kept for logs only (never sent to clients). */
  readonly cause?: unknown;
}

const BRAND: symbol = Symbol.for('hsmedia.error.MatrixError');

/**
 * A Matrix error response. Carries Koa's conventions (`status`, `expose`,
 * `headers`) so that Koa's own handler still degrades sanely if our
 * error middleware is missing.
 */
export class MatrixError extends Error {
  override readonly name: 'MatrixError' = 'MatrixError';
  readonly errcode: string;
  readonly httpStatus: number;
  readonly data: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
  /** Koa alias of {@link httpStatus}. */
  readonly status: number;
  /** Koa: the message is meant for the client. */
  readonly expose: boolean = true;

  constructor(errcode: string, message: string, options: MatrixErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.errcode = errcode;
    this.httpStatus = options.httpStatus ?? statusForErrCode(errcode);
    this.status = this.httpStatus;
    this.data = Object.freeze({ ...options.data });
    this.headers = Object.freeze({ ...options.headers });
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** The response body: `{errcode, error, ...data}`. */
  toJSON(): Record<string, unknown> {
    return { ...this.data, errcode: this.errcode, error: this.message };
  }

  /** `instanceof` that also recognises errors from another copy of this package. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isMatrixError(value);
  }
}

/** True for any `MatrixError`, whichever installed copy of this package made it. */
export function isMatrixError(value: unknown): value is MatrixError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** Shorthands for the errors every endpoint needs. Each returns a new error. */
export const errors = {
  notFound: (message: string = 'Not found'): MatrixError => new MatrixError(ErrCode.NOT_FOUND, message),
  forbidden: (message: string = 'Forbidden'): MatrixError => new MatrixError(ErrCode.FORBIDDEN, message),
  missingToken: (message: string = 'Missing access token'): MatrixError =>
    new MatrixError(ErrCode.MISSING_TOKEN, message),
  unknownToken: (message: string = 'Unrecognised access token', softLogout: boolean = false): MatrixError =>
    new MatrixError(ErrCode.UNKNOWN_TOKEN, message, softLogout ? { data: { soft_logout: true } } : {}),
  unrecognized: (message: string = 'Unrecognized request', httpStatus: number = 404): MatrixError =>
    new MatrixError(ErrCode.UNRECOGNIZED, message, { httpStatus }),
  tooLarge: (message: string = 'Content is too large', httpStatus: number = 413): MatrixError =>
    new MatrixError(ErrCode.TOO_LARGE, message, { httpStatus }),
  invalidParam: (message: string): MatrixError => new MatrixError(ErrCode.INVALID_PARAM, message),
  missingParam: (message: string): MatrixError => new MatrixError(ErrCode.MISSING_PARAM, message),
  badJson: (message: string = 'Invalid JSON'): MatrixError => new MatrixError(ErrCode.BAD_JSON, message),
  notJson: (message: string = 'Content not JSON'): MatrixError => new MatrixError(ErrCode.NOT_JSON, message),
  unknown: (message: string = 'Internal server error', httpStatus: number = 500): MatrixError =>
    new MatrixError(ErrCode.UNKNOWN, message, { httpStatus }),
  limitExceeded: (retryAfterMs: number, message: string = 'Too many requests'): MatrixError =>
    new MatrixError(ErrCode.LIMIT_EXCEEDED, message, {
      data: { retry_after_ms: Math.max(0, Math.ceil(retryAfterMs)) },
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
    }),
  notYetUploaded: (message: string = 'Content has not yet been uploaded'): MatrixError =>
    new MatrixError(ErrCode.NOT_YET_UPLOADED, message),
  cannotOverwrite: (message: string = 'Media already uploaded'): MatrixError =>
    new MatrixError(ErrCode.CANNOT_OVERWRITE_MEDIA, message),
  // The statuses below are the spec's for media fetched from another server (client-server
  // spec, "Content repository": a remote failure is the gateway's, 502, or a time-out, 504).
  /** Remote media over the size this server fetches: 502 `M_TOO_LARGE`. */
  remoteTooLarge: (message: string = 'Remote content is too large'): MatrixError =>
    new MatrixError(ErrCode.TOO_LARGE, message, { httpStatus: 502 }),
  /** The remote server did not answer in time: 504 `M_UNKNOWN`. */
  remoteTimeout: (message: string = 'Timed out fetching remote media'): MatrixError =>
    new MatrixError(ErrCode.UNKNOWN, message, { httpStatus: 504 }),
  /** The remote server could not be reached or answered badly: 502 `M_UNKNOWN`. */
  remoteFailed: (message: string = 'Failed to fetch remote media'): MatrixError =>
    new MatrixError(ErrCode.UNKNOWN, message, { httpStatus: 502 }),
  /** Content that cannot be thumbnailed (unsupported or corrupt): 400 `M_UNKNOWN`, as Synapse answers. */
  cannotThumbnail: (message: string = 'Cannot generate thumbnails for the requested content'): MatrixError =>
    new MatrixError(ErrCode.UNKNOWN, message, { httpStatus: 400 }),
} as const;

export { ContentTooLargeError } from './content-too-large.js';
