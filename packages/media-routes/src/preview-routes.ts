/**
 * `GET /_matrix/client/v1/media/preview_url`
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url)
 * and the deprecated `/_matrix/media/v3/preview_url`. The handler only parses the request and maps errors; the previewer
 * (e.g. `@hsmedia/url-preview`) is injected, so this package does not depend
 * on an HTTP client or an HTML parser.
 */
import { errors, isMatrixError, type MatrixError } from '@hsmedia/errors';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import type { Requester } from '@hsmedia/runtime';
import type { Middleware } from 'koa';
import { nonNegativeIntParam, queryParam } from './internal/query-params.js';
import { memberOf, type MediaRouteState } from './route-context.js';

/** Per-call options of {@link PreviewUrlPort.preview}. */
export interface PreviewUrlRequest {
  /** The `ts` query parameter (ms since epoch); the server may answer with a newer preview. */
  readonly ts?: number;
  readonly requester: Requester;
  /** Aborts when the client goes away. */
  readonly signal?: AbortSignal;
}

/**
 * What the endpoint needs of a URL previewer: the OpenGraph object the
 * endpoint answers with (`og:image` an `mxc://` URI).
 * `@hsmedia/url-preview`'s `UrlPreviewer` has this shape.
 */
export interface PreviewUrlPort {
  preview(url: string, options: PreviewUrlRequest): Promise<Record<string, unknown>>;
}

/** Options of {@link createPreviewUrlHandler} (and `MediaRoutersOptions.preview`). */
export interface PreviewUrlOptions {
  readonly previewer: PreviewUrlPort;
  /**
   * Turns a previewer failure into the client's error, e.g. `@hsmedia/url-preview`'s
   * `previewErrorToMatrixError`. Default: `MatrixError`s pass through, anything
   * else is 500 `M_UNKNOWN` (details never reach the client).
   */
  readonly mapError?: (error: unknown) => MatrixError;
}

function defaultMapError(error: unknown): MatrixError {
  if (isMatrixError(error)) return error;
  return errors.unknown();
}

/**
 * The `preview_url` handler, to run after client authentication (which sets
 * `ctx.state.requester`). Guests are refused with 403
 * `M_GUEST_ACCESS_FORBIDDEN` (the endpoint is not among those guests may use,
 * https://spec.matrix.org/v1.12/client-server-api/#guest-access), a
 * missing `url` is 400 `M_MISSING_PARAM`, a `ts` that is not a non-negative
 * integer is 400 `M_INVALID_PARAM`; previewer failures go through
 * `options.mapError`. A client that disconnects stops the wait (the
 * previewer may finish the fetch for its cache).
 *
 * @example
 * ```ts
 * router.get('/_matrix/client/v1/media/preview_url', authenticate,
 *   createPreviewUrlHandler({ previewer, mapError: previewErrorToMatrixError }));
 * ```
 */
export function createPreviewUrlHandler(options: PreviewUrlOptions): Middleware<MediaRouteState> {
  const { previewer } = options;
  if (typeof previewer?.preview !== 'function') throw new TypeError('createPreviewUrlHandler: previewer.preview must be a function');
  const mapError = options.mapError ?? defaultMapError;
  return async (ctx) => {
    const requester = memberOf(ctx);
    const query = new URLSearchParams(ctx.querystring);
    const url = queryParam(query, 'url');
    if (url === undefined) throw errors.missingParam('Missing url parameter');
    // An int64 of milliseconds since the epoch; beyond 2^53 it could not be held exactly anyway.
    const ts = nonNegativeIntParam(query, 'ts');
    const signal = abortSignalFor(ctx);
    let preview: Record<string, unknown>;
    try {
      preview = await previewer.preview(url, { requester, signal, ...(ts === undefined ? {} : { ts }) });
    } catch (error) {
      // The client is gone: nobody reads the answer, so do not dress the abort up as a preview failure.
      if (signal.aborted) throw error;
      throw mapError(error);
    }
    // A preview names what one user asked about; keep it out of every cache.
    ctx.set('Cache-Control', 'no-store');
    ctx.body = preview;
  };
}
