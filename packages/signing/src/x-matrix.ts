import { canonicalJsonBytes } from './canonical-json.js';
import { SignatureError } from './errors.js';
import { isValidServerName } from './server-name.js';
import { parseKeyId, signBytes, type SigningKey } from './signing-key.js';

/** The parameters of one `Authorization: X-Matrix` header (spec S2S "Request Authentication"). */
export interface XMatrixAuth {
  /** Sending server name. */
  readonly origin: string;
  /** Receiving server name; optional on receipt (pre-v1.3 senders omit it). */
  readonly destination?: string;
  /** Key ID, e.g. `ed25519:abc123`. */
  readonly key: string;
  /** Unpadded base64 signature. */
  readonly sig: string;
}

/** What an X-Matrix signature covers (spec S2S "Request Authentication"). */
export interface XMatrixRequest {
  /** HTTP method; upper-cased before signing. */
  readonly method: string;
  /** Request target exactly as sent on the wire: path plus `?query`, no scheme or host. */
  readonly uri: string;
  /** Sending server name. */
  readonly origin: string;
  /** Receiving server name (before delegation). */
  readonly destination: string;
  /** Parsed JSON body; omit for bodiless requests such as media GETs. */
  readonly content?: unknown;
}

/**
 * The JSON object a request signature covers:
 * `{method, uri, origin, destination[, content]}`.
 */
export function requestSigningObject(request: XMatrixRequest): Record<string, unknown> {
  const object: Record<string, unknown> = {
    method: request.method.toUpperCase(),
    uri: request.uri,
    origin: request.origin,
    destination: request.destination,
  };
  if (request.content !== undefined) object['content'] = request.content;
  return object;
}

/**
 * Signs an outgoing federation request and returns its `Authorization`
 * header value, in the form the spec asks senders to use (one space after
 * the scheme, lower-case names, no whitespace around commas, quoted values).
 *
 * @throws {CanonicalJsonError} when `content` has no canonical form.
 * @example
 * const authorization = signXMatrixRequest(
 *   { method: 'GET', uri: '/_matrix/federation/v1/media/download/abc', origin: 'a.example', destination: 'b.example' },
 *   key,
 * );
 */
export function signXMatrixRequest(request: XMatrixRequest, key: SigningKey): string {
  if (!request.uri.startsWith('/')) throw new TypeError('uri must be the request target, starting with "/"');
  const sig = signBytes(key, canonicalJsonBytes(requestSigningObject(request)));
  return formatXMatrixHeader({ origin: request.origin, destination: request.destination, key: key.keyId, sig });
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** Formats an X-Matrix header value: `X-Matrix origin="…",destination="…",key="…",sig="…"`. */
export function formatXMatrixHeader(auth: XMatrixAuth): string {
  const params = [`origin=${quote(auth.origin)}`];
  if (auth.destination !== undefined) params.push(`destination=${quote(auth.destination)}`);
  params.push(`key=${quote(auth.key)}`, `sig=${quote(auth.sig)}`);
  return `X-Matrix ${params.join(',')}`;
}

const SCHEME = /^X-Matrix[ \t]+/i;
const TOKEN_CHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/;
const WS = /[ \t]/;

function malformed(message: string): SignatureError {
  return new SignatureError('MALFORMED_HEADER', `Malformed X-Matrix header: ${message}`);
}

/** True when an `Authorization` value uses the `X-Matrix` scheme (case-insensitive, RFC 9110 §11.1). */
export function isXMatrixAuthorization(value: string): boolean {
  return SCHEME.test(value) || /^X-Matrix$/i.test(value);
}

/**
 * Parses an `Authorization: X-Matrix` value the way the spec allows: names
 * are case-insensitive and in any order; values are tokens or quoted strings
 * with backslash escapes; spaces and tabs may surround commas and `=`;
 * unknown parameters are ignored; `destination` is optional; unquoted values
 * may contain `:` and other non-token characters (spec's recipient
 * compatibility rule). `signature` is accepted as an alias of `sig`.
 * `origin` must be a valid server name and `key` must be `<algorithm>:<version>`.
 *
 * @throws {SignatureError} `MALFORMED_HEADER` (including a non-X-Matrix scheme)
 *   or `INVALID_SERVER_NAME`.
 */
export function parseXMatrixHeader(value: string): XMatrixAuth {
  const scheme = SCHEME.exec(value);
  if (scheme === null) throw malformed('not the X-Matrix scheme');
  const params = new Map<string, string>();
  let i = scheme[0].length;
  const n = value.length;
  const skipWs = (): void => {
    while (i < n && WS.test(value[i] as string)) i++;
  };
  while (i < n) {
    skipWs();
    // RFC 9110 §5.6.1: recipients accept empty list elements.
    if (value[i] === ',') {
      i++;
      continue;
    }
    if (i >= n) break;
    const nameStart = i;
    while (i < n && TOKEN_CHAR.test(value[i] as string)) i++;
    if (i === nameStart) throw malformed(`unexpected character at offset ${i}`);
    const name = value.slice(nameStart, i).toLowerCase();
    skipWs();
    if (value[i] !== '=') throw malformed(`parameter ${name} has no value`);
    i++;
    skipWs();
    let param = '';
    if (value[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = value[i] as string;
        if (c === '\\') {
          if (i + 1 >= n) break;
          param += value[i + 1];
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          param += c;
          i++;
        }
      }
      if (!closed) throw malformed(`unterminated quoted value for ${name}`);
    } else {
      const start = i;
      while (i < n && value[i] !== ',' && value[i] !== '"' && !WS.test(value[i] as string)) i++;
      param = value.slice(start, i);
      if (param === '') throw malformed(`parameter ${name} has an empty value`);
    }
    if (params.has(name)) throw malformed(`duplicate parameter ${name}`);
    params.set(name, param);
    skipWs();
    if (i < n && value[i] !== ',') throw malformed(`expected "," at offset ${i}`);
  }
  const origin = params.get('origin');
  const key = params.get('key');
  const sig = params.get('sig') ?? params.get('signature');
  if (origin === undefined) throw malformed('missing origin');
  if (key === undefined) throw malformed('missing key');
  if (sig === undefined) throw malformed('missing sig');
  if (params.has('sig') && params.has('signature') && params.get('signature') !== sig) {
    throw malformed('sig and signature differ');
  }
  if (!isValidServerName(origin)) {
    throw new SignatureError('INVALID_SERVER_NAME', `X-Matrix origin ${JSON.stringify(origin)} is not a valid server name`);
  }
  if (parseKeyId(key) === undefined) throw malformed('key must be <algorithm>:<version>');
  const destination = params.get('destination');
  return destination === undefined ? { origin, key, sig } : { origin, destination, key, sig };
}
