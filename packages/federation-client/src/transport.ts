import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { rootCertificates } from 'node:tls';
import {
  assertAddressAllowed,
  assertHostAllowed,
  guardedLookup,
  isBlockedAddressError,
  type AddressPolicy,
} from '@hsmedia/net-guard';
import { FederationError, isFederationError } from './errors.js';

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
   * must be valid for the IP address connected to, and no SNI is sent (spec
   * S2S "Resolving server names"). Default: the connect host.
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

/** Maps a socket-level error to a {@link FederationError}; the abort reason passes through. */
function classifyNetworkError(error: unknown, what: string, signal?: AbortSignal): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (isFederationError(error)) return error;
  if (isBlockedAddressError(error)) return new FederationError('unreachable', `${what}: ${error.message}`, { cause: error });
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new FederationError('bad_response', `${what}: connection closed early`, { cause: error });
  }
  if (code === 'HPE_INVALID_CONSTANT' || (typeof code === 'string' && code.startsWith('HPE_'))) {
    return new FederationError('bad_response', `${what}: invalid HTTP response`, { cause: error });
  }
  return new FederationError('unreachable', `${what}: ${(error as Error | null)?.message ?? String(error)}`, {
    cause: error,
  });
}

/**
 * Outbound HTTP(S) on `node:http`/`node:https`, with the SSRF guard on every
 * connection (IP literals before connecting, names through the guarded
 * lookup, and the connected socket's address once more), connect and idle
 * timeouts, and byte-capped Web stream bodies.
 */
export class Transport {
  readonly #policy: AddressPolicy;
  readonly #timeouts: Timeouts;
  readonly #lookup: LookupFunction;
  readonly #userAgent: string;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;

  constructor(options: TransportOptions) {
    this.#policy = options.addressPolicy;
    this.#timeouts = options.timeouts;
    this.#userAgent = options.userAgent;
    this.#lookup = guardedLookup(options.addressPolicy, options.lookup === undefined ? {} : { lookup: options.lookup });
    this.#httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    this.#httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 32,
      // `ca` replaces Node's roots, so append the extra CAs to them.
      ...(options.ca === undefined || options.ca.length === 0 ? {} : { ca: [...rootCertificates, ...options.ca] }),
    });
  }

  /** Drops pooled connections. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  request(request: TransportRequest): Promise<TransportResponse> {
    const { url, signal } = request;
    const isTls = url.protocol === 'https:';
    if (!isTls && url.protocol !== 'http:') {
      return Promise.reject(new FederationError('unreachable', `Unsupported URL scheme ${url.protocol}`));
    }
    const connectHost = request.connectTo?.host ?? url.hostname.replace(/^\[(.*)\]$/, '$1');
    const connectPort = request.connectTo?.port ?? (url.port === '' ? (isTls ? 443 : 80) : Number(url.port));
    const what = `${url.protocol}//${request.hostHeader ?? url.host}${url.pathname}`;
    try {
      signal?.throwIfAborted();
      assertHostAllowed(this.#policy, connectHost);
    } catch (error) {
      return Promise.reject(classifyNetworkError(error, what, signal));
    }
    const tlsServerName = request.tlsServerName === undefined ? connectHost : request.tlsServerName;
    const options: https.RequestOptions = {
      host: connectHost,
      port: connectPort,
      method: request.method ?? 'GET',
      path: `${url.pathname}${url.search}`,
      headers: {
        'User-Agent': this.#userAgent,
        ...request.headers,
        ...(request.body === undefined ? {} : { 'Content-Length': String(request.body.byteLength) }),
        Host: request.hostHeader ?? url.host,
      },
      lookup: this.#lookup,
      agent: isTls ? this.#httpsAgent : this.#httpAgent,
      // Empty servername: no SNI, and Node then checks the certificate against the connected IP.
      ...(isTls ? { servername: tlsServerName ?? '', rejectUnauthorized: true } : {}),
    };
    const idleMs = this.#timeouts.idleMs;
    const headersTimeoutMs = request.headersTimeoutMs ?? idleMs;

    return new Promise<TransportResponse>((resolve, reject) => {
      let failure: unknown;
      let settled = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const req = (isTls ? https : http).request(options);

      // Destroy without an error argument: we keep the reason ourselves, so no
      // 'error' event can escape on a request or response nobody listens to any more.
      const fail = (error: unknown): void => {
        failure ??= error;
        req.destroy();
      };
      const onAbort = (): void => fail(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => {
        clearTimeout(connectTimer);
        signal?.removeEventListener('abort', onAbort);
      };

      req.on('socket', (socket: Socket) => {
        const onConnected = (): void => {
          clearTimeout(connectTimer);
          // Second line of defence: the address the socket really reached.
          const remote = socket.remoteAddress;
          try {
            if (remote !== undefined) assertAddressAllowed(this.#policy, remote, connectHost);
          } catch (error) {
            fail(classifyNetworkError(error, what));
          }
        };
        if (socket.connecting) {
          connectTimer = setTimeout(
            () => fail(new FederationError('timeout', `${what}: no connection within ${this.#timeouts.connectMs} ms`)),
            this.#timeouts.connectMs,
          );
          socket.once(isTls ? 'secureConnect' : 'connect', onConnected);
        } else {
          onConnected();
        }
      });
      // One socket-inactivity timer: first for the response headers, then between body chunks.
      let waitingForHeaders = true;
      req.on('timeout', () =>
        fail(
          new FederationError(
            'timeout',
            waitingForHeaders
              ? `${what}: no response within ${headersTimeoutMs} ms`
              : `${what}: response stalled for ${idleMs} ms`,
          ),
        ),
      );
      req.setTimeout(headersTimeoutMs);
      req.on('error', (error) => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(classifyNetworkError(failure ?? error, what, signal));
      });
      req.on('close', () => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(classifyNetworkError(failure ?? new Error('connection closed'), what, signal));
      });
      req.on('response', (res) => {
        settled = true;
        clearTimeout(connectTimer);
        waitingForHeaders = false;
        req.setTimeout(idleMs);
        const lengthText = header(res.headers, 'content-length');
        const contentLength = lengthText !== undefined && /^\d{1,15}$/.test(lengthText) ? Number(lengthText) : null;
        // The iterator listens for errors only once pulled; never crash on an unread body.
        res.on('error', () => {});
        const iterator = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        let received = 0;
        let done = false;
        const finish = (): void => {
          done = true;
          cleanup();
        };
        const body = new ReadableStream<Uint8Array>(
          {
            pull: async (controller) => {
              try {
                const next = await iterator.next();
                if (failure !== undefined) throw failure;
                if (next.done === true) {
                  if (contentLength !== null && received !== contentLength) {
                    throw new FederationError('bad_response', `${what}: body ended after ${received} of ${contentLength} bytes`);
                  }
                  finish();
                  controller.close();
                  return;
                }
                const chunk = next.value;
                received += chunk.length;
                if (received > request.maxBodyBytes) {
                  throw new FederationError('too_large', `${what}: body exceeds ${request.maxBodyBytes} bytes`);
                }
                controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
              } catch (error) {
                const reason = classifyNetworkError(failure ?? error, what, signal);
                fail(reason);
                finish();
                controller.error(reason);
              }
            },
            cancel: (reason) => {
              if (!done) fail(reason ?? new Error('body cancelled'));
              finish();
            },
          },
          { highWaterMark: 0 },
        );
        resolve({ status: res.statusCode ?? 0, headers: res.headers, contentLength, body });
      });
      req.end(request.body);
    });
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
