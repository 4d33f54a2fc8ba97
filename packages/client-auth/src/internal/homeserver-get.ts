import { ErrCode, MatrixError } from '@hsmedia/errors';

/** What a failed call was for, in the words of its error messages ("checking the access token"). */
export interface HomeserverQuestion {
  /** Completes "Timed out …" and "Could not reach the homeserver …" when the call fails. */
  readonly timedOut: string;
  readonly unreachable: string;
}

/**
 * GETs `url` from the homeserver with the caller's access token (no redirects, bounded by
 * `timeoutMs`). A call that fails or times out is a {@link MatrixError} `M_UNKNOWN` with 502 or 504:
 * the homeserver, not the client, is at fault.
 */
export async function getFromHomeserver(
  fetchImpl: typeof fetch,
  url: string,
  token: string,
  timeoutMs: number,
  question: HomeserverQuestion,
): Promise<Response> {
  try {
    return await fetchImpl(url, {
      method: 'GET',
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const timedOut = (err as { name?: unknown }).name === 'TimeoutError';
    throw new MatrixError(ErrCode.UNKNOWN, timedOut ? question.timedOut : question.unreachable, {
      httpStatus: timedOut ? 504 : 502,
      cause: err,
    });
  }
}
