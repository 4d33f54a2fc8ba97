import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** What {@link classifyAddress} says about one IP address. */
export interface AddressClass {
  /** True only for globally routable unicast addresses. */
  readonly public: boolean;
  /**
   * The special-purpose range the address is in (`'loopback'`, `'private'`,
   * `'ipv4-mapped:loopback'`, ...), `'public'` for ordinary unicast, or
   * `'invalid'` when the text is not an IP address.
   */
  readonly range: string;
}

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;
type Embedded = 'ipv4-mapped' | 'nat64' | '6to4';

interface RangeRule {
  readonly cidr: [Parsed, number];
  readonly name: string;
  /** Classify the IPv4 address carried inside instead of refusing outright. */
  readonly embedded?: Embedded;
}

function rule(cidr: string, name: string, embedded?: Embedded): RangeRule {
  const parsed = ipaddr.parseCIDR(cidr);
  return embedded === undefined ? { cidr: parsed, name } : { cidr: parsed, name, embedded };
}

/**
 * Non-public IPv4 ranges (IANA special-purpose registry, RFC 6890 and
 * successors). Sorted most specific first so the narrowest name wins.
 */
const IPV4_RULES: readonly RangeRule[] = sortBySpecificity([
  rule('0.0.0.0/8', 'unspecified'), // "this network"; 0.0.0.0 reaches the local host on Linux
  rule('10.0.0.0/8', 'private'),
  rule('100.64.0.0/10', 'carrier-grade-nat'),
  rule('127.0.0.0/8', 'loopback'),
  rule('169.254.0.0/16', 'link-local'), // includes cloud metadata 169.254.169.254
  rule('172.16.0.0/12', 'private'),
  rule('192.0.0.0/24', 'ietf-protocol-assignments'),
  rule('192.0.2.0/24', 'documentation'),
  rule('192.88.99.0/24', '6to4-relay-anycast'),
  rule('192.168.0.0/16', 'private'),
  rule('198.18.0.0/15', 'benchmarking'),
  rule('198.51.100.0/24', 'documentation'),
  rule('203.0.113.0/24', 'documentation'),
  rule('224.0.0.0/4', 'multicast'),
  rule('240.0.0.0/4', 'reserved'),
  rule('255.255.255.255/32', 'broadcast'),
]);

/** Non-public IPv6 ranges; the `embedded` ones are judged by the IPv4 address they carry. */
const IPV6_RULES: readonly RangeRule[] = sortBySpecificity([
  rule('::/128', 'unspecified'),
  rule('::1/128', 'loopback'),
  // Deprecated IPv4-compatible addresses (RFC 4291 §2.5.5.1): never legitimate targets.
  rule('::/96', 'ipv4-compatible'),
  rule('::ffff:0:0/96', 'ipv4-mapped', 'ipv4-mapped'),
  rule('64:ff9b::/96', 'nat64', 'nat64'),
  rule('64:ff9b:1::/48', 'nat64-local'),
  rule('100::/64', 'discard-only'),
  rule('2001::/23', 'ietf-protocol-assignments'),
  rule('2001::/32', 'teredo'),
  rule('2001:db8::/32', 'documentation'),
  rule('2002::/16', '6to4', '6to4'),
  rule('fc00::/7', 'unique-local'),
  rule('fe80::/10', 'link-local'),
  rule('fec0::/10', 'site-local'),
  rule('ff00::/8', 'multicast'),
]);

/** IANA allocates global unicast only from 2000::/3; anything else not listed above is reserved. */
const IPV6_GLOBAL_UNICAST: [Parsed, number] = ipaddr.parseCIDR('2000::/3');

function sortBySpecificity(rules: RangeRule[]): RangeRule[] {
  return [...rules].sort((a, b) => b.cidr[1] - a.cidr[1]);
}

const PUBLIC: AddressClass = Object.freeze({ public: true, range: 'public' });
const INVALID: AddressClass = Object.freeze({ public: false, range: 'invalid' });

/**
 * Parses an IP address strictly: dotted-quad IPv4 or RFC 4291 IPv6 (a zone
 * suffix `%eth0` is allowed). Shorthands such as `127.1` or `0x7f000001`,
 * which `ipaddr.js` and `inet_aton` accept, are refused: they are how SSRF
 * filters get bypassed.
 */
export function parseIp(ip: string): Parsed | undefined {
  if (isIP(ip) === 0) return undefined;
  try {
    return ipaddr.parse(ip);
  } catch {
    return undefined;
  }
}

/** The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 IPv6 address. */
function embeddedIpv4(address: ipaddr.IPv6, kind: Embedded): ipaddr.IPv4 {
  const p = address.parts;
  // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 carries AA.BB.CC.DD in bits 16..47.
  const [hi, lo] = kind === '6to4' ? [p[1]!, p[2]!] : [p[6]!, p[7]!];
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

function classifyParsed(address: Parsed): AddressClass {
  if (address.kind() === 'ipv4') {
    for (const r of IPV4_RULES) {
      if (address.match(r.cidr)) return { public: false, range: r.name };
    }
    return PUBLIC;
  }
  const v6 = address as ipaddr.IPv6;
  for (const r of IPV6_RULES) {
    if (!v6.match(r.cidr)) continue;
    if (r.embedded === undefined) return { public: false, range: r.name };
    const inner = classifyParsed(embeddedIpv4(v6, r.embedded));
    return { public: inner.public, range: `${r.name}:${inner.range}` };
  }
  if (!v6.match(IPV6_GLOBAL_UNICAST)) return { public: false, range: 'reserved' };
  return PUBLIC;
}

/**
 * Says whether an IP address is public (globally routable unicast) and, if
 * not, which special-purpose range it is in. Pure: no DNS, no sockets.
 *
 * IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
 * (`2002::/16`) addresses are judged by the IPv4 address they carry, so
 * `::ffff:127.0.0.1` is loopback. Anything that is not a strictly formed IP
 * address is `{ public: false, range: 'invalid' }`.
 *
 * @example
 * classifyAddress('10.1.2.3');          // { public: false, range: 'private' }
 * classifyAddress('::ffff:169.254.1.1'); // { public: false, range: 'ipv4-mapped:link-local' }
 */
export function classifyAddress(ip: string): AddressClass {
  const parsed = parseIp(ip);
  return parsed === undefined ? INVALID : classifyParsed(parsed);
}
