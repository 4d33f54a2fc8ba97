/**
 * The query parameters of every media route, parsed in one place: values
 * are form-decoded (`+` is a space), a repeated parameter is 400
 * `M_INVALID_PARAM`, and so is a malformed one.
 */
import { errors } from '@hsmedia/errors';
import type { ThumbnailService, ThumbnailSpec } from '@hsmedia/media-core';

const NON_NEGATIVE_INT = /^\d{1,15}$/;

/** Longest `/{fileName}` path segment accepted. */
const MAX_FILENAME_LENGTH = 255;

/** A single-valued query parameter; undefined when absent; 400 when repeated. */
export function queryParam(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw errors.invalidParam(`Query parameter ${name} given more than once`);
  return values[0];
}

/** A non-negative integer (at most 15 digits, so exact as a number); `fallback` when absent. */
export function nonNegativeIntParam(query: URLSearchParams, name: string): number | undefined;
export function nonNegativeIntParam(query: URLSearchParams, name: string, fallback: number): number;
export function nonNegativeIntParam(query: URLSearchParams, name: string, fallback?: number): number | undefined {
  const raw = queryParam(query, name);
  if (raw === undefined) return fallback;
  if (!NON_NEGATIVE_INT.test(raw)) throw errors.invalidParam(`Query parameter ${name} must be a non-negative integer`);
  return Number(raw);
}

/** `true` or `false`; `fallback` when absent. */
export function booleanParam(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const raw = queryParam(query, name);
  if (raw === undefined) return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw errors.invalidParam(`Query parameter ${name} must be true or false`);
}

/** The query of a media lookup (download, thumbnail, federation). */
export interface LookupQuery {
  /** `timeout_ms`: how long to wait for a pending async upload (spec v1.7). */
  readonly timeoutMs: number | undefined;
  /** `allow_remote` of the deprecated endpoints (default true); always true elsewhere. */
  readonly allowRemote: boolean;
}

/** Most requests carry no query at all: they share this answer and parse nothing. */
const NO_QUERY: LookupQuery = Object.freeze({ timeoutMs: undefined, allowRemote: true });

function lookupOf(query: URLSearchParams, legacy: boolean): LookupQuery {
  const timeoutMs = nonNegativeIntParam(query, 'timeout_ms');
  // allow_redirect is accepted and ignored: we always answer with the bytes, which every value permits.
  const allowRemote = legacy ? booleanParam(query, 'allow_remote', true) : true;
  return timeoutMs === undefined && allowRemote ? NO_QUERY : { timeoutMs, allowRemote };
}

/**
 * `timeout_ms` and (on the deprecated endpoints) `allow_remote`
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid).
 */
export function lookupQuery(querystring: string, legacy: boolean): LookupQuery {
  return querystring === '' ? NO_QUERY : lookupOf(new URLSearchParams(querystring), legacy);
}

/** The `/{fileName}` path segment (it overrides the stored name), bounded. */
export function fileNameParam(fileName: string | undefined): string | undefined {
  if (fileName !== undefined && fileName.length > MAX_FILENAME_LENGTH) throw errors.invalidParam('fileName is too long');
  return fileName;
}

/** The parsed query of a thumbnail request. */
export interface ThumbnailQuery extends LookupQuery {
  readonly spec: ThumbnailSpec;
}

/** Distinct query strings remembered per route; the map is emptied when full (clients mostly reuse a few sizes). */
const MAX_REMEMBERED_QUERIES = 256;

/**
 * Parses thumbnail queries: the lookup parameters here, `width`, `height`,
 * `method` and `animated` by the {@link ThumbnailService} (its rules decide
 * what is valid). Valid queries are remembered by their raw query string:
 * clients ask for the same few sizes over and over, and parsing is a
 * visible share of a cached thumbnail's cost. Invalid queries are never
 * remembered, so they throw every time.
 */
export function thumbnailQueryParser(legacy: boolean, thumbnails: ThumbnailService): (querystring: string) => ThumbnailQuery {
  const remembered = new Map<string, ThumbnailQuery>();
  return (querystring) => {
    const known = remembered.get(querystring);
    if (known !== undefined) return known;
    const query = new URLSearchParams(querystring);
    const { timeoutMs, allowRemote } = lookupOf(query, legacy);
    const parsed: ThumbnailQuery = { timeoutMs, allowRemote, spec: Object.freeze(thumbnails.parseRequest(query)) };
    if (remembered.size >= MAX_REMEMBERED_QUERIES) remembered.clear();
    remembered.set(querystring, parsed);
    return parsed;
  };
}
