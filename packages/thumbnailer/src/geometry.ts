import type { ThumbnailMethod } from '@hsmedia/media-core';

/** A rectangle inside the scaled image, in pixels. */
export interface CropBox {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** How one source size becomes one thumbnail (see {@link thumbnailGeometry}). */
export interface ThumbnailGeometry {
  /** Size of the thumbnail. */
  readonly width: number;
  readonly height: number;
  /** The source is first scaled to this size (equal to the source size when it is not scaled)... */
  readonly resizeWidth: number;
  readonly resizeHeight: number;
  /** ...then this box is cut out of it (null: no crop). */
  readonly crop: CropBox | null;
  /** The thumbnail is the source at its own size: the source is not larger than the request (never upscale). */
  readonly original: boolean;
}

/**
 * Thumbnail geometry by Synapse's integer maths for the crop and scale methods, with the spec's
 * "never upscale" rule on top (https://spec.matrix.org/v1.12/client-server-api/#thumbnails):
 * - `scale`: the largest size with the source's aspect ratio that fits in `width`×`height`
 *   (`W*h < H*w` → `(W, max(W*h/w, 1))`, else `(max(H*w/h, 1), H)`); when that is not smaller
 *   than the source, the source itself.
 * - `crop`: scale to cover `width`×`height`, then cut the centred `width`×`height` box. When the
 *   source already fits in the box, the source itself; when covering would need upscaling (the
 *   source is smaller on one side only), the centred box of the unscaled source, clipped to it.
 */
export function thumbnailGeometry(
  sourceWidth: number,
  sourceHeight: number,
  request: { readonly width: number; readonly height: number; readonly method: ThumbnailMethod },
): ThumbnailGeometry {
  const sw = sourceWidth;
  const sh = sourceHeight;
  const W = request.width;
  const H = request.height;
  const original: ThumbnailGeometry = {
    width: sw,
    height: sh,
    resizeWidth: sw,
    resizeHeight: sh,
    crop: null,
    original: true,
  };
  if (request.method === 'scale') {
    let tw: number;
    let th: number;
    if (W * sh < H * sw) {
      tw = W;
      th = Math.max(Math.floor((W * sh) / sw), 1);
    } else {
      tw = Math.max(Math.floor((H * sw) / sh), 1);
      th = H;
    }
    if (tw >= sw || th >= sh) return original;
    return { width: tw, height: th, resizeWidth: tw, resizeHeight: th, crop: null, original: false };
  }
  if (W >= sw && H >= sh) return original;
  let scaledWidth: number;
  let scaledHeight: number;
  let crop: CropBox;
  if (W * sh > H * sw) {
    scaledWidth = W;
    scaledHeight = Math.floor((W * sh) / sw);
    crop = { left: 0, top: Math.floor((scaledHeight - H) / 2), width: W, height: H };
  } else {
    scaledWidth = Math.floor((H * sw) / sh);
    scaledHeight = H;
    crop = { left: Math.floor((scaledWidth - W) / 2), top: 0, width: W, height: H };
  }
  if (scaledWidth > sw || scaledHeight > sh) {
    // Covering the box would upscale: keep the source's pixels and cut what fits.
    const width = Math.min(W, sw);
    const height = Math.min(H, sh);
    return {
      width,
      height,
      resizeWidth: sw,
      resizeHeight: sh,
      crop: { left: Math.floor((sw - width) / 2), top: Math.floor((sh - height) / 2), width, height },
      original: false,
    };
  }
  const needsCrop = crop.width !== scaledWidth || crop.height !== scaledHeight;
  return {
    width: W,
    height: H,
    resizeWidth: scaledWidth,
    resizeHeight: scaledHeight,
    crop: needsCrop ? crop : null,
    original: false,
  };
}
