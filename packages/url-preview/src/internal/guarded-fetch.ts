/**
 * Outbound GETs for previews on net-guard's `GuardedHttpClient`, so the SSRF
 * guard runs on every hop: IP-literal hosts are checked before connecting,
 * names through the guarded `lookup` (no DNS rebinding), and the connected
 * socket's remote address once more. Redirects are followed here, one hop at
 * a time, with the URL rules and every address check repeated for each hop.
 */
import {
  isBlockedAddressError,
  isGuardedRequestError,
  type GuardedHttpClient,
  type GuardedResponse,
} from '@hsmedia/net-guard';
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
  /** Guarded by the previewer's IP range policy; one fresh connection per request. */
  readonly client: GuardedHttpClient;
  readonly userAgent: string;
  readonly acceptLanguage: string;
  /** Throws a {@link PreviewError} for a URL that may not be fetched (scheme, deny rules). */
  readonly checkUrl: (url: URL) => void;
  readonly maxRedirects: number;
}

/** Options of one {@link guardedGet}. */
export interface GuardedGetOptions {
  /** The `Accept` header. */
  readonly accept: string;
  /**
   * Body bytes allowed (the body errors with `too_large` past it);
   * `Number.POSITIVE_INFINITY` when the reader stops at its own limit.
   */
  readonly maxBytes: number;
  /** The fetch's deadline (a `TimeoutError` abort is reported as `timeout`). */
  readonly signal: AbortSignal;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

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
  if (isGuardedRequestError(error) && (error.code === 'timeout' || error.code === 'too_large')) {
    const message = error.code === 'timeout' ? `Timed out fetching ${describe(url)}` : `Requested file is too large: ${describe(url)}`;
    return new PreviewError(error.code, message, { cause: error });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NODATA' || code === 'EAI_FAIL') {
    return new PreviewError('dns_failure', `DNS resolution failure for ${url.hostname}`, { cause: error });
  }
  return new PreviewError('unreachable', `Failed to download ${describe(url)}`, { cause: error });
}

/** The body of `response` as an async iterable whose errors are {@link PreviewError}s; closes the response when done. */
function previewBody(response: GuardedResponse, signal: AbortSignal): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]: async function* () {
      const reader = response.body.getReader();
      try {
        for (;;) {
          const next = await reader.read();
          if (next.done) return;
          yield next.value;
        }
      } catch (error) {
        throw toPreviewError(error, response.url, signal);
      } finally {
        response.close();
      }
    },
  };
}

/** One GET, no redirect handling. */
async function exchange(context: GuardedFetchContext, url: URL, options: GuardedGetOptions): Promise<FetchedResponse> {
  const { signal } = options;
  let response: GuardedResponse;
  try {
    response = await context.client.request(url, {
      headers: {
        'User-Agent': context.userAgent,
        Accept: options.accept,
        'Accept-Language': context.acceptLanguage,
        // No compression: the byte caps then bound what we decode too (no gzip bombs).
        'Accept-Encoding': 'identity',
      },
      maxBodyBytes: options.maxBytes,
      signal,
    });
  } catch (error) {
    throw toPreviewError(error, url, signal);
  }
  const header = (name: string): string | null => response.header(name) ?? null;
  return {
    url,
    status: response.status,
    contentType: header('content-type'),
    contentLength: response.contentLength,
    contentDisposition: header('content-disposition'),
    location: header('location'),
    body: previewBody(response, signal),
    close: () => response.close(),
  };
}

/**
 * GETs `url`, following up to `maxRedirects` redirects itself so that each
 * hop's URL (scheme, deny rules) and address are checked again. Returns the
 * first non-redirect response, whatever its status.
 *
 * @throws {PreviewError} `too_many_redirects`, plus everything a hop can throw.
 */
export async function guardedGet(context: GuardedFetchContext, start: URL, options: GuardedGetOptions): Promise<FetchedResponse> {
  let url = start;
  for (let hop = 0; ; hop += 1) {
    context.checkUrl(url);
    const response = await exchange(context, url, options);
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
