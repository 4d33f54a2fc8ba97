/**
 * What the server does at the HTTP edge, before Koa: which client address a
 * request has behind reverse proxies (`listen.trusted_proxies`), how long a
 * request body may stall (`limits.upload_idle_timeout`), and the answer to
 * `Expect: 100-continue` with a body over `max_upload_size`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Middleware } from 'koa';
import type { Logger as PinoLogger } from 'pino';

/** An address or CIDR of `listen.trusted_proxies`, parsed; undefined when it is neither. */
export function parseAddressRange(text: string): { readonly address: string; readonly family: 'ipv4' | 'ipv6'; readonly prefix: number } | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  if (slash < 0) return { address, family, prefix: max };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return undefined;
  return { address, family, prefix: Number(prefixText) };
}

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) is `1.2.3.4`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** One `X-Forwarded-For` element as an address: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`; undefined otherwise. */
function hopAddress(element: string): string | undefined {
  let text = element.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(text);
  if (bracketed !== null) text = bracketed[1]!;
  else if (/^[\d.]+:\d{1,5}$/.test(text)) text = text.slice(0, text.indexOf(':'));
  if (isIPv4(text) || isIPv6(text)) return unmapped(text);
  return undefined;
}

/**
 * The proxies whose `X-Forwarded-For` is believed. The client address is
 * found the way nginx's `real_ip_recursive on` finds it: start from the
 * socket's peer and, while that hop is a trusted proxy, step to the element
 * it appended (the rightmost one not yet used). The first hop that is not a
 * trusted proxy is the client; anything left of it was written by that
 * client and is never believed. A malformed element stops the walk at the
 * last trusted hop. See RFC 7239 section 5.2 and its security
 * considerations (section 8.1) for why only hops added by trusted proxies
 * count.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  /** `ranges`: addresses or CIDRs (`127.0.0.1`, `10.0.0.0/8`, `::1/128`); throws a TypeError on anything else. */
  constructor(ranges: readonly string[]) {
    for (const range of ranges) {
      const parsed = parseAddressRange(range);
      if (parsed === undefined) throw new TypeError(`trusted_proxies: ${JSON.stringify(range)} is not an IP address or CIDR`);
      this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
    this.#empty = ranges.length === 0;
  }

  /** False when no proxy is trusted: the socket's peer is the client, `X-Forwarded-For` is ignored. */
  get enabled(): boolean {
    return !this.#empty;
  }

  /** True when `address` is one of the trusted proxies. */
  trusts(address: string): boolean {
    const plain = unmapped(address);
    if (isIPv4(plain)) return this.#list.check(plain, 'ipv4');
    if (isIPv6(plain)) return this.#list.check(plain, 'ipv6');
    return false;
  }

  /** The client address of a request that came from `peer` carrying `forwardedFor` (the joined header, or undefined). */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    let client = unmapped(peer);
    if (this.#empty || forwardedFor === undefined || forwardedFor === '') return client;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0 && this.trusts(client); i--) {
      const hop = hopAddress(hops[i]!);
      if (hop === undefined) break;
      client = hop;
    }
    return client;
  }
}

/**
 * Koa middleware setting `ctx.ip` (what the per-IP rate limit of legacy
 * downloads keys on) from the trusted proxies; without any it does nothing
 * and `ctx.ip` stays the socket's peer.
 */
export function trustedProxyAddress(proxies: TrustedProxies): Middleware {
  return async (ctx, next) => {
    ctx.request.ip = proxies.clientAddress(ctx.req.socket.remoteAddress ?? '', ctx.get('X-Forwarded-For'));
    await next();
  };
}

/** The request announces a body (RFC 9112 section 6.3: a Content-Length above 0 or a Transfer-Encoding). */
function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Cuts a request whose body stops arriving for `idleMs`: the socket is
 * destroyed, so the handler's abort signal fires and an upload removes its
 * staging file and stores nothing. Without this a stalled client holds a
 * socket and a staging file until the 30-minute request timeout. Once the
 * body has arrived, the timer is lifted (Node sets the keep-alive timeout
 * itself when the response is done).
 */
export function applyBodyIdleTimeout(req: IncomingMessage, res: ServerResponse, idleMs: number, logger: PinoLogger): void {
  if (!declaresBody(req)) return;
  const socket = req.socket;
  const onTimeout = (): void => {
    logger.warn({ method: req.method, path: req.url?.split('?')[0], idle_ms: idleMs }, 'request body stalled; connection closed');
    socket.destroy();
  };
  // Node emits 'timeout' on the request only while its body is incomplete; a listener keeps Node from
  // destroying the socket itself, so the listener does it (and logs why).
  req.setTimeout(idleMs, onTimeout);
  req.once('end', () => {
    req.off('timeout', onTimeout);
    if (!socket.destroyed && !res.writableFinished) socket.setTimeout(0);
  });
}

/**
 * Answers `Expect: 100-continue` (RFC 9110 section 10.1.1): a request whose
 * declared Content-Length is over `maxBodyBytes` gets no `100 Continue`, so
 * the client never sends the body; the request still goes to the app, whose
 * upload route answers 413 `M_TOO_LARGE` from the declared length (and Node
 * closes the connection, since the body was never invited). Every other
 * request is invited as Node would do without this listener.
 */
export function handleExpectContinue(server: Server, maxBodyBytes: number): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = req.headers['content-length'];
    const tooLarge = declared !== undefined && /^\d{1,15}$/.test(declared) && Number(declared) > maxBodyBytes;
    if (!tooLarge) res.writeContinue();
    server.emit('request', req, res);
  });
}
