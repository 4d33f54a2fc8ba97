import { isMatrixError } from '@hsmedia/errors';
import { describe, expect, it } from 'vitest';
import { ThumbnailError, thumbnailErrorToMatrixError } from './errors.js';
import { DEFAULT_THUMBNAIL_SIZES, thumbnailSpecForRequest } from './params.js';

function errcodeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (isMatrixError(error)) return `${error.httpStatus} ${error.errcode}`;
    throw error;
  }
  return undefined;
}

describe('DEFAULT_THUMBNAIL_SIZES', () => {
  it('is the list the spec recommends, frozen', () => {
    expect(DEFAULT_THUMBNAIL_SIZES.map((s) => `${s.width}x${s.height} ${s.method}`)).toEqual([
      '32x32 crop',
      '96x96 crop',
      '320x240 scale',
      '640x480 scale',
      '800x600 scale',
    ]);
    expect(DEFAULT_THUMBNAIL_SIZES.every((s) => !s.animated)).toBe(true);
    expect(Object.isFrozen(DEFAULT_THUMBNAIL_SIZES)).toBe(true);
  });
});

describe('thumbnailSpecForRequest', () => {
  it('parses a full request, from a record or URLSearchParams', () => {
    expect(thumbnailSpecForRequest({ width: '96', height: '64', method: 'crop', animated: 'true' })).toEqual({
      width: 96,
      height: 64,
      method: 'crop',
      animated: true,
    });
    expect(thumbnailSpecForRequest(new URLSearchParams('width=320&height=240&animated=false'))).toEqual({
      width: 320,
      height: 240,
      method: 'scale',
      animated: false,
    });
  });

  it('defaults: method scale, animated false (or as configured); unstable animated name accepted', () => {
    expect(thumbnailSpecForRequest({ width: '1', height: '1' })).toEqual({ width: 1, height: 1, method: 'scale', animated: false });
    expect(thumbnailSpecForRequest({ width: '1', height: '1' }, { defaultAnimated: true }).animated).toBe(true);
    expect(thumbnailSpecForRequest({ width: '1', height: '1', 'org.matrix.msc2705.animated': 'true' }).animated).toBe(true);
  });

  it('a repeated parameter counts by its first value', () => {
    expect(thumbnailSpecForRequest({ width: ['32', '64'], height: '32' }).width).toBe(32);
  });

  it('missing width or height: 400 M_MISSING_PARAM', () => {
    expect(errcodeOf(() => thumbnailSpecForRequest({ height: '32' }))).toBe('400 M_MISSING_PARAM');
    expect(errcodeOf(() => thumbnailSpecForRequest({ width: '32' }))).toBe('400 M_MISSING_PARAM');
  });

  it.each([
    ['0'],
    ['-1'],
    ['1.5'],
    ['abc'],
    [''],
    [' 32'],
    ['0x20'],
    ['1e3'],
    ['16385'],
    ['99999999999999999999'],
  ])('width=%j: 400 M_INVALID_PARAM', (width) => {
    expect(errcodeOf(() => thumbnailSpecForRequest({ width, height: '32' }))).toBe('400 M_INVALID_PARAM');
  });

  it('bad method or animated: 400 M_INVALID_PARAM; the bound is configurable', () => {
    expect(errcodeOf(() => thumbnailSpecForRequest({ width: '1', height: '1', method: 'fit' }))).toBe('400 M_INVALID_PARAM');
    expect(errcodeOf(() => thumbnailSpecForRequest({ width: '1', height: '1', animated: 'yes' }))).toBe('400 M_INVALID_PARAM');
    expect(errcodeOf(() => thumbnailSpecForRequest({ width: '101', height: '1' }, { maxDimension: 100 }))).toBe(
      '400 M_INVALID_PARAM',
    );
  });
});

describe('thumbnailErrorToMatrixError', () => {
  it('maps codes to the answers of the thumbnail endpoint', () => {
    const unsupported = thumbnailErrorToMatrixError(new ThumbnailError('unsupported', 'x'));
    expect([unsupported.httpStatus, unsupported.errcode, unsupported.message]).toEqual([
      400,
      'M_UNKNOWN',
      'Cannot generate thumbnails for the requested content',
    ]);
    const corrupt = thumbnailErrorToMatrixError(new ThumbnailError('corrupt', 'x'));
    expect([corrupt.httpStatus, corrupt.errcode]).toEqual([400, 'M_UNKNOWN']);
    const local = thumbnailErrorToMatrixError(new ThumbnailError('too_large', 'x'));
    expect([local.httpStatus, local.errcode]).toEqual([413, 'M_TOO_LARGE']);
    const remote = thumbnailErrorToMatrixError(new ThumbnailError('too_large', 'x'), { remote: true });
    expect([remote.httpStatus, remote.errcode]).toEqual([502, 'M_TOO_LARGE']);
  });

  it('ThumbnailError is recognised across copies by its brand', () => {
    const error = new ThumbnailError('corrupt', 'x');
    expect(error).toBeInstanceOf(ThumbnailError);
    expect({ code: 'corrupt' }).not.toBeInstanceOf(ThumbnailError);
  });
});
