/**
 * The `fetch` that `@hsmedia/signing`'s `KeyRing` gets from
 * `FederationClient.keyRingOptions()`: `matrix-federation://<server name>/<path>`
 * URLs, sent through the client's server discovery and guarded transport.
 */
import type { TransportRequest, TransportResponse } from '../transport.js';

/** Internal scheme of `keyRingOptions()` URLs (Synapse uses the same for its federation agent). */
export const FEDERATION_SCHEME = 'matrix-federation://';
/** Key responses are small; the key ring enforces its own, lower, limit while reading. */
const KEY_RESPONSE_MAX = 4 * 1024 * 1024;

/** A request to a discovered server (`FederationClient`'s own). */
export type FederationRequest = (
  destination: string,
  path: string,
  options: Omit<TransportRequest, 'url' | 'connectTo' | 'hostHeader' | 'tlsServerName'>,
) => Promise<TransportResponse>;

/** Answers one key ring fetch of a `matrix-federation://` URL as a Fetch API `Response`. */
export async function fetchForKeyRing(url: string, init: RequestInit, request: FederationRequest): Promise<Response> {
  if (!url.startsWith(FEDERATION_SCHEME)) throw new TypeError(`Not a ${FEDERATION_SCHEME} URL: ${url}`);
  const rest = url.slice(FEDERATION_SCHEME.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new TypeError(`No path in ${url}`);
  const method = (init.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'POST') throw new TypeError(`Unsupported method ${method}`);
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((value, name) => {
    headers[name] = value;
  });
  const body = typeof init.body === 'string' ? Buffer.from(init.body, 'utf8') : undefined;
  const res = await request(rest.slice(0, slash), rest.slice(slash), {
    method,
    headers,
    maxBodyBytes: KEY_RESPONSE_MAX,
    ...(body === undefined ? {} : { body }),
    ...(init.signal == null ? {} : { signal: init.signal }),
  });
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
  }
  const nullBody = res.status === 204 || res.status === 304 || (res.status >= 100 && res.status < 200);
  if (nullBody) await res.body.cancel();
  return new Response(nullBody ? null : res.body, { status: res.status, headers: responseHeaders });
}
