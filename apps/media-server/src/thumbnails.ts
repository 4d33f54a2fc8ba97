/**
 * Thumbnails in the reference server: the `thumbnails` config section and
 * the composition `SharpThumbnailer` → `ThumbnailService` (media-core) for
 * `@hsmedia/media-routes`' `thumbnails` option.
 */
import { availableParallelism } from 'node:os';
import { isMatrixError } from '@hsmedia/errors';
import { ThumbnailService, type MediaService, type RemoteMediaSource, type StoredThumbnail, type ThumbnailGenerator, type ThumbnailRules, type ThumbnailSpec } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';
import {
  SharpThumbnailer,
  ThumbnailError,
  selectThumbnail,
  thumbnailErrorToMatrixError,
  thumbnailSpecForRequest,
} from '@hsmedia/thumbnailer';
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

/** `@hsmedia/thumbnailer`'s rules in the shape `ThumbnailService` takes. */
export const thumbnailerRules: ThumbnailRules = Object.freeze({
  parseRequest: (query: URLSearchParams): ThumbnailSpec => thumbnailSpecForRequest(query),
  select: (stored: readonly StoredThumbnail[], request: ThumbnailSpec): StoredThumbnail | undefined =>
    selectThumbnail(
      stored.map((row) => ({ row, width: row.width, height: row.height, method: row.method, animated: row.animated, contentType: row.contentType, length: row.size })),
      request,
    )?.row,
  errorFor: (error: unknown, options: { readonly remote: boolean }) => {
    if (error instanceof ThumbnailError) return thumbnailErrorToMatrixError(error, options);
    return isMatrixError(error) ? error : null;
  },
});

/** What {@link createThumbnails} needs. */
export interface ThumbnailsDependencies {
  readonly media: MediaService;
  readonly logger: Logger;
  /** Where remote thumbnails come from (the `FederationClient`); none: always from the original. */
  readonly remote?: RemoteMediaSource;
  /** Wraps the generator (e.g. to time it for metrics). */
  readonly wrapGenerator?: (generator: ThumbnailGenerator) => ThumbnailGenerator;
}

/**
 * Composes the thumbnail service, or undefined while `thumbnails.enabled` is
 * false. Background generation gets half the slots (at least one), so
 * requests that must generate on demand are never stuck behind a queue of uploads.
 */
export function createThumbnails(config: ThumbnailsConfig, deps: ThumbnailsDependencies): ThumbnailService | undefined {
  if (!config.enabled) return undefined;
  const maxConcurrent = config.maxConcurrent ?? Math.max(1, availableParallelism());
  const generator = new SharpThumbnailer({
    maxSourceBytes: config.maxSourceBytes,
    maxPixels: config.maxPixels,
    maxConcurrent,
    logger: deps.logger,
  });
  return new ThumbnailService({
    media: deps.media,
    generator: deps.wrapGenerator?.(generator) ?? generator,
    rules: thumbnailerRules,
    sizes: config.sizes,
    dynamic: config.dynamic,
    maxBackgroundJobs: Math.max(1, Math.floor(maxConcurrent / 2)),
    remoteThumbnailFirst: config.remoteThumbnailFirst,
    ...(deps.remote === undefined ? {} : { remote: deps.remote }),
    // The thumbnail's real size and format, from its header only.
    probe: (bytes) => generator.probe(bytes),
    logger: deps.logger,
  });
}
