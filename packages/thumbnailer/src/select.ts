import type { ThumbnailMethod, ThumbnailSpec } from '@hsmedia/media-core';

/** What {@link selectThumbnail} needs to know about a stored thumbnail. */
export interface StoredThumbnailInfo {
  /** Real pixel size of the stored thumbnail. */
  readonly width: number;
  readonly height: number;
  readonly method: ThumbnailMethod;
  readonly animated: boolean;
  readonly contentType: string;
  /** Byte length, the last tie-breaker (smaller wins) when known. */
  readonly length?: number;
}

/** Options for {@link selectThumbnail}. */
export interface SelectThumbnailOptions {
  /** A content type the client prefers (Synapse's `desired_type`); a match wins ties. */
  readonly preferredContentType?: string;
}

/**
 * Picks the stored thumbnail that best answers `request`, by Synapse's `_select_thumbnail`
 * (https://spec.matrix.org/v1.12/client-server-api/#thumbnails), or `undefined` when none of the
 * request's method is usable.
 *
 * Only thumbnails of the requested method are candidates. Those at least as large as the request
 * (on either side: a scaled one fits its box, so only one side reaches it) come first; the others only when there are none.
 * - crop: ranked by aspect-ratio error `|W*h - H*w|`, then "smaller than requested", then size
 *   difference `|(W-w)*(H-h)|`;
 * - scale: ranked by size difference;
 * then by animation match, type match and byte length; the earliest wins remaining ties.
 *
 * Animation (the `animated` parameter of the thumbnail endpoint, MSC2705): `animated: false` MUST NOT
 * get an animated thumbnail, so animated ones are dropped then; with `animated: true` a still one is
 * served only when it ranks better.
 */
export function selectThumbnail<T extends StoredThumbnailInfo>(
  stored: readonly T[],
  request: ThumbnailSpec,
  options: SelectThumbnailOptions = {},
): T | undefined {
  const W = request.width;
  const H = request.height;
  const preferred = options.preferredContentType;
  let best: { key: number[]; info: T } | undefined;
  let bestFallback: { key: number[]; info: T } | undefined;
  for (const info of stored) {
    if (info.method !== request.method) continue;
    if (info.animated && !request.animated) continue;
    const w = info.width;
    const h = info.height;
    const sizeQuality = Math.abs((W - w) * (H - h));
    const tail = [
      request.animated && !info.animated ? 1 : 0,
      preferred !== undefined && preferred !== info.contentType ? 1 : 0,
      info.length ?? 0,
    ];
    let key: number[];
    let large: boolean;
    if (request.method === 'crop') {
      const aspectQuality = Math.abs(W * h - H * w);
      const minQuality = W <= w && H <= h ? 0 : 1;
      key = [aspectQuality, minQuality, sizeQuality, ...tail];
      large = w >= W || h >= H;
    } else {
      key = [sizeQuality, ...tail];
      // A scaled thumbnail fits inside its box, so it touches only one side: 640x448 is
      // the 640x480 answer for a 10:7 source (Synapse ranks the same way).
      large = w >= W || h >= H;
    }
    if (large) {
      if (best === undefined || lexLess(key, best.key)) best = { key, info };
    } else if (bestFallback === undefined || lexLess(key, bestFallback.key)) {
      bestFallback = { key, info };
    }
  }
  return (best ?? bestFallback)?.info;
}

/** True when `a` sorts strictly before `b` (Python tuple order; equal keys keep the earlier). */
function lexLess(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}
