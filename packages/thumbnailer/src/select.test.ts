import type { ThumbnailSpec } from '@hsmedia/media-core';
import { describe, expect, it } from 'vitest';
import { selectThumbnail, type StoredThumbnailInfo } from './select.js';

/** What pre-generating the spec's sizes stores for a 1000x500 source. */
const stored: StoredThumbnailInfo[] = [
  { width: 32, height: 32, method: 'crop', animated: false, contentType: 'image/jpeg' },
  { width: 96, height: 96, method: 'crop', animated: false, contentType: 'image/jpeg' },
  { width: 320, height: 160, method: 'scale', animated: false, contentType: 'image/jpeg' },
  { width: 640, height: 320, method: 'scale', animated: false, contentType: 'image/jpeg' },
  { width: 800, height: 400, method: 'scale', animated: false, contentType: 'image/jpeg' },
];

const req = (width: number, height: number, method: 'crop' | 'scale', animated = false): ThumbnailSpec => ({
  width,
  height,
  method,
  animated,
});

describe('selectThumbnail (Synapse _select_thumbnail)', () => {
  it('exact stored sizes win', () => {
    expect(selectThumbnail(stored, req(32, 32, 'crop'))).toBe(stored[0]);
    expect(selectThumbnail(stored, req(96, 96, 'crop'))).toBe(stored[1]);
  });

  it('crop: the smallest at least as large with the closest aspect ratio', () => {
    expect(selectThumbnail(stored, req(50, 50, 'crop'))).toBe(stored[1]);
    expect(selectThumbnail(stored, req(20, 20, 'crop'))).toBe(stored[0]);
  });

  it('crop: aspect ratio ranks before size', () => {
    const candidates: StoredThumbnailInfo[] = [
      { width: 400, height: 100, method: 'crop', animated: false, contentType: 'image/jpeg' },
      { width: 200, height: 200, method: 'crop', animated: false, contentType: 'image/jpeg' },
    ];
    expect(selectThumbnail(candidates, req(100, 100, 'crop'))).toBe(candidates[1]);
  });

  it('scale: the closest that reaches the box on one side (a scaled image fits its box)', () => {
    // 320x160 is what scaling a 2:1 source into 320x240 gives: it is the answer, as in Synapse.
    expect(selectThumbnail(stored, req(320, 240, 'scale'))).toBe(stored[2]);
    // 640x320 reaches a 700x300 box on its height and is the closest; 320x160 reaches neither side.
    expect(selectThumbnail(stored, req(700, 300, 'scale'))).toBe(stored[3]);
    expect(selectThumbnail(stored, req(100, 100, 'scale'))).toBe(stored[2]);
    expect(selectThumbnail(stored, req(700, 350, 'scale'))).toBe(stored[4]);
  });

  it('nothing large enough: the closest (here the largest) of the method', () => {
    expect(selectThumbnail(stored, req(2000, 1500, 'scale'))).toBe(stored[4]);
    expect(selectThumbnail(stored, req(500, 500, 'crop'))).toBe(stored[1]);
  });

  it('only the requested method is a candidate', () => {
    expect(selectThumbnail(stored.slice(0, 2), req(320, 240, 'scale'))).toBeUndefined();
    expect(selectThumbnail(stored.slice(2), req(32, 32, 'crop'))).toBeUndefined();
    expect(selectThumbnail([], req(32, 32, 'crop'))).toBeUndefined();
  });

  it('animated=false never gets an animated thumbnail; animated=true prefers one', () => {
    const still: StoredThumbnailInfo = { width: 96, height: 96, method: 'crop', animated: false, contentType: 'image/png' };
    const moving: StoredThumbnailInfo = { width: 96, height: 96, method: 'crop', animated: true, contentType: 'image/webp' };
    expect(selectThumbnail([moving], req(96, 96, 'crop', false))).toBeUndefined();
    expect(selectThumbnail([moving, still], req(96, 96, 'crop', false))).toBe(still);
    expect(selectThumbnail([still, moving], req(96, 96, 'crop', true))).toBe(moving);
    // A still one serves an animated request when nothing animated exists.
    expect(selectThumbnail([still], req(96, 96, 'crop', true))).toBe(still);
  });

  it('ties: preferred type, then byte length, then the earliest', () => {
    const a: StoredThumbnailInfo = { width: 640, height: 480, method: 'scale', animated: false, contentType: 'image/png', length: 900 };
    const b: StoredThumbnailInfo = { width: 640, height: 480, method: 'scale', animated: false, contentType: 'image/jpeg', length: 500 };
    const c: StoredThumbnailInfo = { width: 640, height: 480, method: 'scale', animated: false, contentType: 'image/jpeg', length: 500 };
    expect(selectThumbnail([a, b], req(640, 480, 'scale'), { preferredContentType: 'image/png' })).toBe(a);
    expect(selectThumbnail([a, b], req(640, 480, 'scale'))).toBe(b);
    expect(selectThumbnail([b, c], req(640, 480, 'scale'))).toBe(b);
  });
});
