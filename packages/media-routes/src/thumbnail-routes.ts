/**
 * `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}`, the
 * deprecated `/_matrix/media/<v3|r0|v1>/thumbnail/...` and the federation
 * thumbnail provider (spec §1.3, §2, §3.2; digest §1.3). Handlers only parse
 * the request and send; every rule lives in media-core's `ThumbnailService`
 * (which gets its image code injected), so this package depends on no image library.
 */
import { errors } from '@hsmedia/errors';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import type { MediaService, ThumbnailService, ThumbnailSpec } from '@hsmedia/media-core';
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { FederationThumbnailProvider } from './federation-router.js';
import { LazyMediaLookup, LazySendOptions } from './internal/lazy-signal.js';
import { sendMedia } from './send-media.js';

/** Options of {@link addThumbnailRoutes}. */
export interface ThumbnailRoutesOptions {
  readonly media: MediaService;
  /** Without it, thumbnails of existing media answer 400 `M_UNKNOWN` "Cannot generate thumbnails". */
  readonly thumbnails: ThumbnailService | undefined;
  /** Client authentication: runs first on the authenticated route, before any parameter is looked at. */
  readonly authenticate: Middleware;
  readonly legacyVersions: readonly string[];
  readonly maxAgeSeconds: number;
  /** Middleware run after authentication on the client route (e.g. the download rate limit). */
  readonly clientBefore?: readonly Middleware[];
  /** Middleware run first on the legacy routes (e.g. the per-IP download rate limit). */
  readonly legacyBefore?: readonly Middleware[];
}

/** A single-valued query parameter; undefined when absent; 400 when repeated. */
function queryParam(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw errors.invalidParam(`Query parameter ${name} given more than once`);
  return values[0];
}

function timeoutMsOf(query: URLSearchParams): number | undefined {
  const raw = queryParam(query, 'timeout_ms');
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw errors.invalidParam('timeout_ms must be a non-negative integer');
  return Number(raw);
}

function allowRemoteOf(query: URLSearchParams): boolean {
  const raw = queryParam(query, 'allow_remote');
  if (raw === undefined || raw === 'true') return true;
  if (raw === 'false') return false;
  throw errors.invalidParam('allow_remote must be true or false');
}

/** The parsed query of a thumbnail request (what the handler needs of it). */
interface ThumbnailQuery {
  readonly timeoutMs: number | undefined;
  readonly allowRemote: boolean;
  readonly spec: ThumbnailSpec;
}

/** Distinct query strings remembered per route; the map is emptied when full (clients mostly reuse a few sizes). */
const MAX_REMEMBERED_QUERIES = 256;

/**
 * Parses thumbnail queries, remembering valid ones by their raw query
 * string: clients ask for the same few sizes over and over, and parsing
 * (URLSearchParams, four parameters) is a visible share of a cached
 * thumbnail's cost. Invalid queries are never remembered, so they throw every time.
 */
function thumbnailQueryParser(isLegacy: boolean, thumbnails: ThumbnailService): (querystring: string) => ThumbnailQuery {
  const remembered = new Map<string, ThumbnailQuery>();
  return (querystring) => {
    const known = remembered.get(querystring);
    if (known !== undefined) return known;
    const query = new URLSearchParams(querystring);
    const timeoutMs = timeoutMsOf(query);
    const allowRemote = isLegacy ? allowRemoteOf(query) : true;
    const parsed: ThumbnailQuery = { timeoutMs, allowRemote, spec: Object.freeze(thumbnails.parseRequest(query)) };
    if (remembered.size >= MAX_REMEMBERED_QUERIES) remembered.clear();
    remembered.set(querystring, parsed);
    return parsed;
  };
}

function cannotThumbnail(): Error {
  return errors.cannotThumbnail();
}

/**
 * Adds the thumbnail routes to the client router (prefix
 * `/_matrix/client/v1/media`) and the legacy router (one route per legacy
 * version). Responses are the thumbnail's real Content-Type,
 * `Content-Disposition: inline; filename=thumbnail.<ext>`, the media
 * security headers, a strong ETag with 304, as downloads.
 *
 * Errors: 401 before anything else (client route); 400 `M_MISSING_PARAM` /
 * `M_INVALID_PARAM` for `width`, `height`, `method`, `animated`,
 * `timeout_ms`; 404 `M_NOT_FOUND` (unknown, quarantined, or stored while the
 * legacy endpoints were frozen, on a legacy route); 400 `M_UNKNOWN` for
 * content that cannot be thumbnailed; 413 (502 remote) `M_TOO_LARGE`.
 */
export function addThumbnailRoutes(client: Router, legacy: Router, options: ThumbnailRoutesOptions): void {
  const { media, thumbnails, authenticate } = options;
  const privateCache = `private, max-age=${options.maxAgeSeconds}`;
  const publicCache = `public, max-age=${options.maxAgeSeconds}`;

  const handler = (isLegacy: boolean): Middleware => {
    if (thumbnails === undefined) {
      return async (ctx: Context) => {
        // Thumbnails are off: the media still has to exist for the answer to be "cannot thumbnail".
        const params = (ctx as Context & { params: Record<string, string> }).params;
        const query = new URLSearchParams(ctx.querystring);
        const timeoutMs = timeoutMsOf(query);
        const allowRemote = isLegacy ? allowRemoteOf(query) : true;
        const handle = await media.getMedia(params['serverName']!, params['mediaId']!, {
          legacy: isLegacy,
          allowRemote,
          timeoutMs,
          allowLive: false,
          signal: abortSignalFor(ctx),
        });
        handle.discard();
        throw cannotThumbnail();
      };
    }
    const parseQuery = thumbnailQueryParser(isLegacy, thumbnails);
    return async (ctx: Context) => {
      const params = (ctx as Context & { params: Record<string, string> }).params;
      const { timeoutMs, allowRemote, spec } = parseQuery(ctx.querystring);
      // The abort signal is created only if read (a cached thumbnail does not): see LazyMediaLookup.
      const lookup = new LazyMediaLookup(ctx, isLegacy, allowRemote, timeoutMs);
      const handle = await thumbnails.getThumbnail(params['serverName']!, params['mediaId']!, spec, lookup);
      await sendMedia(ctx, handle, new LazySendOptions(ctx, isLegacy ? publicCache : privateCache));
    };
  };

  client.get('/thumbnail/:serverName/:mediaId', authenticate, ...(options.clientBefore ?? []), handler(false));
  for (const version of options.legacyVersions) {
    // Deprecated and unauthenticated: under the freeze, media stored while frozen is 404 here (spec v1.11).
    legacy.get(`/_matrix/media/${version}/thumbnail/:serverName/:mediaId`, ...(options.legacyBefore ?? []), handler(true));
  }
}

/**
 * The federation router's thumbnail seam (`FederationMediaRouterOptions.thumbnails`)
 * over a {@link ThumbnailService}: the same stored thumbnail, hence the same
 * bytes, as the client endpoint gives for the same parameters.
 */
export function federationThumbnailProvider(thumbnails: ThumbnailService): FederationThumbnailProvider {
  return async ({ media, query, signal }) => {
    const spec = thumbnails.parseRequest(query);
    const handle = await thumbnails.thumbnailFor(media.record, spec, { signal });
    let bytes = await handle.readSmall(signal);
    if (bytes === null) {
      // Larger than the in-memory limit (a big dynamic size): the seam takes bytes, so read it whole.
      const stream = await handle.open(undefined, signal);
      const chunks: Uint8Array[] = [];
      for await (const chunk of stream as AsyncIterable<Uint8Array>) chunks.push(chunk);
      bytes = new Uint8Array(Buffer.concat(chunks));
    }
    return { contentType: handle.contentType, bytes, ...(handle.etag === null ? {} : { etag: handle.etag }) };
  };
}
