import { errors, type MatrixError } from '@hsmedia/errors';
import type { ThumbnailMethod, ThumbnailSpec } from '@hsmedia/media-core';
import { DEFAULT_MAX_THUMBNAIL_DIMENSION, DEFAULT_THUMBNAIL_SIZES } from './config.js';

export { DEFAULT_THUMBNAIL_SIZES, DEFAULT_MAX_THUMBNAIL_DIMENSION };

/** A query string as Koa (`ctx.query`) or `URLSearchParams` gives it. */
export type ThumbnailQuery = URLSearchParams | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Options for {@link thumbnailSpecForRequest}. */
export interface ThumbnailRequestOptions {
  /** Largest accepted `width`/`height` (default {@link DEFAULT_MAX_THUMBNAIL_DIMENSION}). */
  readonly maxDimension?: number;
  /** `animated` when the request does not say (the endpoint's default: false, no animation). */
  readonly defaultAnimated?: boolean;
}

/**
 * Validates the query parameters of https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid
 * and gives the requested spec.
 * `width`/`height`: required positive integers up to `maxDimension` (missing → 400
 * `M_MISSING_PARAM`; malformed → 400 `M_INVALID_PARAM`); `method`: `crop` | `scale`, default
 * `scale` (as Synapse: the spec gives none); `animated` (or the unstable
 * `org.matrix.msc2705.animated`): `true` | `false`. Throws a `MatrixError`.
 */
export function thumbnailSpecForRequest(query: ThumbnailQuery, options: ThumbnailRequestOptions = {}): ThumbnailSpec {
  const maxDimension = options.maxDimension ?? DEFAULT_MAX_THUMBNAIL_DIMENSION;
  const width = parseDimension(query, 'width', maxDimension);
  const height = parseDimension(query, 'height', maxDimension);
  const methodParam = single(query, 'method');
  let method: ThumbnailMethod = 'scale';
  if (methodParam !== undefined) {
    if (methodParam !== 'crop' && methodParam !== 'scale') throw errors.invalidParam('method must be "crop" or "scale"');
    method = methodParam;
  }
  const animatedParam = single(query, 'animated') ?? single(query, 'org.matrix.msc2705.animated');
  let animated = options.defaultAnimated ?? false;
  if (animatedParam !== undefined) {
    if (animatedParam !== 'true' && animatedParam !== 'false') throw errors.invalidParam('animated must be "true" or "false"');
    animated = animatedParam === 'true';
  }
  return { width, height, method, animated };
}

function parseDimension(query: ThumbnailQuery, name: 'width' | 'height', max: number): number {
  const raw = single(query, name);
  if (raw === undefined) throw errors.missingParam(`Missing integer query parameter '${name}'`);
  const invalid = (): MatrixError => errors.invalidParam(`${name} must be an integer between 1 and ${max}`);
  if (!/^[0-9]{1,9}$/.test(raw)) throw invalid();
  const value = Number(raw);
  if (value < 1 || value > max) throw invalid();
  return value;
}

/** The parameter's value; a repeated parameter counts by its first value (as Synapse's parse_string). */
function single(query: ThumbnailQuery, name: string): string | undefined {
  if (query instanceof URLSearchParams) return query.get(name) ?? undefined;
  const value = query[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value[0];
}
