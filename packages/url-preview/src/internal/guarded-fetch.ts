/**
 * Outbound GETs for previews on `node:http`/`node:https`, behind the SSRF
 * guard of `@hsmedia/net-guard` on every hop: IP-literal hosts are checked
 * before connecting, names through the guarded `lookup` (so the socket
 * connects to exactly the address that was checked: no DNS rebinding), and
 * the connected socket's remote address once more. Redirects are followed
 * here, one hop at a time, with every check repeated for each hop.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { assertAddressAllowed, assertHostAllowed, ipLiteralOf, isBlockedAddressError, type AddressPolicy } from '@hsmedia/net-guard';
import { PreviewError, isPreviewError } from '../errors.js';

/** A response whose body has not been read yet. */
export interface FetchedResponse {
  /** The URL that answered (after redirects). */
  readonly url: URL;
  readonly status: number;
  readonly contentType: string | null;
  readonly contentLength: number | null;
  readonly contentDisposition: string | null;
  /** The `Location` header (redirects). */
  readonly location: string | null;
  /** The body; errors are {@link PreviewError}s. Iterate at most once. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Drops the connection (stop reading early). Safe to call more than once. */
  close(): void;
}

/** What every request needs. */
export interface GuardedFetchContext {
  readonly policy: AddressPolicy;
  /** `guardedLookup(policy, …)`. */
  readonly lookup: LookupFunction;
  readonly userAgent: string;
  readonly acceptLanguage: string;
  /** Throws a {@link PreviewError} for a URL that may not be fetched (scheme, deny rules). */
  readonly checkUrl: (url: URL) => void;
  readonly maxRedirects: number;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

function firstHeader(value: string | string[] | undefined): string | null {
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined ? null : text;
}

/** Describes a URL for error messages shown to the user who asked for it. */
function describe(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** Any failure as a {@link PreviewError}. A deadline abort is a timeout; other aborts pass through. */
export function toPreviewError(error: unknown, url: URL, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason;
    if ((reason as { name?: unknown } | null)?.name === 'TimeoutError') {
      return new PreviewError('timeout', `Timed out fetching ${describe(url)}`, { cause: reason });
    }
    return reason;
  }
  if (isPreviewError(error)) return error;
  if (isBlockedAddressError(error)) {
    return new PreviewError('address_blocked', `IP address blocked: ${describe(url)}`, { cause: error });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NODATA' || code === 'EAI_FAIL') {
    return new PreviewError('dns_failure', `DNS resolution failure for ${url.hostname}`, { cause: error });
  }
  return new PreviewError('unreachable', `Failed to download ${describe(url)}`, { cause: error });
}

/** One GET, no redirect handling. */
function exchange(context: GuardedFetchContext, url: URL, accept: string, signal: AbortSignal): Promise<FetchedResponse> {
  const isTls = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  try {
    signal.throwIfAborted();
    // net.connect skips `lookup` for IP literals, so they are checked here.
    assertHostAllowed(context.policy, host);
  } catch (error) {
    return Promise.reject(toPreviewError(error, url, signal));
  }
  const options: https.RequestOptions = {
    host,
    port: url.port === '' ? (isTls ? 443 : 80) : Number(url.port),
    method: 'GET',
    path: `${url.pathname}${url.search}`,
    headers: {
      Host: url.host,
      'User-Agent': context.userAgent,
      Accept: accept,
      'Accept-Language': context.acceptLanguage,
      // No compression: the byte caps then bound what we decode too (no gzip bombs).
      'Accept-Encoding': 'identity',
    },
    lookup: context.lookup,
    // A fresh connection per request: the checks above run for every socket we use.
    agent: false,
    // SNI carries names only (RFC 6066 §3); for an IP literal the certificate is checked against the IP.
    ...(isTls ? { servername: ipLiteralOf(host) === undefined ? host : '', rejectUnauthorized: true } : {}),
  };

  return new Promise<FetchedResponse>((resolve, reject) => {
    const req = (isTls ? https : http).request(options);
    let response: http.IncomingMessage | undefined;
    let failure: unknown;
    let settled = false;
    const fail = (error: unknown): void => {
      failure ??= error;
      req.destroy();
      response?.destroy();
    };
    const onAbort = (): void => fail(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const cleanup = (): void => signal.removeEventListener('abort', onAbort);

    req.on('socket', (socket: Socket) => {
      const onConnected = (): void => {
        // Second line of defence: the address the socket really reached.
        try {
          if (socket.remoteAddress !== undefined) assertAddressAllowed(context.policy, socket.remoteAddress, host);
        } catch (error) {
          fail(error);
        }
      };
      if (socket.connecting) socket.once('connect', onConnected);
      else onConnected();
    });
    req.on('error', (error) => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(toPreviewError(failure ?? error, url, signal));
    });
    req.on('close', () => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(toPreviewError(failure ?? new Error('connection closed'), url, signal));
    });
    req.on('response', (res) => {
      settled = true;
      response = res;
      res.on('error', () => {}); // reported through the iterator
      const lengthText = firstHeader(res.headers['content-length']);
      const contentLength = lengthText !== null && /^\d{1,15}$/.test(lengthText) ? Number(lengthText) : null;
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        cleanup();
        res.destroy();
        req.destroy();
      };
      const body: AsyncIterable<Uint8Array> = {
        [Symbol.asyncIterator]: async function* () {
          try {
            for await (const chunk of res as AsyncIterable<Buffer>) {
              if (failure !== undefined) throw failure;
              yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
            }
            if (failure !== undefined) throw failure;
            if (!res.complete) throw new Error('connection closed early');
          } catch (error) {
            throw toPreviewError(failure ?? error, url, signal);
          } finally {
            close();
          }
        },
      };
      resolve({
        url,
        status: res.statusCode ?? 0,
        contentType: firstHeader(res.headers['content-type']),
        contentLength,
        contentDisposition: firstHeader(res.headers['content-disposition']),
        location: firstHeader(res.headers['location']),
        body,
        close,
      });
    });
    req.end();
  });
}

/**
 * GETs `url`, following up to `maxRedirects` redirects itself so that each
 * hop's URL (scheme, deny rules) and address are checked again. Returns the
 * first non-redirect response, whatever its status.
 *
 * @throws {PreviewError} `too_many_redirects`, plus everything a hop can throw.
 */
export async function guardedGet(
  context: GuardedFetchContext,
  start: URL,
  accept: string,
  signal: AbortSignal,
): Promise<FetchedResponse> {
  let url = start;
  for (let hop = 0; ; hop += 1) {
    context.checkUrl(url);
    const response = await exchange(context, url, accept, signal);
    if (!REDIRECT_STATUSES.has(response.status)) return response;
    response.close();
    if (hop >= context.maxRedirects) {
      throw new PreviewError('too_many_redirects', `More than ${context.maxRedirects} redirects from ${describe(start)}`);
    }
    url = nextHop(url, response.location);
  }
}

function nextHop(from: URL, location: string | null): URL {
  if (location === null || location.trim() === '') {
    throw new PreviewError('too_many_redirects', `Redirect without a Location from ${describe(from)}`);
  }
  try {
    const next = new URL(location.trim(), from);
    next.hash = '';
    return next;
  } catch {
    throw new PreviewError('too_many_redirects', `Redirect to an invalid URL from ${describe(from)}`);
  }
}
