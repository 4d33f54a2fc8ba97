import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';

/**
 * Identifier rules of the spec's content repository (https://spec.matrix.org/v1.12/client-server-api/#content-repository) and
 * of server names (https://spec.matrix.org/v1.12/appendices/#server-name).
 * Everything here is pure and allocation-light: it runs on every request.
 */

/** `media-id` grammar: `^[A-Za-z0-9_-]+$`. We also cap the length so IDs stay usable as keys. */
const MEDIA_ID_RE = /^[A-Za-z0-9_-]{1,255}$/;

/** True when `mediaId` matches the spec's media-id grammar (and is at most 255 characters). */
export function isValidMediaId(mediaId: string): boolean {
  return MEDIA_ID_RE.test(mediaId);
}

// Server name grammar (https://spec.matrix.org/v1.12/appendices/#server-name):
//   server_name = hostname [ ":" port ]; hostname = IPv4address / "[" IPv6address "]" / dns-name
//   dns-name = 1*255dns-char; dns-char = DIGIT / ALPHA / "-" / "."; port = 1*5DIGIT
// The spec's dns-name admits `..`, `.` and `a..b`, which are no host at all: a path such as
// `/download/../x` would name a "server" called `..`. Like Synapse (`parse_and_validate_server_name`,
// its VALID_HOST_REGEX) a DNS name here is labels of letters, digits and hyphens joined by single dots.
const IPV4_RE = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const DNS_NAME_RE = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$/;
const ALL_DIGITS_RE = /^[\d.]+$/;
const MAX_DNS_NAME = 255;

/** A bracketed IPv6 literal by RFC 4291 section 2.2 (`[::1]`, `[1234:5678::abcd]`, `[::ffff:1.2.3.4]`). */
function isIpv6Literal(host: string): boolean {
  return host.length > 2 && host.startsWith('[') && host.endsWith(']') && isIPv6(host.slice(1, -1));
}

/** An IPv4 literal or a DNS name of single-dot-separated labels (`[A-Za-z0-9-]+`). */
function isHostName(host: string): boolean {
  if (IPV4_RE.test(host)) return true;
  if (host.length > MAX_DNS_NAME || !DNS_NAME_RE.test(host)) return false;
  // `1.2.3.999` or `1.2` is a bad IP literal, not a DNS name.
  return !ALL_DIGITS_RE.test(host);
}

/**
 * Splits `host[:port]`; returns null when `serverName` is not a valid server
 * name: the host is an IPv4 literal, a bracketed IPv6 literal or a DNS name of
 * letters, digits and hyphens in labels separated by single dots; the port is
 * 1 to 65535.
 */
export function splitServerName(serverName: string): { host: string; port: number | undefined } | null {
  if (serverName.length === 0 || serverName.length > MAX_DNS_NAME + 6) return null;
  let host: string;
  let portText: string | undefined;
  if (serverName.startsWith('[')) {
    const end = serverName.indexOf(']');
    if (end < 0) return null;
    host = serverName.slice(0, end + 1);
    const rest = serverName.slice(end + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
    if (!isIpv6Literal(host)) return null;
  } else {
    const colon = serverName.lastIndexOf(':');
    host = colon >= 0 ? serverName.slice(0, colon) : serverName;
    portText = colon >= 0 ? serverName.slice(colon + 1) : undefined;
    if (!isHostName(host)) return null;
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port < 1 || port > 65535) return null;
  }
  return { host, port };
}

/** True when `serverName` matches the spec's server-name grammar. */
export function isValidServerName(serverName: string): boolean {
  return splitServerName(serverName) !== null;
}

/** A parsed `mxc://` URI. */
export interface MxcUri {
  readonly serverName: string;
  readonly mediaId: string;
}

/** Parses `mxc://<server-name>/<media-id>`; returns null for anything not valid by the spec. */
export function parseMxcUri(uri: string): MxcUri | null {
  if (!uri.startsWith('mxc://')) return null;
  const rest = uri.slice(6);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const serverName = rest.slice(0, slash);
  const mediaId = rest.slice(slash + 1);
  if (!isValidServerName(serverName) || !isValidMediaId(mediaId)) return null;
  return { serverName, mediaId };
}

/** Formats an `mxc://` URI. */
export function formatMxcUri(serverName: string, mediaId: string): string {
  return `mxc://${serverName}/${mediaId}`;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

/**
 * A fresh random identifier of `length` characters from `[A-Za-z0-9_-]`
 * (6 bits each: 24 characters carry 144 bits). Used for media IDs and blob IDs.
 */
export function generateId(length = 24): string {
  const bytes = randomPoolBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! & 63];
  return out;
}

/** Random bytes drawn 4 KiB at a time from the CSPRNG (each byte handed out once): a bulk import takes two IDs per file. */
let randomPool = Buffer.alloc(0);
let randomOffset = 0;
function randomPoolBytes(length: number): Buffer {
  if (randomOffset + length > randomPool.length) {
    randomPool = randomBytes(Math.max(4096, length));
    randomOffset = 0;
  }
  const bytes = randomPool.subarray(randomOffset, randomOffset + length);
  randomOffset += length;
  return bytes;
}
