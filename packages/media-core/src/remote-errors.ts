import { ContentTooLargeError, errors, MatrixError } from '@hsmedia/errors';
import type { Logger } from '@hsmedia/runtime';
import { RemoteMediaError } from './errors.js';

/**
 * The error a client gets for a failed fetch of remote media: 404 when the
 * remote has no such media, 502 `M_TOO_LARGE` over the size limit, 504 on
 * a time-out, 502 otherwise; never the remote's own status passed through.
 */
export function remoteFailureToMatrixError(err: unknown, logger: Logger, media: { serverName: string; mediaId: string }): MatrixError {
  if (err instanceof MatrixError) return err;
  if (err instanceof ContentTooLargeError) return errors.remoteTooLarge();
  if (err instanceof RemoteMediaError) {
    logger.info({ ...media, failure: err.code, err }, 'remote media fetch failed');
    switch (err.code) {
      case 'not_found':
        return errors.notFound('Media not found');
      case 'too_large':
        return errors.remoteTooLarge();
      case 'timeout':
        return errors.remoteTimeout();
      default:
        return errors.remoteFailed();
    }
  }
  logger.error({ ...media, err }, 'remote media fetch failed unexpectedly');
  return errors.remoteFailed();
}
