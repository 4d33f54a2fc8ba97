import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Context, Middleware, Next } from 'koa';
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

/** Options for {@link requestLog}. */
export interface RequestLogOptions {
  /**
   * Fraction (0 < rate ≤ 1) of successful lines (status below 400, response
   * finished) written; errors and aborted requests are always written.
   * Default 1: every line.
   */
  readonly successSampleRate?: number;
  /** Random numbers in [0, 1) for sampling; default `Math.random` (tests pass their own). */
  readonly random?: () => number;
}

/** What one request's line needs, kept on the response under a symbol: one object per request, no closures. */
interface RequestLogState {
  readonly ctx: Context;
  readonly logger: Logger;
  readonly sampleRate: number;
  readonly random: () => number;
  readonly started: number;
  readonly write: ServerResponse['write'];
  readonly end: ServerResponse['end'];
  bytes: number;
}

const STATE: unique symbol = Symbol('hsmedia.requestLog');

type LoggedResponse = ServerResponse & { [STATE]?: RequestLogState | undefined };

function byteLengthOf(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return chunk instanceof Uint8Array ? chunk.byteLength : 0;
}

// Count what actually goes out, streamed or not (Content-Length is absent for streams). Shared
// functions reading the state off `this`, so a request allocates no wrapper closures.
function countedWrite(this: LoggedResponse, chunk: unknown, ...rest: unknown[]): boolean {
  const state = this[STATE]!;
  state.bytes += byteLengthOf(chunk, rest[0]);
  return (state.write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
}

function countedEnd(this: LoggedResponse, chunk?: unknown, ...rest: unknown[]): LoggedResponse {
  const state = this[STATE]!;
  if (typeof chunk !== 'function') state.bytes += byteLengthOf(chunk, rest[0]);
  return (state.end as (...args: unknown[]) => LoggedResponse).call(this, chunk, ...rest);
}

function writeLine(this: LoggedResponse): void {
  const state = this[STATE];
  if (state === undefined) return;
  this[STATE] = undefined;
  // The line is written once (the client may go away before Koa ends the response): later writes and
  // the final end go straight to the response, uncounted.
  this.write = state.write;
  this.end = state.end;
  const { ctx } = state;
  const finished = this.writableFinished;
  const status = finished ? this.statusCode : ctx.status;
  // Sampling thins out successes only: every error and every aborted request is written.
  if (state.sampleRate < 1 && finished && status < 400 && state.random() >= state.sampleRate) return;
  const durationMs = performance.now() - state.started;
  const requester = (ctx.state as { requester?: { userId?: unknown } }).requester;
  const line: Record<string, unknown> = {
    method: ctx.method,
    path: redactRequestTarget(ctx.originalUrl),
    status,
    bytes: state.bytes,
    duration_ms: Math.round(durationMs * 1000) / 1000,
  };
  if (typeof requester?.userId === 'string') line['user_id'] = requester.userId;
  if (!finished) line['aborted'] = true;
  state.logger.info(line, 'request');
}

function infoEnabled(logger: Logger): boolean {
  const levels = logger as Partial<{ isLevelEnabled(level: string): boolean }>;
  return typeof levels.isLevelEnabled !== 'function' || levels.isLevelEnabled('info');
}

/**
 * Logs one line per request when its response ends (or the client goes
 * away): method, path (tokens redacted), status, response body bytes,
 * duration in ms, and the user when client auth identified one. Put it
 * first, outside the error middleware, so the logged status is the one sent.
 *
 * Cheap on the request path: one small state object per request and shared
 * functions (no closures, no extra promise); nothing at all when the logger
 * does not write `info` lines. The lines go to the logger's own
 * asynchronous, bounded destination (`createLogDestination`).
 */
export function requestLog(logger: Logger, options: RequestLogOptions = {}): Middleware {
  const sampleRate = options.successSampleRate ?? 1;
  if (!(sampleRate > 0 && sampleRate <= 1)) throw new TypeError('successSampleRate must be in (0, 1]');
  const random = options.random ?? Math.random;
  if (!infoEnabled(logger)) return function requestLogOff(_ctx: Context, next: Next): Promise<unknown> {
    return next();
  };
  return function requestLogMiddleware(ctx: Context, next: Next): Promise<unknown> {
    const res = ctx.res as LoggedResponse;
    res[STATE] = { ctx, logger, sampleRate, random, started: performance.now(), write: res.write, end: res.end, bytes: 0 };
    res.write = countedWrite as ServerResponse['write'];
    res.end = countedEnd as ServerResponse['end'];
    res.on('close', writeLine);
    return next();
  };
}
