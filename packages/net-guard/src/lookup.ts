import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { classifyAddress } from './classify.js';
import { BlockedAddressError } from './errors.js';
import type { AddressPolicy } from './policy.js';

/** Options of {@link guardedLookup}. */
export interface GuardedLookupOptions {
  /**
   * The resolver to guard; defaults to `dns.lookup`. Inject one in tests to
   * map names to loopback addresses without touching DNS.
   */
  readonly lookup?: LookupFunction;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * Throws {@link BlockedAddressError} unless `policy` allows `ip`.
 * @param hostname the name that resolved to `ip`, for the message.
 */
export function assertAddressAllowed(policy: AddressPolicy, ip: string, hostname?: string): void {
  if (!policy(ip)) throw blockedError(ip, hostname);
}

function blockedError(ip: string, hostname: string | undefined): BlockedAddressError {
  const range = classifyAddress(ip).range;
  const what = hostname === undefined || hostname === ip ? ip : `${hostname} (${ip})`;
  return new BlockedAddressError(ip, `Refusing to connect to ${what}: ${range} address not allowed`, {
    ...(hostname === undefined ? {} : { hostname }),
    range,
  });
}

/**
 * The IP address a URL host or `host` option names literally, without
 * brackets, or `undefined` for a DNS name. `net.connect` does not call
 * `lookup` for literals, so they must be checked with this before
 * connecting.
 */
export function ipLiteralOf(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) === 0 ? undefined : bare;
}

/**
 * Checks a host before connecting: an IP literal against `policy` right
 * away; a DNS name is left to {@link guardedLookup}, which checks what it
 * resolves to.
 *
 * @throws {BlockedAddressError} for a refused IP literal.
 */
export function assertHostAllowed(policy: AddressPolicy, host: string): void {
  const literal = ipLiteralOf(host);
  if (literal !== undefined) assertAddressAllowed(policy, literal);
}

/**
 * A `dns.lookup`-compatible function for `http.request({ lookup })`,
 * `net.connect({ lookup })` and `tls.connect({ lookup })`. It resolves every
 * address of the name, drops those `policy` refuses, and answers with the
 * allowed ones only; when none is left it fails with
 * {@link BlockedAddressError}. Because the socket connects to exactly the
 * address this function returns, a DNS answer that changes between a check
 * and the connect (DNS rebinding) cannot slip past it.
 *
 * Works with both call shapes Node uses: `{ all: true }` (Happy Eyeballs,
 * the default since Node 20) and single-address.
 *
 * @example
 * http.get({ host: 'example.org', lookup: guardedLookup(createAddressPolicy()) });
 */
export function guardedLookup(policy: AddressPolicy, options: GuardedLookupOptions = {}): LookupFunction {
  const underlying = options.lookup ?? (dnsLookup as unknown as LookupFunction);
  const guarded = (hostname: string, lookupOptions: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    const wantAll = (lookupOptions as { all?: boolean }).all === true;
    underlying(hostname, { ...lookupOptions, all: true }, ((err: NodeJS.ErrnoException | null, addresses: string | LookupAddress[], family?: number) => {
      if (err !== null) {
        callback(err, wantAll ? [] : '');
        return;
      }
      const list: LookupAddress[] =
        typeof addresses === 'string' ? [{ address: addresses, family: family ?? (isIP(addresses) || 4) }] : addresses;
      const allowed = list.filter((entry) => policy(entry.address));
      if (allowed.length === 0) {
        const first = list[0]?.address;
        const error =
          first === undefined
            ? new BlockedAddressError('', `Refusing to connect to ${hostname}: it resolved to no address`, { hostname })
            : blockedError(first, hostname);
        callback(error as unknown as NodeJS.ErrnoException, wantAll ? [] : '');
        return;
      }
      if (wantAll) callback(null, allowed);
      else callback(null, allowed[0]!.address, allowed[0]!.family);
    }) as never);
  };
  return guarded as unknown as LookupFunction;
}
