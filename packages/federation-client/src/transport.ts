import type http from 'node:http';
import type { LookupFunction } from 'node:net';
import {
  GuardedHttpClient,
  isBlockedAddressError,
  isGuardedRequestError,
  type AddressPolicy,
  type GuardedRequestErrorCode,
  type GuardedResponse,
} from '@hsmedia/net-guard';
import { FederationError, isFederationError, type FederationErrorCode } from './errors.js';
import { mapStreamErrors } from './internal/map-stream-errors.js';

/** Connect and idle timeouts of every outbound request. */
export interface Timeouts {
  /** TCP connect plus TLS handshake. */
  readonly connectMs: number;
  /** Longest silence while waiting for or reading a response. */
  readonly idleMs: number;
}

export interface TransportOptions {
  readonly addressPolicy: AddressPolicy;
  readonly timeouts: Timeouts;
  /** Extra trusted CA certificates (PEM), added to Node's default roots. */
  readonly ca?: readonly (string | Buffer)[];
  /** The DNS lookup to guard (tests inject one). Default `dns.lookup`. */
  readonly lookup?: LookupFunction;
  readonly userAgent: string;
}

export interface TransportRequest {
  /** Scheme, path and query of the request; host and port unless `connectTo` is given. */
  readonly url: URL;
  /** Where to open the socket (an SRV target, say); defaults to the URL's host and port. */
  readonly connectTo?: { readonly host: string; readonly port: number };
  /** `Host` header; defaults to the URL's host. */
  readonly hostHeader?: string;
  /**
   * The certificate name to verify and send as SNI. `null`: the certificate
   * must be valid for the IP address connected to, and no SNI is sent
   * ([resolving server names](https://spec.matrix.org/v1.12/server-server-api/#resolving-server-names)).
   * Default: the connect host, or no SNI when it is an IP literal.
   */
  readonly tlsServerName?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
  /** Default `GET`. */
  readonly method?: 'GET' | 'POST';
  /** A small request body (sent with `Content-Length`). */
  readonly body?: Uint8Array;
  /** Body bytes allowed; the body stream errors with `too_large` past it. */
  readonly maxBodyBytes: number;
  /** How long to wait for the response headers once connected. Default: the idle timeout. */
  readonly headersTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface TransportResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The declared `Content-Length`, when valid. */
  readonly contentLength: number | null;
  /**
   * The body, capped at `maxBodyBytes`. Errors with a {@link FederationError}
   * (`too_large`, `timeout`, `bad_response` when the connection drops
   * before the declared length) or the abort reason. Cancel it to drop the
   * connection.
   */
  readonly body: ReadableStream<Uint8Array>;
}

function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Maps a network or guard error to a {@link FederationError}; the abort reason passes through. */
function classifyNetworkError(error: unknown, what: string, signal?: AbortSignal): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (isFederationError(error)) return error;
  if (isBlockedAddressError(error)) return new FederationError('unreachable', `${what}: ${error.message}`, { cause: error });
  if (isGuardedRequestError(error)) {
    return new FederationError(GUARD_ERROR_CODES[error.code], error.message, { cause: error });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new FederationError('bad_response', `${what}: connection closed early`, { cause: error });
  }
  if (typeof code === 'string' && code.startsWith('HPE_')) {
    return new FederationError('bad_response', `${what}: invalid HTTP response`, { cause: error });
  }
  return new FederationError('unreachable', `${what}: ${(error as Error | null)?.message ?? String(error)}`, {
    cause: error,
  });
}

const GUARD_ERROR_CODES: Readonly<Record<GuardedRequestErrorCode, FederationErrorCode>> = {
  invalid_url: 'unreachable',
  timeout: 'timeout',
  too_large: 'too_large',
  truncated: 'bad_response',
};

/**
 * Outbound HTTP(S) for federation on net-guard's `GuardedHttpClient`: the
 * SSRF guard on every connection, connect and idle timeouts, pooled
 * connections, byte-capped Web stream bodies, and every failure as a
 * {@link FederationError}.
 */
export class Transport {
  readonly #client: GuardedHttpClient;
  readonly #userAgent: string;

  constructor(options: TransportOptions) {
    this.#userAgent = options.userAgent;
    this.#client = new GuardedHttpClient({
      policy: options.addressPolicy,
      keepAlive: true,
      connectTimeoutMs: options.timeouts.connectMs,
      idleTimeoutMs: options.timeouts.idleMs,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    });
  }

  /** Drops pooled connections. */
  close(): void {
    this.#client.close();
  }

  async request(request: TransportRequest): Promise<TransportResponse> {
    const { url, signal } = request;
    const what = `${url.protocol}//${request.hostHeader ?? url.host}${url.pathname}`;
    let res: GuardedResponse;
    try {
      res = await this.#client.request(url, {
        method: request.method ?? 'GET',
        headers: {
          'User-Agent': this.#userAgent,
          ...request.headers,
          ...(request.hostHeader === undefined ? {} : { Host: request.hostHeader }),
        },
        maxBodyBytes: request.maxBodyBytes,
        ...(request.body === undefined ? {} : { body: request.body }),
        ...(request.connectTo === undefined ? {} : { connectTo: request.connectTo }),
        ...(request.tlsServerName === undefined ? {} : { servername: request.tlsServerName }),
        ...(request.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: request.headersTimeoutMs }),
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      throw classifyNetworkError(error, what, signal);
    }
    return {
      status: res.status,
      headers: res.headers,
      contentLength: res.contentLength,
      body: mapStreamErrors(res.body, (error) => classifyNetworkError(error, what, signal)),
    };
  }
}

/**
 * Reads a small body whole (error bodies, well-known, JSON). The stream's
 * own cap applies; `maxBytes`, when lower, stops earlier with `too_large`.
 */
export async function readAll(body: ReadableStream<Uint8Array>, maxBytes: number = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks);
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new FederationError('too_large', `Body exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
}

export { header as firstHeader };
