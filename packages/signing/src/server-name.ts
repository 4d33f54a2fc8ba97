const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;
const DNS_NAME = /^[0-9A-Za-z.-]{1,255}$/;
const PORT = /^\d{1,5}$/;

/** A server name split into its parts (spec appendix "Server Name"). */
export interface ServerNameParts {
  /** The hostname as written: a DNS name, an IPv4 literal, or `[IPv6]` with brackets. */
  readonly host: string;
  /** The explicit port, if any. */
  readonly port?: number;
  /** Which form of hostname it is. */
  readonly kind: 'dns' | 'ipv4' | 'ipv6';
}

/**
 * Parses a server name by the spec grammar (appendix "Server Name"):
 * `hostname [":" port]`, where the hostname is an IPv4 literal, a bracketed
 * IPv6 literal or a DNS name of `[0-9A-Za-z.-]`. IPv4 octets must be 0–255
 * and ports 1–65535. Returns `undefined` when the name is invalid.
 * Comparison stays case-sensitive, as the spec requires.
 */
export function parseServerName(name: string): ServerNameParts | undefined {
  let host = name;
  let portText: string | undefined;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close < 0) return undefined;
    host = name.slice(0, close + 1);
    const rest = name.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = name.lastIndexOf(':');
    if (colon >= 0) {
      host = name.slice(0, colon);
      portText = name.slice(colon + 1);
    }
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!PORT.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  let kind: ServerNameParts['kind'];
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1);
    if (!IPV6_CHARS.test(inner) || !inner.includes(':')) return undefined;
    kind = 'ipv6';
  } else {
    const v4 = IPV4.exec(host);
    if (v4 !== null) {
      if (v4.slice(1).some((octet) => Number(octet) > 255)) return undefined;
      kind = 'ipv4';
    } else {
      if (!DNS_NAME.test(host)) return undefined;
      // Labels must be non-empty: `a..b`, `.a` and `a.` are not names.
      if (host.split('.').some((label) => label === '')) return undefined;
      // An all-digit dotted name that failed the IPv4 rule is a bad IP, not a DNS name.
      if (/^[\d.]+$/.test(host)) return undefined;
      kind = 'dns';
    }
  }
  return port === undefined ? { host, kind } : { host, port, kind };
}

/** True when `name` matches the spec's server name grammar (see {@link parseServerName}). */
export function isValidServerName(name: string): boolean {
  return parseServerName(name) !== undefined;
}
