import { ContentTooLargeError, errors, MatrixError } from '@hsmedia/errors';
import type { Logger } from '@hsmedia/runtime';
import { RemoteMediaError } from './errors.js';

/** Which media a fetch was for, in log lines. */
export interface RemoteMediaRef {
  readonly serverName: string;
  readonly mediaId: string;
}

/**
 * The error a client gets for a failed fetch of remote media
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid):
 * 404 when the remote has no such media, 502 `M_TOO_LARGE` over the size limit, 504 on a time-out,
 * 502 otherwise; never the remote's own status passed through. The one exception is a remote's
 * `504 M_NOT_YET_UPLOADED` (its async upload is not finished,
 * https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid):
 * passed on as the origin meant it, so the client knows to retry later. Pure: see {@link logRemoteFailure}.
 */
export function remoteFailureToMatrixError(err: unknown): MatrixError {
  if (err instanceof MatrixError) return err;
  if (err instanceof ContentTooLargeError) return errors.remoteTooLarge();
  if (!(err instanceof RemoteMediaError)) return errors.remoteFailed();
  switch (err.code) {
    case 'not_found':
      return errors.notFound('Media not found');
    case 'too_large':
      return errors.remoteTooLarge();
    case 'timeout':
      return err.remoteErrcode === 'M_NOT_YET_UPLOADED'
        ? errors.notYetUploaded('The remote server has not finished uploading this media yet')
        : errors.remoteTimeout();
    default:
      return errors.remoteFailed();
  }
}

/**
 * Logs a failed remote fetch once. A failure any remote (or any user, by asking for unreachable
 * media) can cause at will is expected: `warn`, one line, no stack, so it can neither flood the
 * error log nor page anyone. Anything else is a bug here: `error` with the stack.
 */
export function logRemoteFailure(err: unknown, logger: Logger, media: RemoteMediaRef): void {
  if (err instanceof RemoteMediaError) {
    logger.warn(
      {
        ...media,
        failure: err.code,
        ...(err.remoteStatus === undefined ? {} : { remoteStatus: err.remoteStatus }),
        ...(err.remoteErrcode === undefined ? {} : { remoteErrcode: err.remoteErrcode }),
        reason: err.message,
      },
      'remote media fetch failed',
    );
  } else if (err instanceof ContentTooLargeError) {
    logger.warn({ ...media, failure: 'too_large', reason: err.message }, 'remote media fetch failed');
  } else if (!(err instanceof MatrixError)) {
    logger.error({ ...media, err }, 'remote media fetch failed unexpectedly');
  }
}
