import { ErrCode, MatrixError } from '@hsmedia/errors';
import {
  isSignatureError,
  isValidServerName,
  parseXMatrixCredentials,
  verifyXMatrixCredentials,
  type KeyResolver,
  type SignatureError,
} from '@hsmedia/signing';
import type { Context, Middleware } from 'koa';

/** What {@link createXMatrixAuth} puts on `ctx.state`. */
export interface XMatrixAuthState {
  /** The authenticated origin server name of the request. */
  origin: string;
}

/** Options of {@link createXMatrixAuth}. */
export interface XMatrixAuthOptions {
  /** Our own server name: the only accepted `destination`, and the one signatures are checked against. */
  readonly serverName: string;
  /** Finds the origin's verify keys, typically a `KeyRing` from `@hsmedia/signing`. */
  readonly keyRing: KeyResolver;
  /** Origins refused with 403 `M_FORBIDDEN`: exact server names, or a predicate. */
  readonly denyOrigins?: readonly string[] | ((origin: string) => boolean);
  /**
   * Returns the already parsed JSON body of a `PUT`/`POST` request, signed as
   * `content`. Read it with a byte limit and keep it for the handler (for
   * example on `ctx.state`), since the stream can be read only once. Return
   * `undefined` for a bodiless request. Default: `ctx.request.body`, as set
   * by a body parser earlier in the chain. Never called for other methods:
   * media federation requests are `GET`s and sign no `content`.
   */
  readonly getJsonBody?: (ctx: Context) => unknown;
  /** Abort signal for key fetches made on behalf of this request (e.g. koa-matrix's `abortSignalFor`). */
  readonly getSignal?: (ctx: Context) => AbortSignal | undefined;
}

const BODY_METHODS = new Set(['PUT', 'POST']);

const defaultGetJsonBody = (ctx: Context): unknown => (ctx.request as { body?: unknown }).body;

/**
 * Maps a {@link SignatureError} to the Matrix error the peer gets
 * (spec S2S "Request Authentication"; statuses as Synapse answers them):
 * missing header 401, malformed header or invalid origin 400, everything
 * else (wrong destination, unknown key, bad signature) 401, all `M_UNAUTHORIZED`.
 */
export function signatureErrorToMatrixError(error: SignatureError): MatrixError {
  const httpStatus = error.code === 'MALFORMED_HEADER' || error.code === 'INVALID_SERVER_NAME' ? 400 : 401;
  // The messages of SignatureError name only the header, key IDs and server
  // names, never fetched URLs or bodies (those stay in `cause`), so they are safe to expose.
  return new MatrixError(ErrCode.UNAUTHORIZED, error.message, { httpStatus, cause: error });
}

/**
 * Koa middleware that authenticates federation requests by their
 * `Authorization: X-Matrix` headers and sets `ctx.state.origin`.
 *
 * The signature is checked against the request target exactly as received
 * (`ctx.originalUrl`, Koa's copy of the raw `req.url`, taken before any
 * middleware could rewrite `ctx.path`), the method, our server name as
 * `destination`, and for `PUT`/`POST` the JSON body from `getJsonBody`.
 * Denied origins are refused before any key is fetched for them.
 *
 * Errors (as `MatrixError`): 401 `M_UNAUTHORIZED` for a missing header, a
 * wrong `destination`, an unknown key or a bad signature; 400
 * `M_UNAUTHORIZED` for a malformed header; 403 `M_FORBIDDEN` for a denied
 * origin.
 *
 * @example
 * const keyRing = new KeyRing({ resolveServer, store });
 * router.get('/_matrix/federation/v1/media/download/:mediaId',
 *   createXMatrixAuth({ serverName: 'media.example', keyRing }),
 *   (ctx) => { ctx.body = { from: ctx.state.origin }; });
 */
export function createXMatrixAuth(options: XMatrixAuthOptions): Middleware<XMatrixAuthState> {
  const { serverName, keyRing } = options;
  if (!isValidServerName(serverName)) throw new TypeError(`serverName ${JSON.stringify(serverName)} is not a valid server name`);
  if (typeof keyRing?.getVerifyKey !== 'function') throw new TypeError('keyRing must have getVerifyKey()');
  const deny = options.denyOrigins;
  let isDenied: (origin: string) => boolean;
  if (typeof deny === 'function') {
    isDenied = deny;
  } else {
    const denied = new Set(deny ?? []);
    isDenied = (origin) => denied.has(origin);
  }
  const getJsonBody = options.getJsonBody ?? defaultGetJsonBody;
  const getSignal = options.getSignal;

  return async function xMatrixAuth(ctx, next) {
    try {
      // headersDistinct keeps every Authorization header (plain `headers` drops duplicates).
      const authorization = ctx.req.headersDistinct?.['authorization'] ?? ctx.req.headers.authorization;
      const credentials = parseXMatrixCredentials(authorization, serverName);
      if (isDenied(credentials.origin)) {
        throw new MatrixError(ErrCode.FORBIDDEN, 'Federation with this server is not allowed', { httpStatus: 403 });
      }
      const method = ctx.method.toUpperCase();
      const content = BODY_METHODS.has(method) ? await getJsonBody(ctx) : undefined;
      const signal = getSignal?.(ctx);
      await verifyXMatrixCredentials(
        {
          method,
          uri: ctx.originalUrl,
          ...(content === undefined ? {} : { content }),
        },
        credentials,
        { serverName, keyResolver: keyRing, ...(signal === undefined ? {} : { signal }) },
      );
      ctx.state.origin = credentials.origin;
    } catch (error) {
      if (isSignatureError(error)) throw signatureErrorToMatrixError(error);
      throw error;
    }
    await next();
  };
}
