import type { Middleware } from 'koa';
import type { Logger } from '@hsmedia/runtime';

/**
 * The request target for logs: `access_token` query values (deprecated but
 * still sent by old clients, spec §"Using access tokens") are replaced by
 * `[redacted]`, so tokens never reach log files.
 */
export function redactRequestTarget(target: string): string {
  const query = target.indexOf('?');
  if (query < 0) return target;
  // Fast path: a parameter name can only decode to access_token if it is spelled out or percent-encoded.
  if (!target.includes('access_token', query) && !target.includes('%', query)) return target;
  const path = target.slice(0, query);
  const params = target
    .slice(query + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const rawName = equals < 0 ? pair : pair.slice(0, equals);
      let name: string;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        name = rawName;
      }
      return name === 'access_token' ? `${rawName}=[redacted]` : pair;
    });
  return `${path}?${params.join('&')}`;
}

/**
 * Logs one line per request when its response ends (or the client goes
 * away): method, path (tokens redacted), status, response body bytes,
 * duration in ms, and the user when client auth identified one. Put it
 * first, outside the error middleware, so the logged status is the one sent.
 */
export function requestLog(logger: Logger): Middleware {
  return async function requestLogMiddleware(ctx, next) {
    const started = process.hrtime.bigint();
    const { res } = ctx;
    let bytes = 0;
    // Count what actually goes out, streamed or not: Content-Length is absent for streams.
    const write = res.write;
    const end = res.end;
    const count = (chunk: unknown, encoding?: unknown): void => {
      if (typeof chunk === 'string') bytes += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
      else if (chunk instanceof Uint8Array) bytes += chunk.byteLength;
    };
    res.write = function countedWrite(this: typeof res, chunk: unknown, ...rest: unknown[]): boolean {
      count(chunk, rest[0]);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof res.write;
    res.end = function countedEnd(this: typeof res, chunk?: unknown, ...rest: unknown[]): typeof res {
      if (typeof chunk !== 'function') count(chunk, rest[0]);
      return (end as (...args: unknown[]) => typeof res).call(this, chunk, ...rest);
    } as typeof res.end;
    res.once('close', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const requester = (ctx.state as { requester?: { userId?: unknown } }).requester;
      const line: Record<string, unknown> = {
        method: ctx.method,
        path: redactRequestTarget(ctx.originalUrl),
        status: res.writableFinished ? res.statusCode : ctx.status,
        bytes,
        duration_ms: Math.round(durationMs * 1000) / 1000,
      };
      if (typeof requester?.userId === 'string') line['user_id'] = requester.userId;
      if (!res.writableFinished) line['aborted'] = true;
      logger.info(line, 'request');
    });
    await next();
  };
}
