import ipaddr from 'ipaddr.js';
import { classifyAddress, parseIp } from './classify.js';

/** Decides whether an outbound connection may go to an IP address. */
export type AddressPolicy = (ip: string) => boolean;

/** Options of {@link createAddressPolicy}. */
export interface AddressPolicyOptions {
  /**
   * CIDRs (or single addresses) to allow although they are not public,
   * e.g. `['127.0.0.1/32']` for tests or `['10.20.0.0/16']` for a private
   * federation.
   */
  readonly allow?: readonly string[];
  /** Extra CIDRs to refuse although they are public (e.g. your own cloud's ranges). */
  readonly deny?: readonly string[];
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseCidrList(list: readonly string[] | undefined, what: string): Cidr[] {
  return (list ?? []).map((text) => {
    const value = text.trim();
    try {
      if (value.includes('/')) return ipaddr.parseCIDR(value);
      const address = parseIp(value);
      if (address !== undefined) return [address, address.kind() === 'ipv4' ? 32 : 128];
    } catch {
      // fall through to the error below
    }
    throw new TypeError(`createAddressPolicy: ${what} entry ${JSON.stringify(text)} is not an IP address or CIDR`);
  });
}

/** The most specific matching CIDR's prefix length, or -1. */
function bestMatch(address: ipaddr.IPv4 | ipaddr.IPv6, cidrs: readonly Cidr[]): number {
  let best = -1;
  for (const cidr of cidrs) {
    if (cidr[0].kind() === address.kind() && cidr[1] > best && address.match(cidr)) best = cidr[1];
  }
  return best;
}

/**
 * Builds the address policy every outbound connection is checked against.
 *
 * - Unspecified addresses (`0.0.0.0/8`, `::`) are always refused: on Linux
 *   they reach the local host, and no allow list makes them meaningful.
 * - Otherwise the most specific matching `allow`/`deny` entry decides (a tie
 *   refuses), so `allow: ['10.0.0.0/8'], deny: ['10.0.0.1']` refuses 10.0.0.1.
 * - With no matching entry, only public addresses (see `classifyAddress`) pass.
 *
 * IPv4-mapped IPv6 addresses are matched as the IPv4 address they carry, so
 * allowing `127.0.0.1/32` also allows `::ffff:127.0.0.1`.
 *
 * @throws {TypeError} when an entry is not an IP address or CIDR.
 * @example
 * const policy = createAddressPolicy({ allow: ['127.0.0.1/32'] });
 * policy('127.0.0.1'); // true
 * policy('127.0.0.2'); // false
 */
export function createAddressPolicy(options: AddressPolicyOptions = {}): AddressPolicy {
  const allow = parseCidrList(options.allow, 'allow');
  const deny = parseCidrList(options.deny, 'deny');
  return (ip: string): boolean => {
    let address = parseIp(ip);
    if (address === undefined) return false;
    if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
      address = (address as ipaddr.IPv6).toIPv4Address();
    }
    const range = classifyAddress(address.toString()).range;
    if (range === 'unspecified') return false;
    const allowed = bestMatch(address, allow);
    const denied = bestMatch(address, deny);
    if (allowed >= 0 || denied >= 0) return allowed > denied;
    return classifyAddress(ip).public;
  };
}
