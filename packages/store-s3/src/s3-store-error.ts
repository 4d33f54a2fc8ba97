const BRAND: symbol = Symbol.for('hsmedia.error.S3StoreError');

/**
 * Why an object-store call failed; the HTTP edge maps it to a Matrix error
 * (`unavailable` and `timeout` → 503, the rest → 502).
 */
export type S3StoreFailure =
  | 'unavailable' // connection refused or reset, DNS failure, a 5xx from the service
  | 'timeout' // no answer within the request timeout
  | 'access_denied' // wrong or missing credentials, a policy refusal (403)
  | 'no_such_bucket' // the configured bucket does not exist
  | 'bad_response'; // anything else the service answered that the store cannot use

/** A failed call to the object store, with the service's error name and status when it answered. */
export class S3StoreError extends Error {
  override readonly name: 'S3StoreError' = 'S3StoreError';
  readonly code: S3StoreFailure;
  /** The S3 error code (`NoSuchBucket`, `SlowDown`, …) or the Node error code (`ECONNREFUSED`). */
  readonly serviceCode: string | undefined;
  readonly httpStatus: number | undefined;
  constructor(
    failure: S3StoreFailure,
    message: string,
    options: { serviceCode?: string | undefined; httpStatus?: number | undefined; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = failure;
    this.serviceCode = options.serviceCode;
    this.httpStatus = options.httpStatus;
    Object.defineProperty(this, BRAND, { value: true });
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
const TIMEOUT_CODES: ReadonlySet<string> = new Set(['ETIMEDOUT', 'TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const DENIED_CODES: ReadonlySet<string> = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'CredentialsProviderError',
]);

/**
 * Classifies an SDK or network error. The caller's own abort passes through
 * untouched (it is "the request went away", not a store failure), as do
 * errors that are already an {@link S3StoreError}.
 */
export function toS3StoreError(error: unknown, operation: string): unknown {
  if (error instanceof S3StoreError) return error;
  if (typeof error !== 'object' || error === null) return new S3StoreError('bad_response', `${operation}: ${String(error)}`);
  const { name, code, $metadata, message } = error as {
    name?: unknown;
    code?: unknown;
    $metadata?: { httpStatusCode?: unknown };
    message?: unknown;
  };
  if (name === 'AbortError') return error;
  const serviceCode = typeof code === 'string' ? code : typeof name === 'string' ? name : undefined;
  const httpStatus = typeof $metadata?.httpStatusCode === 'number' ? $metadata.httpStatusCode : undefined;
  const text = `${operation}: ${typeof message === 'string' && message !== '' ? message : (serviceCode ?? 'failed')}`;
  const make = (failure: S3StoreFailure): S3StoreError =>
    new S3StoreError(failure, text, { serviceCode, httpStatus, cause: error });
  const names = [code, name].filter((value): value is string => typeof value === 'string');
  if (names.some((value) => TIMEOUT_CODES.has(value))) return make('timeout');
  if (names.some((value) => UNAVAILABLE_CODES.has(value))) return make('unavailable');
  if (names.includes('NoSuchBucket')) return make('no_such_bucket');
  if (names.some((value) => DENIED_CODES.has(value)) || httpStatus === 403) return make('access_denied');
  if (httpStatus !== undefined && httpStatus >= 500) return make('unavailable');
  return make('bad_response');
}
