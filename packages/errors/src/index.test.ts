import { describe, expect, it } from 'vitest';
import { DEFAULT_STATUS, ErrCode, MatrixError, errors, isMatrixError, statusForErrCode } from './index.js';

describe('errcode → status table', () => {
  const expected: Record<string, number> = {
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
  };
  it.each(Object.entries(expected))('%s is %i', (errcode, status) => {
    expect(DEFAULT_STATUS[errcode as keyof typeof DEFAULT_STATUS]).toBe(status);
    expect(new MatrixError(errcode, 'x').httpStatus).toBe(status);
  });
  it('covers every ErrCode constant', () => {
    expect(Object.keys(DEFAULT_STATUS).sort()).toEqual(Object.values(ErrCode).sort());
    expect(Object.keys(expected).sort()).toEqual(Object.values(ErrCode).sort());
  });
  it('treats unknown errcodes as 400', () => {
    expect(statusForErrCode('ORG_EXAMPLE_CUSTOM')).toBe(400);
  });
});

describe('MatrixError', () => {
  it('renders {errcode, error, ...data} and keeps Koa aliases', () => {
    const e = errors.limitExceeded(1500);
    expect(e.toJSON()).toEqual({ errcode: 'M_LIMIT_EXCEEDED', error: 'Too many requests', retry_after_ms: 1500 });
    expect(e.headers['Retry-After']).toBe('2');
    expect(e.status).toBe(429);
    expect(e.expose).toBe(true);
    expect(JSON.parse(JSON.stringify(e))).toEqual(e.toJSON());
  });
  it('data cannot override errcode or error', () => {
    const e = new MatrixError('M_FORBIDDEN', 'no', { data: { errcode: 'M_X', error: 'y' } });
    expect(e.toJSON()).toEqual({ errcode: 'M_FORBIDDEN', error: 'no' });
  });
  it('honours an explicit status', () => {
    expect(errors.tooLarge('remote too big', 502).httpStatus).toBe(502);
    expect(errors.unrecognized('wrong method', 405).status).toBe(405);
  });
  it('is recognised across copies through the Symbol.for brand', () => {
    const foreign = Object.create(null) as Record<PropertyKey, unknown>;
    foreign[Symbol.for('hsmedia.error.MatrixError')] = true;
    expect(isMatrixError(foreign)).toBe(true);
    expect(foreign instanceof MatrixError).toBe(true);
    expect(new Error('x') instanceof MatrixError).toBe(false);
    expect(isMatrixError(null)).toBe(false);
    expect(errors.notFound() instanceof MatrixError).toBe(true);
    expect(errors.notFound() instanceof Error).toBe(true);
  });
  it('soft logout flag', () => {
    expect(errors.unknownToken('gone', true).toJSON()).toMatchObject({ soft_logout: true });
  });
});
