import { describe, expect, it } from 'vitest';
import * as root from './index.js';
import { DEFAULT_MAX_THUMBNAIL_DIMENSION, DEFAULT_THUMBNAIL_SIZES } from './config.js';

describe('@hsmedia/thumbnailer/config', () => {
  it('exports the very defaults the package root exports', () => {
    expect(DEFAULT_THUMBNAIL_SIZES).toBe(root.DEFAULT_THUMBNAIL_SIZES);
    expect(DEFAULT_MAX_THUMBNAIL_DIMENSION).toBe(root.DEFAULT_MAX_THUMBNAIL_DIMENSION);
    expect(DEFAULT_MAX_THUMBNAIL_DIMENSION).toBe(16384);
    expect(Object.isFrozen(DEFAULT_THUMBNAIL_SIZES)).toBe(true);
  });
});
