import { describe, expect, it } from 'vitest';
import { isMatrixError } from '@hsmedia/errors';
import { PreviewError, isPreviewError, previewErrorToMatrixError, type PreviewErrorCode } from './errors.js';

describe('previewErrorToMatrixError', () => {
  it.each<[PreviewErrorCode, number, string]>([
    ['invalid_url', 400, 'M_INVALID_PARAM'],
    ['url_denied', 403, 'M_UNKNOWN'],
    ['address_blocked', 403, 'M_UNKNOWN'],
    ['dns_failure', 502, 'M_UNKNOWN'],
    ['unreachable', 502, 'M_UNKNOWN'],
    ['upstream_status', 502, 'M_UNKNOWN'],
    ['too_many_redirects', 502, 'M_UNKNOWN'],
    ['timeout', 504, 'M_UNKNOWN'],
    ['too_large', 502, 'M_TOO_LARGE'],
    ['unsupported_content_type', 502, 'M_UNKNOWN'],
    ['internal', 500, 'M_UNKNOWN'],
  ])('%s → %i %s', (code, status, errcode) => {
    const matrix = previewErrorToMatrixError(new PreviewError(code, 'message for the user'));
    expect(isMatrixError(matrix)).toBe(true);
    expect(matrix.httpStatus).toBe(status);
    expect(matrix.errcode).toBe(errcode);
  });

  it('hides the details of internal failures and of foreign errors', () => {
    expect(previewErrorToMatrixError(new PreviewError('internal', 'disk /var/x full')).message).toBe('Internal server error');
    const foreign = previewErrorToMatrixError(new Error('secret stack'));
    expect(foreign.toJSON()).toEqual({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
    expect(foreign.httpStatus).toBe(500);
  });

  it('recognises errors from another copy of the package', () => {
    const lookalike = new PreviewError('timeout', 'x');
    expect(isPreviewError(lookalike)).toBe(true);
    expect(isPreviewError(new Error('x'))).toBe(false);
    expect(lookalike instanceof PreviewError).toBe(true);
  });
});
