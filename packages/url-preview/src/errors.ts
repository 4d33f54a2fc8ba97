/**
 * The typed errors of this package, and the one place that turns them into
 * Matrix errors. The spec (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url)
 * documents only `429` for
 * `preview_url`; the statuses below follow Synapse, which is what clients
 * already see in practice.
 */
import { ErrCode, MatrixError } from '@hsmedia/errors';

const PREVIEW_BRAND: symbol = Symbol.for('hsmedia.error.PreviewError');
const CONFIG_BRAND: symbol = Symbol.for('hsmedia.error.PreviewConfigError');

/** Why a preview could not be made. Each code has one row in {@link previewErrorToMatrixError}. */
export type PreviewErrorCode =
  /** Not an absolute http(s) URL, carries credentials, or is too long. */
  | 'invalid_url'
  /** The URL (or a redirect target) matches an operator's URL deny rule. */
  | 'url_denied'
  /** The address connected to (or a redirect's) is refused by the IP range policy. */
  | 'address_blocked'
  /** The host name does not resolve. */
  | 'dns_failure'
  /** Connection refused or reset, TLS failure, malformed HTTP. */
  | 'unreachable'
  /** The site answered with a non-2xx status. */
  | 'upstream_status'
  /** More redirects than allowed, or a redirect without a usable `Location`. */
  | 'too_many_redirects'
  /** The site did not answer, or not completely, within the time limit. */
  | 'timeout'
  /** An image (the URL itself) is larger than the byte or pixel limit. */
  | 'too_large'
  /** The URL is neither HTML nor a supported image. */
  | 'unsupported_content_type'
  /** Our own side failed (storing the image, say). */
  | 'internal';

/** Options of {@link PreviewError}. */
export interface PreviewErrorOptions {
  /** The site's HTTP status, for `upstream_status`. */
  readonly upstreamStatus?: number;
  readonly cause?: unknown;
}

/**
 * A preview failed. The message is safe to show to the requesting user (it
 * names the URL they sent, never our internal addresses or stack).
 * `instanceof` works across duplicate installs of this package.
 */
export class PreviewError extends Error {
  override readonly name: 'PreviewError' = 'PreviewError';
  /** Why; the one discriminator of every `@hsmedia` error is `code`. */
  readonly code: PreviewErrorCode;
  readonly upstreamStatus: number | undefined;

  constructor(code: PreviewErrorCode, message: string, options: PreviewErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.upstreamStatus = options.upstreamStatus;
    Object.defineProperty(this, PREVIEW_BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return isPreviewError(value);
  }
}

/** True for any {@link PreviewError}, whichever installed copy made it. */
export function isPreviewError(value: unknown): value is PreviewError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PREVIEW_BRAND] === true;
}

/**
 * The previewer's options are unusable: every problem found, not just the
 * first. Thrown by `createUrlPreviewer` at start-up, never per request.
 */
export class PreviewConfigError extends Error {
  override readonly name: 'PreviewConfigError' = 'PreviewConfigError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Invalid URL preview configuration: ${problems.join('; ')}`);
    this.problems = Object.freeze([...problems]);
    Object.defineProperty(this, CONFIG_BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[CONFIG_BRAND] === true;
  }
}

/** Status and errcode of each code (Synapse's answers; see the README's table). */
const MATRIX_ERROR_OF_CODE: Readonly<Record<PreviewErrorCode, { status: number; errcode: string; message: string }>> = {
  invalid_url: { status: 400, errcode: ErrCode.INVALID_PARAM, message: 'Invalid URL' },
  url_denied: { status: 403, errcode: ErrCode.UNKNOWN, message: 'URL blocked' },
  address_blocked: { status: 403, errcode: ErrCode.UNKNOWN, message: 'IP address blocked' },
  dns_failure: { status: 502, errcode: ErrCode.UNKNOWN, message: 'DNS resolution failure during URL preview generation' },
  unreachable: { status: 502, errcode: ErrCode.UNKNOWN, message: 'Failed to download content' },
  upstream_status: { status: 502, errcode: ErrCode.UNKNOWN, message: 'Got error' },
  too_many_redirects: { status: 502, errcode: ErrCode.UNKNOWN, message: 'Too many redirects' },
  timeout: { status: 504, errcode: ErrCode.UNKNOWN, message: 'Timed out fetching the URL' },
  too_large: { status: 502, errcode: ErrCode.TOO_LARGE, message: 'Requested file is too large' },
  unsupported_content_type: {
    status: 502,
    errcode: ErrCode.UNKNOWN,
    message: "Requested file's content type not allowed for this operation",
  },
  internal: { status: 500, errcode: ErrCode.UNKNOWN, message: 'Internal server error' },
};

/**
 * The Matrix error a client gets for a failed preview. `PreviewError`s keep
 * their (user-safe) message; anything else becomes a bare 500 `M_UNKNOWN`
 * so that internal details never reach the client. Abort reasons should be
 * handled by the caller before this (the client went away).
 *
 * @example
 * try { ctx.body = await previewer.preview(url, { requester }); }
 * catch (error) { throw previewErrorToMatrixError(error); }
 */
export function previewErrorToMatrixError(error: unknown): MatrixError {
  if (!isPreviewError(error)) {
    const fallback = MATRIX_ERROR_OF_CODE.internal;
    return new MatrixError(fallback.errcode, fallback.message, { httpStatus: fallback.status, cause: error });
  }
  const row = MATRIX_ERROR_OF_CODE[error.code];
  const message = error.code === 'internal' ? row.message : error.message;
  return new MatrixError(row.errcode, message, { httpStatus: row.status, cause: error });
}
