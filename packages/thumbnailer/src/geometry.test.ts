import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { thumbnailGeometry } from './geometry.js';

// Worked examples of Synapse's integer maths under the rules of https://spec.matrix.org/v1.12/client-server-api/#thumbnails
describe('thumbnailGeometry: worked examples', () => {
  it('1000x500 scale 320x240 → 320x160', () => {
    expect(thumbnailGeometry(1000, 500, { width: 320, height: 240, method: 'scale' })).toEqual({
      width: 320,
      height: 160,
      resizeWidth: 320,
      resizeHeight: 160,
      crop: null,
      original: false,
    });
  });
  it('1000x500 scale 640x480 → 640x320', () => {
    const g = thumbnailGeometry(1000, 500, { width: 640, height: 480, method: 'scale' });
    expect([g.width, g.height, g.original]).toEqual([640, 320, false]);
  });
  it('500x1000 scale 320x240 → 120x240', () => {
    const g = thumbnailGeometry(500, 1000, { width: 320, height: 240, method: 'scale' });
    expect([g.width, g.height, g.original]).toEqual([120, 240, false]);
  });
  it('1000x500 crop 96x96 → scale to 192x96, crop (48,0,144,96)', () => {
    expect(thumbnailGeometry(1000, 500, { width: 96, height: 96, method: 'crop' })).toEqual({
      width: 96,
      height: 96,
      resizeWidth: 192,
      resizeHeight: 96,
      crop: { left: 48, top: 0, width: 96, height: 96 },
      original: false,
    });
  });
  it('1000x500 crop 32x32 → scale to 64x32, crop (16,0,48,32)', () => {
    expect(thumbnailGeometry(1000, 500, { width: 32, height: 32, method: 'crop' })).toEqual({
      width: 32,
      height: 32,
      resizeWidth: 64,
      resizeHeight: 32,
      crop: { left: 16, top: 0, width: 32, height: 32 },
      original: false,
    });
  });
  it('200x100 scale 800x600 → the original (no upscaling)', () => {
    expect(thumbnailGeometry(200, 100, { width: 800, height: 600, method: 'scale' })).toEqual({
      width: 200,
      height: 100,
      resizeWidth: 200,
      resizeHeight: 100,
      crop: null,
      original: true,
    });
  });
  it('200x100 crop 96x96 → scale to 192x96, crop (48,0,144,96)', () => {
    expect(thumbnailGeometry(200, 100, { width: 96, height: 96, method: 'crop' })).toEqual({
      width: 96,
      height: 96,
      resizeWidth: 192,
      resizeHeight: 96,
      crop: { left: 48, top: 0, width: 96, height: 96 },
      original: false,
    });
  });
  it('64x64 crop 96x96 → the original 64x64 (never upscale)', () => {
    const g = thumbnailGeometry(64, 64, { width: 96, height: 96, method: 'crop' });
    expect([g.width, g.height, g.original, g.crop]).toEqual([64, 64, true, null]);
  });
});

describe('thumbnailGeometry: edges', () => {
  it('a tall source cropped to a wide box crops top and bottom', () => {
    expect(thumbnailGeometry(500, 1000, { width: 96, height: 32, method: 'crop' })).toEqual({
      width: 96,
      height: 32,
      resizeWidth: 96,
      resizeHeight: 192,
      crop: { left: 0, top: 80, width: 96, height: 32 },
      original: false,
    });
  });
  it('a source smaller on one side only is cut without scaling', () => {
    expect(thumbnailGeometry(1000, 50, { width: 96, height: 96, method: 'crop' })).toEqual({
      width: 96,
      height: 50,
      resizeWidth: 1000,
      resizeHeight: 50,
      crop: { left: 452, top: 0, width: 96, height: 50 },
      original: false,
    });
  });
  it('a 1x1 source is its own thumbnail for every method', () => {
    for (const method of ['crop', 'scale'] as const) {
      expect(thumbnailGeometry(1, 1, { width: 32, height: 32, method }).original).toBe(true);
    }
  });
  it('an extreme panorama scales to at least one pixel high', () => {
    const g = thumbnailGeometry(10000, 10, { width: 320, height: 240, method: 'scale' });
    expect([g.width, g.height]).toEqual([320, 1]);
  });
  it('a box the size of the source keeps the source', () => {
    expect(thumbnailGeometry(320, 240, { width: 320, height: 240, method: 'scale' }).original).toBe(true);
    expect(thumbnailGeometry(320, 240, { width: 320, height: 240, method: 'crop' }).original).toBe(true);
  });
});

describe('thumbnailGeometry: properties', () => {
  const dimension = fc.integer({ min: 1, max: 5000 });
  const request = fc.record({
    width: fc.integer({ min: 1, max: 2000 }),
    height: fc.integer({ min: 1, max: 2000 }),
    method: fc.constantFrom('crop' as const, 'scale' as const),
  });

  it('never upscales, and the crop box lies inside the scaled image', () => {
    fc.assert(
      fc.property(dimension, dimension, request, (sw, sh, req) => {
        const g = thumbnailGeometry(sw, sh, req);
        expect(g.resizeWidth).toBeLessThanOrEqual(sw);
        expect(g.resizeHeight).toBeLessThanOrEqual(sh);
        expect(g.width).toBeGreaterThanOrEqual(1);
        expect(g.height).toBeGreaterThanOrEqual(1);
        if (g.crop !== null) {
          expect(g.crop.left + g.crop.width).toBeLessThanOrEqual(g.resizeWidth);
          expect(g.crop.top + g.crop.height).toBeLessThanOrEqual(g.resizeHeight);
          expect([g.crop.width, g.crop.height]).toEqual([g.width, g.height]);
        } else {
          expect([g.resizeWidth, g.resizeHeight]).toEqual([g.width, g.height]);
        }
      }),
    );
  });

  it('crop is exactly the box unless the source is smaller; scale fills one side of the box', () => {
    fc.assert(
      fc.property(dimension, dimension, request, (sw, sh, req) => {
        const g = thumbnailGeometry(sw, sh, req);
        if (g.original) {
          expect([g.width, g.height]).toEqual([sw, sh]);
          return;
        }
        if (req.method === 'crop') {
          expect(g.width).toBe(Math.min(req.width, sw));
          expect(g.height).toBe(Math.min(req.height, sh));
        } else {
          expect(g.width <= req.width && g.height <= req.height).toBe(true);
          expect(g.width === req.width || g.height === req.height).toBe(true);
        }
      }),
    );
  });
});
