/**
 * The `thumbnails` config section: its defaults and resolution. Pure data:
 * the config loader imports this module, never the thumbnailer (sharp), so
 * that commands which only read the config start quickly.
 */
import type { ThumbnailSpec } from '@hsmedia/media-core';
import { parseByteSize } from './byte-size.js';

/** Defaults of the `thumbnails` section (as written in `config.sample.yaml`). */
export const THUMBNAILS_DEFAULTS: {
  readonly max_source_size: '50M';
  readonly max_pixels: 33_554_432;
} = Object.freeze({ max_source_size: '50M', max_pixels: 33_554_432 });

/** The `thumbnails` section as validated by the config schema (snake_case, defaults applied). */
export interface ThumbnailsSection {
  readonly enabled: boolean;
  readonly dynamic: boolean;
  readonly sizes: readonly { readonly width: number; readonly height: number; readonly method: 'crop' | 'scale'; readonly animated: boolean }[];
  readonly max_source_size: number | string;
  readonly max_pixels: number;
  readonly max_concurrent?: number | undefined;
  readonly remote_thumbnail_first: boolean;
}

/** The resolved `thumbnails` section. */
export interface ThumbnailsConfig {
  readonly enabled: boolean;
  readonly dynamic: boolean;
  readonly sizes: readonly ThumbnailSpec[];
  readonly maxSourceBytes: number;
  readonly maxPixels: number;
  /** Undefined: the CPU cores. */
  readonly maxConcurrent: number | undefined;
  /** Uncached remote media: ask the remote's thumbnail endpoint before fetching the original. */
  readonly remoteThumbnailFirst: boolean;
}

/** Resolves a validated `thumbnails` section (sizes in bytes). */
export function resolveThumbnailsConfig(section: ThumbnailsSection): ThumbnailsConfig {
  return {
    enabled: section.enabled,
    dynamic: section.dynamic,
    sizes: section.sizes.map((size) => ({ width: size.width, height: size.height, method: size.method, animated: size.animated })),
    maxSourceBytes: parseByteSize(section.max_source_size) ?? 1,
    maxPixels: section.max_pixels,
    maxConcurrent: section.max_concurrent,
    remoteThumbnailFirst: section.remote_thumbnail_first,
  };
}
