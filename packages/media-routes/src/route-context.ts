/**
 * The typed request context every media route shares: what the injected
 * authentication puts on `ctx.state`, the path parameters, and the lookup
 * options built from them (one place for the client, legacy and federation routes).
 */
import { METHODS } from 'node:http';
import { ErrCode, MatrixError, errors } from '@hsmedia/errors';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import type { GetMediaOptions } from '@hsmedia/media-core';
import type { Requester } from '@hsmedia/runtime';
import type { Router, RouterContext, RouterMiddleware } from '@koa/router';
import type { ParameterizedContext } from 'koa';
import type { LookupQuery } from './internal/query-params.js';

/** What the injected authentication middleware puts on `ctx.state` for the media routes. */
export interface MediaRouteState {
  /** The client, set by the client `authenticate` (e.g. `@hsmedia/client-auth`'s `createClientAuth`). */
  requester?: Requester;
  /** The verified origin server, set by the federation `authenticate` (e.g. `@hsmedia/xmatrix-auth`). */
  origin?: string;
}

/** A router of media routes. */
export type MediaRouter = Router<MediaRouteState>;

/** What the kit's helpers need of any media route's context, whatever its path parameters. */
export type MediaStateContext = ParameterizedContext<MediaRouteState>;

/** The typed `ctx.params` of a route (`ContextT` of @koa/router's generics). */
export interface PathParams<P extends object> {
  params: P;
}

/** The context of a media route whose path has the parameters `P`. */
export type MediaContext<P extends object = Record<never, string>> = RouterContext<MediaRouteState, PathParams<P>>;

/** A media route handler whose path has the parameters `P`. */
export type MediaHandler<P extends object = Record<never, string>> = RouterMiddleware<MediaRouteState, PathParams<P>>;

/** `/{serverName}/{mediaId}[/{fileName}]` of the download and thumbnail routes. */
export interface MediaPathParams {
  serverName: string;
  mediaId: string;
  fileName?: string;
}

/**
 * Every method Node parses, so @koa/router never answers "501 not implemented":
 * an unknown method on a known path is a 405 M_UNRECOGNIZED like any wrong method.
 */
export const ALL_METHODS: string[] = [...METHODS];

/** The authenticated client; the authenticate middleware guarantees it, so refuse rather than run unauthenticated. */
export function requesterOf(ctx: MediaStateContext): Requester {
  const requester = ctx.state.requester;
  if (!requester) throw errors.missingToken();
  return requester;
}

/** The requester, refused with 403 `M_GUEST_ACCESS_FORBIDDEN` when a guest (config, upload, preview_url). */
export function memberOf(ctx: MediaStateContext): Requester {
  const requester = requesterOf(ctx);
  if (requester.isGuest) throw new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guest access not allowed');
  return requester;
}

/**
 * `getMedia`/`getThumbnail` options of a client or legacy request. The
 * signal is a function, called only when the lookup has to wait: a cache
 * hit never creates one (an AbortSignal and its listeners cost more than the
 * rest of the hit), and unlike a getter it survives spreading.
 */
export function clientLookup(ctx: MediaStateContext, legacy: boolean, query: LookupQuery): GetMediaOptions {
  return {
    legacy,
    allowRemote: query.allowRemote,
    timeoutMs: query.timeoutMs,
    requester: ctx.state.requester,
    signal: () => abortSignalFor(ctx),
  };
}

/** Who asks, as the access rules see it (the part of {@link clientLookup} an answer from memory needs). */
export type MediaAccessRequest = Pick<GetMediaOptions, 'legacy' | 'requester' | 'origin'>;

const LEGACY_ANONYMOUS: MediaAccessRequest = Object.freeze({ legacy: true, requester: undefined });

/**
 * Who asks on a client or legacy route, for `MediaService.cachedMedia` and
 * `ThumbnailService.cachedThumbnail`: what {@link clientLookup} says about it,
 * without an object per request in the common cases (the client route's
 * state as it is; an anonymous legacy request).
 */
export function accessRequestOf(ctx: MediaStateContext, legacy: boolean): MediaAccessRequest {
  const { state } = ctx;
  if (!legacy && state.origin === undefined && !('legacy' in state)) return state;
  if (legacy && state.requester === undefined) return LEGACY_ANONYMOUS;
  return { legacy, requester: state.requester };
}

/** `getMedia` options of a federation request: our own media only, for the verified origin. */
export function federationLookup(ctx: MediaStateContext, timeoutMs: number | undefined): GetMediaOptions {
  return { localOnly: true, timeoutMs, origin: ctx.state.origin, signal: () => abortSignalFor(ctx) };
}
