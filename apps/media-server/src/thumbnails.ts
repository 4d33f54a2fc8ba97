/**
 * Thumbnails in the reference server: the composition `SharpThumbnailer` →
 * `ThumbnailService` (media-core) for `@hsmedia/media-routes`' `thumbnails`
 * option. The `thumbnails` config section is in `thumbnails-config.ts`, which
 * the config loader imports without loading sharp.
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
import type { ThumbnailsConfig } from './thumbnails-config.js';

export { THUMBNAILS_DEFAULTS, resolveThumbnailsConfig, type ThumbnailsConfig, type ThumbnailsSection } from './thumbnails-config.js';

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
