/**
 * `@hsmedia/thumbnailer/config`: the defaults a server's configuration is
 * checked against, without sharp. A config loader imports this subpath;
 * only the code that makes thumbnails imports the package root (which loads
 * sharp and libvips).
 */
import type { ThumbnailSpec } from '@hsmedia/media-core';

/**
 * The sizes the spec recommends pre-generating (https://spec.matrix.org/v1.12/client-server-api/#thumbnails;
 * Synapse's default `thumbnail_sizes`). Still images.
 */
export const DEFAULT_THUMBNAIL_SIZES: readonly ThumbnailSpec[] = Object.freeze([
  Object.freeze({ width: 32, height: 32, method: 'crop', animated: false }),
  Object.freeze({ width: 96, height: 96, method: 'crop', animated: false }),
  Object.freeze({ width: 320, height: 240, method: 'scale', animated: false }),
  Object.freeze({ width: 640, height: 480, method: 'scale', animated: false }),
  Object.freeze({ width: 800, height: 600, method: 'scale', animated: false }),
] as const satisfies readonly ThumbnailSpec[]);

/** Default upper bound of a requested width or height (a sanity bound; WebP cannot exceed 16383 anyway). */
export const DEFAULT_MAX_THUMBNAIL_DIMENSION = 16384;
