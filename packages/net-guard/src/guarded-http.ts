/**
 * One outbound HTTP(S) request on `node:http`/`node:https` with the SSRF
 * guard on every connection: IP-literal hosts are checked before
 * connecting, names through the guarded `lookup` (the socket connects to
 * exactly the address that was checked, so DNS rebinding cannot slip past),
 * and the connected socket's address once more. Connect, header and idle
 * timeouts, an `AbortSignal`, and a body byte cap enforced while streaming.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import { rootCertificates } from 'node:tls';
import { GuardedRequestError } from './errors.js';
import { assertAddressAllowed, assertHostAllowed, guardedLookup, ipLiteralOf } from './lookup.js';
import type { AddressPolicy } from './policy.js';

/** Options of {@link GuardedHttpClient}. */
export interface GuardedHttpClientOptions {
  /** Every connection's destination address is checked against it. */
  readonly policy: AddressPolicy;
  /** The resolver to guard; default `dns.lookup`. Tests inject one that maps names to loopback. */
  readonly lookup?: LookupFunction;
  /** Extra trusted CA certificates (PEM), added to Node's default roots. Verification is always on. */
  readonly ca?: readonly (string | Buffer)[];
  /**
   * Keep connections open and reuse them (`maxSockets` per host). Reused
   * sockets already passed the checks when they connected. Default false:
   * a fresh connection per request.
   */
  readonly keepAlive?: boolean;
  /** Connections per host with `keepAlive`. Default 32. */
  readonly maxSockets?: number;
  /** Longest wait for the TCP connection (plus the TLS handshake, for https). Default: no limit. */
  readonly connectTimeoutMs?: number;
  /**
   * Longest silence between body chunks, and the default wait for the
   * response headers once connected. Default: no limit (use the signal).
   */
  readonly idleTimeoutMs?: number;
}

/** Options of {@link GuardedHttpClient.request}. */
export interface GuardedRequestOptions {
  /** Default `GET`. */
  readonly method?: string;
  /** Request headers. `Host` defaults to the URL's host; `Content-Length` is set for `body`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** A small request body, sent whole. */
  readonly body?: Uint8Array;
  /** Where to open the socket (an SRV target, say); default the URL's host and port. Checked like the URL's host. */
  readonly connectTo?: { readonly host: string; readonly port: number };
  /**
   * https only: the certificate name to verify and send as SNI. `null`: no
   * SNI, and the certificate must be valid for the address connected to.
   * Default: the connect host, or no SNI when it is an IP literal (SNI
   * carries names only, RFC 6066 §3).
   */
  readonly servername?: string | null;
  /**
   * Body bytes allowed: the body errors with `too_large` once more arrive.
   * `Number.POSITIVE_INFINITY` when the reader stops at its own limit.
   */
  readonly maxBodyBytes: number;
  /** How long to wait for the response headers once connected. Default the client's `idleTimeoutMs`. */
  readonly headersTimeoutMs?: number;
  /** Aborts the request, and the body while it is read; both reject with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** A response whose body has not been read yet. */
export interface GuardedResponse {
  /** The URL requested (redirects are not followed: a 3xx is a response like any other). */
  readonly url: URL;
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The declared `Content-Length`, when valid. */
  readonly contentLength: number | null;
  /**
   * The body, capped at `maxBodyBytes`. Errors with a
   * {@link GuardedRequestError} (`too_large`, `timeout`, `truncated`), a
   * network error, or the abort reason. Cancel it (or call `close`) to drop
   * the connection.
   */
  readonly body: ReadableStream<Uint8Array>;
  /** The first value of a response header (`name` in lower case). */
  header(name: string): string | undefined;
  /** Drops the connection unless the body was read to its end; safe at any time and more than once. */
  close(): void;
}

const CONTENT_LENGTH = /^\d{1,15}$/;

/**
 * Makes SSRF-guarded HTTP(S) requests. One instance per configuration
 * (policy, CAs, pool); `close()` drops pooled connections.
 *
 * @example
 * const client = new GuardedHttpClient({ policy: createAddressPolicy(), connectTimeoutMs: 10_000, idleTimeoutMs: 30_000 });
 * const res = await client.request('https://example.org/', { maxBodyBytes: 1 << 20, signal });
 * for await (const chunk of res.body) handle(chunk);
 */
export class GuardedHttpClient {
  readonly #policy: AddressPolicy;
  readonly #lookup: LookupFunction;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  readonly #connectTimeoutMs: number | undefined;
  readonly #idleTimeoutMs: number | undefined;

  constructor(options: GuardedHttpClientOptions) {
    this.#policy = options.policy;
    this.#lookup = guardedLookup(options.policy, options.lookup === undefined ? {} : { lookup: options.lookup });
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    const pool = options.keepAlive === true ? { keepAlive: true, maxSockets: options.maxSockets ?? 32 } : { keepAlive: false };
    this.#httpAgent = new http.Agent(pool);
    this.#httpsAgent = new https.Agent({
      ...pool,
      // `ca` replaces Node's roots, so the extra CAs are appended to them.
      ...(options.ca === undefined || options.ca.length === 0 ? {} : { ca: [...rootCertificates, ...options.ca] }),
    });
  }

  /** Drops pooled connections. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  /**
   * Sends one request and resolves once the response headers arrive,
   * whatever the status.
   *
   * @throws {BlockedAddressError} when the destination address is refused (before any packet is sent to it).
   * @throws {GuardedRequestError} `invalid_url`, `timeout`.
   * Network errors pass through; an abort rejects with the signal's reason.
   */
  request(target: URL | string, options: GuardedRequestOptions): Promise<GuardedResponse> {
    const { signal } = options;
    let url: URL;
    try {
      url = typeof target === 'string' ? new URL(target) : target;
    } catch (error) {
      return Promise.reject(new GuardedRequestError('invalid_url', `Not a URL: ${JSON.stringify(target)}`, { cause: error }));
    }
    const isTls = url.protocol === 'https:';
    if (!isTls && url.protocol !== 'http:') {
      return Promise.reject(new GuardedRequestError('invalid_url', `Unsupported URL scheme ${url.protocol}`));
    }
    const connectHost = bare(options.connectTo?.host ?? url.hostname);
    const connectPort = options.connectTo?.port ?? (url.port === '' ? (isTls ? 443 : 80) : Number(url.port));
    try {
      signal?.throwIfAborted();
      // net.connect skips `lookup` for IP literals, so they are checked here.
      assertHostAllowed(this.#policy, connectHost);
    } catch (error) {
      return Promise.reject(error);
    }
    const servername =
      options.servername === undefined ? (ipLiteralOf(connectHost) === undefined ? connectHost : '') : (options.servername ?? '');
    const method = options.method ?? 'GET';
    const requestOptions: https.RequestOptions = {
      host: connectHost,
      port: connectPort,
      method,
      path: `${url.pathname}${url.search}`,
      headers: {
        Host: url.host,
        ...options.headers,
        ...(options.body === undefined ? {} : { 'Content-Length': String(options.body.byteLength) }),
      },
      lookup: this.#lookup,
      agent: isTls ? this.#httpsAgent : this.#httpAgent,
      // An empty servername sends no SNI, and Node then checks the certificate against the host connected to.
      ...(isTls ? { servername, rejectUnauthorized: true } : {}),
    };
    const exchange = new Exchange({
      url,
      what: `${method} ${url.protocol}//${url.host}${url.pathname}`,
      policy: this.#policy,
      connectHost,
      isTls,
      connectTimeoutMs: this.#connectTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs ?? this.#idleTimeoutMs,
      idleTimeoutMs: this.#idleTimeoutMs,
      maxBodyBytes: options.maxBodyBytes,
      signal,
    });
    return exchange.run((isTls ? https : http).request(requestOptions), options.body);
  }
}

function bare(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

interface ExchangeSettings {
  readonly url: URL;
  /** Names the request in error messages (no query: it may carry secrets). */
  readonly what: string;
  readonly policy: AddressPolicy;
  readonly connectHost: string;
  readonly isTls: boolean;
  readonly connectTimeoutMs: number | undefined;
  readonly headersTimeoutMs: number | undefined;
  readonly idleTimeoutMs: number | undefined;
  readonly maxBodyBytes: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Body bytes received and not yet read before the response is paused: a few
 * socket reads, so a consumer that keeps up never pauses and resumes the
 * socket per chunk, and one that does not holds at most this much.
 */
const BODY_READ_AHEAD_BYTES = 256 * 1024;

/** The state of one request: the first failure wins, and every listener and timer goes away at the end. */
class Exchange {
  readonly #s: ExchangeSettings;
  #req: http.ClientRequest | undefined;
  #failure: unknown;
  #connectTimer: NodeJS.Timeout | undefined;
  #finished = false;
  readonly #onAbort = (): void => this.#fail(this.#s.signal?.reason);

  constructor(settings: ExchangeSettings) {
    this.#s = settings;
  }

  /**
   * Destroys without an error argument: the reason is kept here, so no
   * 'error' event can escape on a request or response nobody listens to any more.
   */
  #fail(error: unknown): void {
    this.#failure ??= error;
    this.#req?.destroy();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#connectTimer);
    this.#s.signal?.removeEventListener('abort', this.#onAbort);
  }

  run(req: http.ClientRequest, body: Uint8Array | undefined): Promise<GuardedResponse> {
    const s = this.#s;
    this.#req = req;
    s.signal?.addEventListener('abort', this.#onAbort, { once: true });
    return new Promise<GuardedResponse>((resolve, reject) => {
      let settled = false;
      const settleWithError = (error: unknown): void => {
        if (settled) return;
        settled = true;
        this.#finish();
        reject(s.signal?.aborted === true ? s.signal.reason : (this.#failure ?? error));
      };
      req.on('socket', (socket: Socket) => this.#watchSocket(socket));
      // One socket-inactivity timer: first for the response headers, then between body chunks.
      let waitingForHeaders = true;
      req.on('timeout', () =>
        this.#fail(
          new GuardedRequestError(
            'timeout',
            waitingForHeaders
              ? `${s.what}: no response within ${s.headersTimeoutMs} ms`
              : `${s.what}: response stalled for ${s.idleTimeoutMs} ms`,
          ),
        ),
      );
      if (s.headersTimeoutMs !== undefined) req.setTimeout(s.headersTimeoutMs);
      req.on('error', settleWithError);
      req.on('close', () => settleWithError(new Error(`${s.what}: connection closed before a response`)));
      req.on('response', (res: http.IncomingMessage) => {
        settled = true;
        clearTimeout(this.#connectTimer);
        waitingForHeaders = false;
        req.setTimeout(s.idleTimeoutMs ?? 0);
        resolve(this.#response(res));
      });
      req.end(body);
    });
  }

  #watchSocket(socket: Socket): void {
    const s = this.#s;
    // Second line of defence: the address the socket really reached, before any byte is sent to it.
    const check = (): void => {
      try {
        if (socket.remoteAddress !== undefined) assertAddressAllowed(s.policy, socket.remoteAddress, s.connectHost);
      } catch (error) {
        this.#fail(error);
      }
    };
    if (!socket.connecting) {
      check(); // a pooled connection
      return;
    }
    socket.once('connect', check);
    if (s.connectTimeoutMs !== undefined) {
      const limit = s.connectTimeoutMs;
      this.#connectTimer = setTimeout(
        () => this.#fail(new GuardedRequestError('timeout', `${s.what}: no connection within ${limit} ms`)),
        limit,
      );
      socket.once(s.isTls ? 'secureConnect' : 'connect', () => clearTimeout(this.#connectTimer));
    }
  }

  #response(res: http.IncomingMessage): GuardedResponse {
    const s = this.#s;
    const lengthText = firstValue(res.headers['content-length']);
    const contentLength = lengthText !== undefined && CONTENT_LENGTH.test(lengthText) ? Number(lengthText) : null;
    // Never crash on an 'error' nobody else listens to; the body reports failures itself.
    res.on('error', () => {});
    const body = this.#pushBody(res, contentLength);
    return {
      url: s.url,
      status: res.statusCode ?? 0,
      headers: res.headers,
      contentLength,
      body,
      header: (name: string): string | undefined => firstValue(res.headers[name]),
      close: (): void => {
        if (!this.#finished) this.#fail(new DOMException(`${s.what}: response closed`, 'AbortError'));
        this.#finish();
      },
    };
  }

  /**
   * The body as a Web stream fed by the response's `'data'` events (no async
   * iterator and no promise per chunk: docs/byte-path.md, "The remote relay"),
   * with the response paused while {@link BODY_READ_AHEAD_BYTES} wait unread,
   * so a slow consumer slows the socket. Errors with the first failure: our
   * own (timeout, abort), `too_large` past `maxBodyBytes` (nothing past it is
   * delivered), `truncated` when the connection ends before the body does.
   */
  #pushBody(res: http.IncomingMessage, contentLength: number | null): ReadableStream<Uint8Array> {
    const s = this.#s;
    let received = 0;
    let settled = false;
    let detach = (): void => {};
    let attach: (() => void) | null = null;
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          const fail = (error: unknown): void => {
            if (settled) return;
            settled = true;
            detach();
            const reason = this.#bodyError(error, res);
            this.#fail(reason);
            this.#finish();
            controller.error(reason);
          };
          const onData = (chunk: Buffer): void => {
            if (settled) return;
            if (this.#failure !== undefined) return fail(this.#failure);
            received += chunk.byteLength;
            if (received > s.maxBodyBytes) {
              return fail(new GuardedRequestError('too_large', `${s.what}: body exceeds ${s.maxBodyBytes} bytes`));
            }
            controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
            if ((controller.desiredSize ?? 0) <= 0) res.pause();
          };
          const onEnd = (): void => {
            if (settled) return;
            if (this.#failure !== undefined) return fail(this.#failure);
            if (contentLength !== null ? received !== contentLength : !res.complete) {
              return fail(
                new GuardedRequestError(
                  'truncated',
                  `${s.what}: body ended after ${received}${contentLength === null ? '' : ` of ${contentLength}`} bytes`,
                ),
              );
            }
            settled = true;
            detach();
            this.#finish();
            controller.close();
          };
          const onError = (error: unknown): void => fail(error);
          // Closed before 'end': destroyed by us (timeout, abort) or the connection was lost mid-body.
          const onClose = (): void => fail(Object.assign(new Error(`${s.what}: response closed early`), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
          detach = (): void => {
            res.off('data', onData);
            res.off('end', onEnd);
            res.off('error', onError);
            res.off('close', onClose);
          };
          // Nothing is read before the first read of the body (a caller may still cancel it unread).
          attach = (): void => {
            res.on('data', onData);
            res.on('end', onEnd);
            res.on('error', onError);
            res.on('close', onClose);
            if (res.destroyed) onClose();
          };
        },
        pull: () => {
          if (attach !== null) {
            const start = attach;
            attach = null;
            start();
          } else if (!settled) res.resume();
        },
        cancel: (reason) => {
          if (!settled) {
            settled = true;
            detach();
          }
          if (!this.#finished) this.#fail(reason ?? new Error('body cancelled'));
          this.#finish();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: BODY_READ_AHEAD_BYTES }),
    );
  }

  /** What a failed body read means: the abort reason, our own failure, or a connection lost mid-body. */
  #bodyError(error: unknown, res: http.IncomingMessage): unknown {
    if (this.#s.signal?.aborted === true) return this.#s.signal.reason;
    if (this.#failure !== undefined) return this.#failure;
    if (error instanceof GuardedRequestError) return error;
    const code = (error as { code?: unknown } | null)?.code;
    if (!res.complete && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE')) {
      return new GuardedRequestError('truncated', `${this.#s.what}: connection closed before the body ended`, { cause: error });
    }
    return error;
  }
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
