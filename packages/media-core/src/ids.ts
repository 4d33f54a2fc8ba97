import { randomBytes } from 'node:crypto';

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

// Server name grammar (appendices, "Server name"):
//   server_name = hostname [ ":" port ]; hostname = IPv4address / "[" IPv6address "]" / dns-name
//   dns-name = 1*255dns-char; dns-char = DIGIT / ALPHA / "-" / "."; port = 1*5DIGIT
const IPV4_RE = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const DNS_NAME_RE = /^[A-Za-z0-9.-]{1,255}$/;
const IPV6_BODY_RE = /^[0-9A-Fa-f:.]{2,45}$/;

/** Splits `host[:port]`; returns null when the shape is wrong. */
export function splitServerName(serverName: string): { host: string; port: number | undefined } | null {
  if (serverName.length === 0 || serverName.length > 255 + 6) return null;
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
    if (!IPV6_BODY_RE.test(host.slice(1, -1)) || !host.includes(':')) return null;
  } else {
    const colon = serverName.lastIndexOf(':');
    host = colon >= 0 ? serverName.slice(0, colon) : serverName;
    portText = colon >= 0 ? serverName.slice(colon + 1) : undefined;
    if (!IPV4_RE.test(host) && !DNS_NAME_RE.test(host)) return null;
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
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! & 63];
  return out;
}
