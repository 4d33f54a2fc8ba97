import { isCanonicalJsonError, SignatureError } from './errors.js';
import type { KeyResolver } from './key-ring.js';
import { verifyJsonSignatures } from './sign-json.js';
import { isXMatrixAuthorization, parseXMatrixHeader, requestSigningObject, type XMatrixAuth } from './x-matrix.js';

/** The parsed, destination-checked X-Matrix credentials of one request. */
export interface XMatrixCredentials {
  /** The claimed (not yet verified) origin server name. */
  readonly origin: string;
  /** Every X-Matrix header, parsed. All name the same origin. */
  readonly headers: readonly XMatrixAuth[];
}

/**
 * Parses every `Authorization: X-Matrix` value of a request (the spec allows
 * one per signing key) and checks the `destination` of each against our own
 * server name. Values with other schemes are ignored.
 *
 * @param authorization every `Authorization` header value (e.g. Node's `req.headersDistinct.authorization`).
 * @throws {SignatureError} `MISSING_AUTH` (no X-Matrix header), `MALFORMED_HEADER`,
 *   `INVALID_SERVER_NAME`, or `DESTINATION_MISMATCH` (spec: MUST answer 401).
 */
export function parseXMatrixCredentials(
  authorization: string | readonly string[] | undefined,
  serverName: string,
): XMatrixCredentials {
  const values: readonly string[] =
    authorization === undefined ? [] : typeof authorization === 'string' ? [authorization] : authorization;
  const headers = values.filter(isXMatrixAuthorization).map(parseXMatrixHeader);
  const first = headers[0];
  if (first === undefined) throw new SignatureError('MISSING_AUTH', 'Missing X-Matrix Authorization header');
  for (const header of headers) {
    if (header.origin !== first.origin) throw new SignatureError('MALFORMED_HEADER', 'X-Matrix headers name different origins');
    if (header.destination !== undefined && header.destination !== serverName) {
      throw new SignatureError('DESTINATION_MISMATCH', `Request is addressed to ${header.destination}, not ${serverName}`);
    }
  }
  return { origin: first.origin, headers };
}

/** A request as received, for {@link verifyXMatrixRequest}. */
export interface ReceivedRequest {
  /** HTTP method as received. */
  readonly method: string;
  /** The raw request target as received on the wire (Node `req.url`), never a re-serialised URL. */
  readonly uri: string;
  /** Parsed JSON body, for requests that carry one (`PUT`/`POST`); omit otherwise. */
  readonly content?: unknown;
}

/**
 * Verifies the signatures of already parsed credentials. The signed object
 * is rebuilt with *our* server name as `destination` (as Synapse does), the
 * raw request target, and `content` when given. At least one signature must
 * verify with a currently valid key of the origin; any signature whose key
 * is known but does not verify fails the request.
 *
 * @throws {SignatureError} `UNKNOWN_KEY`, `BAD_SIGNATURE` or `MISSING_SIGNATURE`.
 */
export async function verifyXMatrixCredentials(
  request: ReceivedRequest,
  credentials: XMatrixCredentials,
  options: { readonly serverName: string; readonly keyResolver: KeyResolver; readonly signal?: AbortSignal },
): Promise<string[]> {
  const sigs: Record<string, string> = {};
  for (const header of credentials.headers) {
    if (Object.hasOwn(sigs, header.key) && sigs[header.key] !== header.sig) {
      throw new SignatureError('MALFORMED_HEADER', `Two different signatures for key ${header.key}`);
    }
    sigs[header.key] = header.sig;
  }
  const object = {
    ...requestSigningObject({ ...request, origin: credentials.origin, destination: options.serverName }),
    signatures: { [credentials.origin]: sigs },
  };
  const lookupOptions = options.signal === undefined ? {} : { signal: options.signal };
  try {
    return await verifyJsonSignatures(object, credentials.origin, (keyId) =>
      options.keyResolver.getVerifyKey(credentials.origin, keyId, lookupOptions),
    );
  } catch (error) {
    // A body with no canonical form (floats, huge integers) cannot carry a valid signature.
    if (isCanonicalJsonError(error)) {
      throw new SignatureError('BAD_SIGNATURE', 'Request content has no canonical JSON form', { cause: error });
    }
    throw error;
  }
}

/** Result of a successful {@link verifyXMatrixRequest}. */
export interface VerifiedXMatrixRequest {
  /** The authenticated origin server name. */
  readonly origin: string;
  /** The key IDs whose signatures verified. */
  readonly keyIds: readonly string[];
}

/**
 * Authenticates a received federation request (spec S2S "Request
 * Authentication"): {@link parseXMatrixCredentials} then
 * {@link verifyXMatrixCredentials}.
 *
 * @throws {SignatureError} any code of the two steps.
 * @example
 * const { origin } = await verifyXMatrixRequest(
 *   { method: req.method, uri: req.url, authorization: req.headersDistinct.authorization },
 *   { serverName: 'media.example', keyResolver: keyRing },
 * );
 */
export async function verifyXMatrixRequest(
  request: ReceivedRequest & { readonly authorization: string | readonly string[] | undefined },
  options: { readonly serverName: string; readonly keyResolver: KeyResolver; readonly signal?: AbortSignal },
): Promise<VerifiedXMatrixRequest> {
  const credentials = parseXMatrixCredentials(request.authorization, options.serverName);
  const keyIds = await verifyXMatrixCredentials(request, credentials, options);
  return { origin: credentials.origin, keyIds };
}
