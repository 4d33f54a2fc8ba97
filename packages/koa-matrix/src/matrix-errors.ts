import { ContentTooLargeError, ErrCode, MatrixError, isMatrixError } from '@hsmedia/errors';
import type { Middleware } from 'koa';

/** The logger subset the error middleware needs (pino-compatible). */
export interface ErrorLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** Options for {@link matrixErrors}. */
export interface MatrixErrorsOptions {
  /** Where unexpected (5xx) errors are logged; the client never sees their details. */
  readonly logger?: ErrorLogger;
}

// Headers that describe the representation that failed; they must not leak onto the error body.
const REPRESENTATION_HEADERS: readonly string[] = [
  'Content-Type',
  'Content-Length',
  'Content-Disposition',
  'Content-Range',
  'Content-Encoding',
  'Content-Language',
  'Accept-Ranges',
  'ETag',
  'Last-Modified',
  'Cache-Control',
  'Transfer-Encoding',
];

// Koa/http-errors statuses → the Matrix errcode a client expects for them.
const ERRCODE_FOR_STATUS: Readonly<Record<number, string>> = {
  401: ErrCode.UNAUTHORIZED,
  403: ErrCode.FORBIDDEN,
  404: ErrCode.NOT_FOUND,
  405: ErrCode.UNRECOGNIZED,
  413: ErrCode.TOO_LARGE,
  429: ErrCode.LIMIT_EXCEEDED,
};

/** True for errors that only mean "the client went away". */
export function isClientDisconnect(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, name } = err as { code?: unknown; name?: unknown };
  return (
    name === 'AbortError' ||
    name === 'ClientDisconnectedError' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ABORT_ERR'
  );
}

/**
 * Maps any thrown value to the `MatrixError` the client gets:
 * `MatrixError` as is; `ContentTooLargeError` (from `@hsmedia/errors`) → 413 `M_TOO_LARGE`;
 * exposed Koa/http-errors 4xx → the matching errcode (else `M_UNKNOWN`);
 * everything else → 500 `M_UNKNOWN` with a generic message (no internals leak).
 */
export function toMatrixError(err: unknown): MatrixError {
  if (isMatrixError(err)) return err;
  if (err instanceof ContentTooLargeError) {
    return new MatrixError(ErrCode.TOO_LARGE, 'Content is too large', { httpStatus: 413, cause: err });
  }
  if (typeof err === 'object' && err !== null) {
    const { status, expose, message } = err as { status?: unknown; expose?: unknown; message?: unknown };
    if (typeof status === 'number' && status >= 400 && status < 500 && expose === true) {
      const errcode = ERRCODE_FOR_STATUS[status] ?? ErrCode.UNKNOWN;
      return new MatrixError(errcode, typeof message === 'string' ? message : 'Bad request', {
        httpStatus: status,
        cause: err,
      });
    }
  }
  return new MatrixError(ErrCode.UNKNOWN, 'Internal server error', { httpStatus: 500, cause: err });
}

// Canonical order for the Allow header; other methods follow in the order routes declare them.
const METHOD_ORDER: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** The `Allow` value for the route layers @koa/router matched by path (`ctx.matched`), or ''. */
function allowedMethodsOf(matched: unknown): string {
  if (!Array.isArray(matched)) return '';
  const methods = new Set<string>();
  for (const layer of matched as readonly { readonly methods?: unknown }[]) {
    if (!Array.isArray(layer?.methods)) continue;
    for (const method of layer.methods) if (typeof method === 'string') methods.add(method.toUpperCase());
  }
  const rank = (method: string): number => {
    const index = METHOD_ORDER.indexOf(method);
    return index === -1 ? METHOD_ORDER.length : index;
  };
  return [...methods].sort((x, y) => rank(x) - rank(y)).join(', ');
}

const silentLogger: ErrorLogger = { error() {}, warn() {}, debug() {} };

/**
 * The outermost middleware: renders every error as a Matrix JSON error
 * (`{"errcode", "error"}` with the right status and the error's headers).
 * Unexpected errors become 500 `M_UNKNOWN` and are logged, never echoed.
 * Koa's own `ctx.onerror` would answer text/plain, which Matrix clients cannot parse.
 *
 * @example
 * ```ts
 * const app = new Koa();
 * app.use(matrixErrors({ logger }));
 * app.use(matrixCors());
 * app.use(router.routes()).use(router.allowedMethods(allowedMethodsOptions));
 * app.use(unrecognized());
 * ```
 */
export function matrixErrors(options: MatrixErrorsOptions = {}): Middleware {
  const logger = options.logger ?? silentLogger;
  return async function matrixErrorsMiddleware(ctx, next) {
    try {
      await next();
    } catch (err) {
      const matrixError = toMatrixError(err);
      // ctx.path, never ctx.url: the deprecated `access_token` query parameter must not reach logs.
      const where = { method: ctx.method, path: ctx.path };
      if (isClientDisconnect(err)) {
        logger.debug({ ...where, err }, 'client disconnected');
      } else if (matrixError.httpStatus >= 502 && matrixError.httpStatus <= 504 && isMatrixError(err)) {
        // A gateway answer we chose (a remote server failed or was slow): expected, and any client can
        // cause one, so one warn line without a stack rather than an error that floods alerting.
        logger.warn({ ...where, status: matrixError.httpStatus, errcode: matrixError.errcode, error: matrixError.message }, 'upstream failed');
      } else if (matrixError.httpStatus >= 500) {
        logger.error({ ...where, err }, 'request failed');
      }
      if (ctx.headerSent || !ctx.writable) {
        // Too late for an error body: cut the connection so the client sees a truncated response.
        ctx.res.destroy();
        return;
      }
      for (const name of REPRESENTATION_HEADERS) ctx.remove(name);
      ctx.set({ ...matrixError.headers });
      if (matrixError.httpStatus === 405 && ctx.response.headers['allow'] === undefined) {
        // RFC 9110 §15.5.6: a 405 names the methods the resource has. @koa/router's throwing
        // allowedMethods() does not set it, so it is read from the routes that matched the path.
        const allow = allowedMethodsOf((ctx as { matched?: unknown }).matched);
        if (allow !== '') ctx.set('Allow', allow);
      }
      ctx.status = matrixError.httpStatus;
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(matrixError.toJSON());
    }
  };
}
