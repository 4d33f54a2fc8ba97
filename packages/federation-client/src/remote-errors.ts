/**
 * How remote answers and failures become errors: the Matrix errcode of an
 * error body, whether an answer means "unknown endpoint" (fall back to the
 * legacy media endpoints), and the `RemoteMediaError` that `fetchMedia`
 * reports for anything that went wrong.
 */
import { RemoteMediaError, type RemoteMediaFailure } from '@hsmedia/media-core';
import { isMultipartError, type MultipartError } from '@hsmedia/multipart';
import { isFederationError } from './errors.js';
import { readAll, type TransportResponse } from './transport.js';

/** Error bodies are read for their errcode only. */
const ERROR_BODY_MAX = 64 * 1024;

/** What a remote's error answer says. */
export interface RemoteErrorInfo {
  readonly status: number;
  readonly errcode: string | undefined;
  /** The body parsed as a JSON object. */
  readonly isJson: boolean;
  readonly isEmpty: boolean;
}

/** Reads a (small) error body and pulls out the Matrix errcode. */
export async function readRemoteError(res: TransportResponse): Promise<RemoteErrorInfo> {
  let text = '';
  try {
    text = (await readAll(res.body, ERROR_BODY_MAX)).toString('utf8');
  } catch {
    // An oversized or broken error body is just "not JSON".
    text = '\u0000';
  }
  let errcode: string | undefined;
  let isJson = false;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      isJson = true;
      const code = (value as Record<string, unknown>)['errcode'];
      if (typeof code === 'string') errcode = code;
    }
  } catch {
    // not JSON
  }
  return { status: res.status, errcode, isJson, isEmpty: text.trim() === '' };
}

/**
 * Whether a failed v1 request means "the remote does not know this
 * endpoint", so the legacy endpoint should be tried
 * (https://spec.matrix.org/v1.12/server-server-api/#content-repository).
 * The spec names 404/405 `M_UNRECOGNIZED`; like Synapse we also accept
 * 404/405 with an empty or non-JSON body and 400 `M_UNRECOGNIZED`. A
 * `404 M_NOT_FOUND` is a real "not found" and never falls back.
 */
export function isUnknownEndpoint(status: number, errcode: string | undefined, bodyIsJson: boolean): boolean {
  if (status === 404 || status === 405) return !bodyIsJson || errcode === 'M_UNRECOGNIZED';
  return status === 400 && errcode === 'M_UNRECOGNIZED';
}

/** The `RemoteMediaError` for a remote error status. Never passes a remote 5xx through. */
export function failureForStatus(status: number, errcode: string | undefined): RemoteMediaFailure {
  if (status === 404) return 'not_found';
  if (status === 401 || status === 403) return 'forbidden';
  if (status === 413 || errcode === 'M_TOO_LARGE') return 'too_large';
  if (status === 504 || errcode === 'M_NOT_YET_UPLOADED') return 'timeout';
  return 'bad_response';
}

/** The `RemoteMediaError` of a remote's error answer. */
export function remoteError(info: RemoteErrorInfo, what: string): RemoteMediaError {
  return new RemoteMediaError(
    failureForStatus(info.status, info.errcode),
    `${what}: remote answered ${info.status}${info.errcode === undefined ? '' : ` ${info.errcode}`}`,
    { remoteStatus: info.status, ...(info.errcode === undefined ? {} : { remoteErrcode: info.errcode }) },
  );
}

/** Turns whatever a fetch or a body stream threw into a `RemoteMediaError` (abort reasons pass through). */
export function toRemoteMediaError(error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (error instanceof RemoteMediaError) return error;
  if (isFederationError(error)) {
    const failure: RemoteMediaFailure =
      error.code === 'remote_error'
        ? failureForStatus(error.remoteStatus ?? 502, error.remoteErrcode)
        : error.code === 'too_large' || error.code === 'timeout' || error.code === 'unreachable'
          ? error.code
          : 'bad_response';
    return new RemoteMediaError(failure, error.message, {
      cause: error,
      ...(error.remoteStatus === undefined ? {} : { remoteStatus: error.remoteStatus }),
      ...(error.remoteErrcode === undefined ? {} : { remoteErrcode: error.remoteErrcode }),
    });
  }
  if (isMultipartError(error)) {
    const m = error as MultipartError & { limit?: string };
    const failure = m.code === 'TOO_LARGE' && m.limit === 'contentBytes' ? 'too_large' : 'bad_response';
    return new RemoteMediaError(failure, `Remote multipart body: ${m.message}`, { cause: error });
  }
  return new RemoteMediaError('bad_response', `Remote media fetch failed: ${(error as Error | null)?.message ?? String(error)}`, {
    cause: error,
  });
}
