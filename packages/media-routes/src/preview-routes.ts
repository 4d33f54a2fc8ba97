/**
 * `GET /_matrix/client/v1/media/preview_url` and the deprecated
 * `/_matrix/media/v3/preview_url` (spec §"Content repository", digest §1.5,
 * §6.1). The handler only parses the request and maps errors; the previewer
 * (e.g. `@hsmedia/url-preview`) is injected, so this package does not depend
 * on an HTTP client or an HTML parser.
 */
import { ErrCode, MatrixError, errors, isMatrixError } from '@hsmedia/errors';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import type { Requester } from '@hsmedia/runtime';
import type { Context, Middleware } from 'koa';

/** Per-call options of {@link PreviewUrlPort.preview}. */
export interface PreviewUrlRequest {
  /** The `ts` query parameter (ms since epoch); the server may answer with a newer preview. */
  readonly ts?: number;
  readonly requester: Requester;
  /** Aborts when the client goes away. */
  readonly signal?: AbortSignal;
}

/**
 * What the endpoint needs of a URL previewer: the OpenGraph object of spec
 * §6.1 (`og:image` an `mxc://` URI). `@hsmedia/url-preview`'s `UrlPreviewer`
 * has this shape.
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

/** `ts` is an int64 of milliseconds; beyond 2^53 it could not be held exactly anyway. */
const TS_PATTERN = /^\d{1,15}$/;

function defaultMapError(error: unknown): MatrixError {
  if (isMatrixError(error)) return error;
  return errors.unknown();
}

/** A single-valued query parameter; form-decoded (`+` is a space); undefined when absent. */
function queryParam(ctx: Context, name: string): string | undefined {
  const values = new URLSearchParams(ctx.querystring).getAll(name);
  if (values.length > 1) throw errors.invalidParam(`Query parameter ${name} given more than once`);
  return values[0];
}

/**
 * The `preview_url` handler, to run after client authentication (which sets
 * `ctx.state.requester`). Guests are refused with 403
 * `M_GUEST_ACCESS_FORBIDDEN` (spec §1.5: guest access not allowed), a
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
export function createPreviewUrlHandler(options: PreviewUrlOptions): Middleware {
  const { previewer } = options;
  if (typeof previewer?.preview !== 'function') throw new TypeError('createPreviewUrlHandler: previewer.preview must be a function');
  const mapError = options.mapError ?? defaultMapError;
  return async (ctx) => {
    const requester = (ctx.state as { requester?: Requester }).requester;
    // The authenticate middleware guarantees this; refuse rather than run unauthenticated.
    if (!requester) throw errors.missingToken();
    if (requester.isGuest) throw new MatrixError(ErrCode.GUEST_ACCESS_FORBIDDEN, 'Guest access not allowed');
    const url = queryParam(ctx, 'url');
    if (url === undefined) throw errors.missingParam('Missing url parameter');
    const rawTs = queryParam(ctx, 'ts');
    if (rawTs !== undefined && !TS_PATTERN.test(rawTs)) throw errors.invalidParam('ts must be a non-negative integer (ms since epoch)');
    const signal = abortSignalFor(ctx);
    let preview: Record<string, unknown>;
    try {
      preview = await previewer.preview(url, {
        requester,
        signal,
        ...(rawTs === undefined ? {} : { ts: Number(rawTs) }),
      });
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
