import { Resolver } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { essenceOf, isValidMediaId, REMOTE_THUMBNAIL_CONTENT_TYPES, RemoteMediaError, type RemoteMedia, type RemoteMediaFailure, type RemoteMediaRequest, type RemoteMediaSource, type RemoteThumbnailRequest } from '@hsmedia/media-core';
import { noopLogger, systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import { decodeMultipart, isMultipartError, type MultipartError } from '@hsmedia/multipart';
import type { AddressPolicy } from '@hsmedia/net-guard';
import { signXMatrixRequest, type SigningKey } from '@hsmedia/signing';
import { ServerResolver, type ResolvedServer, type SrvResolver } from './discovery.js';
import { FederationError, isFederationError } from './errors.js';
import { mapStreamErrors } from './internal/map-stream-errors.js';
import { firstHeader, readAll, Transport, type Timeouts, type TransportRequest, type TransportResponse } from './transport.js';

/** Options of {@link FederationClient}. */
export interface FederationClientOptions {
  /** Our server name: the X-Matrix `origin`. */
  readonly serverName: string;
  /** The key requests are signed with. */
  readonly signingKey: SigningKey;
  /** The SSRF policy every outbound connection is checked against (`createAddressPolicy()` from `@hsmedia/net-guard`). */
  readonly addressPolicy: AddressPolicy;
  /** `server name → base URL` overrides of server discovery, for tests and private federations. */
  readonly destinations?: Readonly<Record<string, string>>;
  /** Extra trusted CA certificates (PEM text), added to Node's default roots. Verification stays on. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Connect and idle timeouts. Default 10 s and 30 s. */
  readonly timeouts?: Partial<Timeouts>;
  /** Most redirects followed for a `Location` part or a legacy 307/308. Default 3. */
  readonly maxRedirects?: number;
  /** SRV lookups. Default: a `dns.promises.Resolver`. */
  readonly resolver?: SrvResolver;
  /** The A/AAAA lookup the SSRF guard wraps. Default `dns.lookup`. */
  readonly lookup?: LookupFunction;
  /** The well-known URL of a host. Default `https://<host>/.well-known/matrix/server`. */
  readonly wellKnownUrl?: (hostname: string) => string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** For weighted SRV selection. Default `Math.random`. */
  readonly random?: () => number;
  /** Default `hsmedia-federation-client`. */
  readonly userAgent?: string;
}

/** A {@link RemoteMediaRequest} with the client's extra switches. */
export interface FederationMediaRequest extends RemoteMediaRequest {
  /**
   * Go straight to the legacy `/_matrix/media/v3/download` endpoint. For a
   * request that itself arrived on the legacy unauthenticated endpoint.
   */
  readonly legacyOnly?: boolean;
}

/** A {@link RemoteThumbnailRequest} with the client's extra switches (see {@link FederationMediaRequest}). */
export interface FederationThumbnailRequest extends RemoteThumbnailRequest {
  /** Go straight to the legacy `/_matrix/media/v3/thumbnail` endpoint. */
  readonly legacyOnly?: boolean;
}

/**
 * One fetch of remote bytes (media or a thumbnail): where the v1 federation
 * endpoint and its legacy counterpart are, and the caps. `fetchMedia` and
 * `fetchThumbnail` differ only in these paths.
 */
interface FetchPlan {
  readonly serverName: string;
  readonly mediaId: string;
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  /** Signed request target on the v1 federation endpoint (query in a fixed order: the signature covers it). */
  readonly v1Path: string;
  /** Signed request target on the deprecated `/_matrix/media/v3` endpoint. */
  readonly legacyPath: string;
  /** `mxc://server/id`, with the thumbnail size for thumbnails: names the fetch in errors and logs. */
  readonly what: string;
}

/** Options of {@link FederationClient.getJson}. */
export interface GetJsonOptions {
  /** Largest response accepted. Default 1 MiB. */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal;
}

const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, idleMs: 30_000 };
/** Room for multipart framing, the JSON part and headers on top of the media bytes. */
const MULTIPART_OVERHEAD = 256 * 1024;
/** Internal scheme of `keyRingOptions()` URLs (Synapse uses the same for its federation agent). */
const FEDERATION_SCHEME = 'matrix-federation://';
/** Key responses are small; the key ring enforces its own, lower, limit while reading. */
const KEY_RESPONSE_MAX = 4 * 1024 * 1024;
/** Error bodies are read for their errcode only. */
const ERROR_BODY_MAX = 64 * 1024;

/** What `KeyRing` from `@hsmedia/signing` needs to fetch keys through this client. */
export interface KeyRingTransport {
  readonly resolveServer: (serverName: string) => Promise<string>;
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
}

interface RemoteErrorInfo {
  readonly status: number;
  readonly errcode: string | undefined;
  /** The body parsed as a JSON object. */
  readonly isJson: boolean;
  readonly isEmpty: boolean;
}

/** Reads a (small) error body and pulls out the Matrix errcode. */
async function readRemoteError(res: TransportResponse): Promise<RemoteErrorInfo> {
  let text = '';
  try {
    text = (await readAll(res.body, ERROR_BODY_MAX)).toString('utf8');
  } catch {
    // An oversized or broken error body is just "not JSON".
    text = '\u0000';
  }
  let errcode: string | undefined;
  let isJson = false;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      isJson = true;
      const code = (value as Record<string, unknown>)['errcode'];
      if (typeof code === 'string') errcode = code;
    }
  } catch {
    // not JSON
  }
  return { status: res.status, errcode, isJson, isEmpty: text.trim() === '' };
}

/**
 * Whether a failed v1 request means "the remote does not know this
 * endpoint", so the legacy endpoint should be tried (https://spec.matrix.org/v1.12/server-server-api/#content-repository).
 * The spec names 404/405 `M_UNRECOGNIZED`; like Synapse we also accept
 * 404/405 with an empty or non-JSON body and 400 `M_UNRECOGNIZED`. A
 * `404 M_NOT_FOUND` is a real "not found" and never falls back.
 */
export function isUnknownEndpoint(status: number, errcode: string | undefined, bodyIsJson: boolean): boolean {
  if (status === 404 || status === 405) return !bodyIsJson || errcode === 'M_UNRECOGNIZED';
  return status === 400 && errcode === 'M_UNRECOGNIZED';
}

/** The `RemoteMediaError` for a remote error status. Never passes a remote 5xx through. */
function failureForStatus(status: number, errcode: string | undefined): RemoteMediaFailure {
  if (status === 404) return 'not_found';
  if (status === 401 || status === 403) return 'forbidden';
  if (status === 413 || errcode === 'M_TOO_LARGE') return 'too_large';
  if (status === 504 || errcode === 'M_NOT_YET_UPLOADED') return 'timeout';
  return 'bad_response';
}

function remoteError(info: RemoteErrorInfo, what: string): RemoteMediaError {
  return new RemoteMediaError(
    failureForStatus(info.status, info.errcode),
    `${what}: remote answered ${info.status}${info.errcode === undefined ? '' : ` ${info.errcode}`}`,
    { remoteStatus: info.status, ...(info.errcode === undefined ? {} : { remoteErrcode: info.errcode }) },
  );
}

/** Turns whatever a fetch or a body stream threw into a `RemoteMediaError` (abort reasons pass through). */
function toRemoteMediaError(error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (error instanceof RemoteMediaError) return error;
  if (isFederationError(error)) {
    const failure: RemoteMediaFailure =
      error.code === 'remote_error'
        ? failureForStatus(error.remoteStatus ?? 502, error.remoteErrcode)
        : error.code === 'too_large' || error.code === 'timeout' || error.code === 'unreachable'
          ? error.code
          : 'bad_response';
    return new RemoteMediaError(failure, error.message, {
      cause: error,
      ...(error.remoteStatus === undefined ? {} : { remoteStatus: error.remoteStatus }),
      ...(error.remoteErrcode === undefined ? {} : { remoteErrcode: error.remoteErrcode }),
    });
  }
  if (isMultipartError(error)) {
    const m = error as MultipartError & { limit?: string };
    const failure = m.code === 'TOO_LARGE' && m.limit === 'contentBytes' ? 'too_large' : 'bad_response';
    return new RemoteMediaError(failure, `Remote multipart body: ${m.message}`, { cause: error });
  }
  return new RemoteMediaError('bad_response', `Remote media fetch failed: ${(error as Error | null)?.message ?? String(error)}`, {
    cause: error,
  });
}

function parseLength(text: string | undefined): number | null {
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : null;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * A Matrix federation client for media: discovers servers, signs requests
 * with our key (X-Matrix), and fetches remote media over
 * `/_matrix/federation/v1/media/download/{mediaId}` with the legacy
 * fallback. Implements media-core's `RemoteMediaSource`.
 *
 * Every outbound connection (federation, well-known, `Location` and
 * redirect targets) goes through the SSRF guard of `addressPolicy`.
 *
 * @example
 * const client = new FederationClient({
 *   serverName: 'example.org',
 *   signingKey,
 *   addressPolicy: createAddressPolicy(),
 * });
 * const media = await client.fetchMedia({ serverName: 'matrix.org', mediaId: 'abc', maxBytes: 50e6, timeoutMs: 20_000 });
 */
export class FederationClient implements RemoteMediaSource {
  readonly #serverName: string;
  readonly #key: SigningKey;
  readonly #transport: Transport;
  readonly #discovery: ServerResolver;
  readonly #maxRedirects: number;
  readonly #logger: Logger;
  readonly #idleMs: number;

  constructor(options: FederationClientOptions) {
    const timeouts: Timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    const ca = options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca : [options.ca];
    this.#serverName = options.serverName;
    this.#key = options.signingKey;
    this.#logger = options.logger ?? noopLogger;
    this.#maxRedirects = options.maxRedirects ?? 3;
    this.#idleMs = timeouts.idleMs;
    this.#transport = new Transport({
      addressPolicy: options.addressPolicy,
      timeouts,
      userAgent: options.userAgent ?? 'hsmedia-federation-client',
      ...(ca === undefined ? {} : { ca: ca as readonly (string | Buffer)[] }),
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    });
    this.#discovery = new ServerResolver({
      transport: this.#transport,
      resolver: options.resolver ?? new Resolver(),
      clock: options.clock ?? systemClock,
      logger: this.#logger,
      ...(options.destinations === undefined ? {} : { destinations: options.destinations }),
      ...(options.wellKnownUrl === undefined ? {} : { wellKnownUrl: options.wellKnownUrl }),
      ...(options.random === undefined ? {} : { random: options.random }),
    });
  }

  /**
   * Where requests for `serverName` go, cached as the spec says
   * (https://spec.matrix.org/v1.12/server-server-api/#resolving-server-names).
   */
  resolveServer(serverName: string, signal?: AbortSignal): Promise<ResolvedServer> {
    return this.#discovery.resolveServer(serverName, signal);
  }

  /** Closes pooled connections. */
  close(): void {
    this.#transport.close();
  }

  /**
   * A signed GET of `path` (request target, with its query) on
   * `destination`, parsed as JSON.
   *
   * @throws {FederationError} `remote_error` (with `remoteStatus`/`remoteErrcode`) for a non-2xx answer,
   *   `bad_response` for a body that is not JSON, and the transport codes.
   */
  async getJson(destination: string, path: string, options: GetJsonOptions = {}): Promise<unknown> {
    const maxBytes = options.maxBytes ?? 1024 * 1024;
    const res = await this.#signedGet(destination, path, maxBytes, undefined, options.signal);
    if (res.status < 200 || res.status >= 300) {
      const info = await readRemoteError(res);
      throw new FederationError('remote_error', `GET ${path} on ${destination}: remote answered ${res.status}`, {
        remoteStatus: res.status,
        ...(info.errcode === undefined ? {} : { remoteErrcode: info.errcode }),
      });
    }
    const text = (await readAll(res.body)).toString('utf8');
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw new FederationError('bad_response', `GET ${path} on ${destination}: response is not JSON`, { cause });
    }
  }

  /**
   * Fetches `mxc://{serverName}/{mediaId}` from its server
   * (https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediadownloadmediaid):
   * the v1 federation endpoint, its multipart body decoded as it streams,
   * a `Location` part followed by an unsigned, SSRF-guarded GET, and the
   * legacy endpoint when the remote does not know v1.
   *
   * Resolves as soon as the media bytes start; the body stream errors with
   * a `RemoteMediaError` (`too_large`, `bad_response` when cut short,
   * `timeout`) instead of ending short.
   *
   * @throws {RemoteMediaError} `not_found` (remote 404), `too_large`, `timeout`, `unreachable`, `forbidden`,
   *   `bad_response` (malformed answers, remote 5xx). An abort rejects with the signal's reason.
   */
  fetchMedia(request: FederationMediaRequest): Promise<RemoteMedia> {
    const { serverName, mediaId } = request;
    const timeout = Math.max(0, Math.floor(request.timeoutMs));
    const plan: FetchPlan = {
      serverName,
      mediaId,
      maxBytes: request.maxBytes,
      timeoutMs: request.timeoutMs,
      signal: request.signal,
      v1Path: `/_matrix/federation/v1/media/download/${mediaId}?timeout_ms=${timeout}`,
      // `allow_remote=false` is a MUST: the remote must not fetch from elsewhere on our behalf.
      legacyPath:
        `/_matrix/media/v3/download/${encodeURIComponent(serverName)}/${mediaId}` +
        `?allow_remote=false&timeout_ms=${timeout}&allow_redirect=true`,
      what: `mxc://${serverName}/${mediaId}`,
    };
    return this.#fetchPlanned(plan, request.legacyOnly === true, 'remote media fetch failed');
  }

  /**
   * Fetches a thumbnail of `mxc://{serverName}/{mediaId}` made by its server
   * (https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediathumbnailmediaid): a signed GET of
   * `/_matrix/federation/v1/media/thumbnail/{mediaId}?width=&height=&method=&animated=&timeout_ms=`,
   * decoded as `fetchMedia` decodes downloads (inline part or `Location`),
   * with the legacy `/_matrix/media/v3/thumbnail/{serverName}/{mediaId}`
   * (`allow_remote=false`, `allow_redirect=true`) when the remote does not know v1.
   *
   * The answer must be an image of a thumbnail type
   * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid:
   * `image/jpeg`, `image/png`, `image/apng`, `image/gif`, `image/webp`);
   * anything else is refused as `bad_response` before its body is read.
   * `maxBytes` caps the thumbnail's bytes, as it caps media.
   *
   * @throws {TypeError} for a width or height that is not a positive integer, or an unknown method.
   * @throws {RemoteMediaError} as `fetchMedia`.
   */
  fetchThumbnail(request: FederationThumbnailRequest): Promise<RemoteMedia> {
    const { serverName, mediaId, width, height, method, animated } = request;
    if (!Number.isSafeInteger(width) || width < 1 || !Number.isSafeInteger(height) || height < 1) {
      return Promise.reject(new TypeError('fetchThumbnail: width and height must be positive integers'));
    }
    if (method !== 'crop' && method !== 'scale') return Promise.reject(new TypeError('fetchThumbnail: method must be crop or scale'));
    const timeout = Math.max(0, Math.floor(request.timeoutMs));
    const size = `width=${width}&height=${height}&method=${method}&animated=${animated ? 'true' : 'false'}`;
    const plan: FetchPlan = {
      serverName,
      mediaId,
      maxBytes: request.maxBytes,
      timeoutMs: request.timeoutMs,
      signal: request.signal,
      v1Path: `/_matrix/federation/v1/media/thumbnail/${mediaId}?${size}&timeout_ms=${timeout}`,
      legacyPath:
        `/_matrix/media/v3/thumbnail/${encodeURIComponent(serverName)}/${mediaId}` +
        `?${size}&allow_remote=false&timeout_ms=${timeout}&allow_redirect=true`,
      what: `thumbnail ${width}x${height} ${method} of mxc://${serverName}/${mediaId}`,
    };
    return this.#fetchPlanned(plan, request.legacyOnly === true, 'remote thumbnail fetch failed', (media) => {
      const type = media.contentType === null ? '' : essenceOf(media.contentType);
      if (!REMOTE_THUMBNAIL_CONTENT_TYPES.includes(type)) {
        throw new RemoteMediaError('bad_response', `${plan.what}: not a thumbnail type: ${JSON.stringify(media.contentType)}`);
      }
    });
  }

  /**
   * Runs a {@link FetchPlan}: v1 (or legacy only), every failure mapped to a
   * `RemoteMediaError` and logged. `check` vets the answer before its body
   * is read; when it throws, the body is cancelled.
   */
  async #fetchPlanned(plan: FetchPlan, legacyOnly: boolean, failureLog: string, check?: (media: RemoteMedia) => void): Promise<RemoteMedia> {
    const { serverName, mediaId, signal } = plan;
    try {
      if (!isValidMediaId(mediaId)) {
        throw new RemoteMediaError('not_found', `Invalid media ID ${JSON.stringify(mediaId)}`);
      }
      const media = legacyOnly ? await this.#fetchLegacy(plan) : await this.#fetchV1(plan);
      if (check !== undefined) {
        try {
          check(media);
        } catch (error) {
          await media.body.cancel().catch(() => undefined);
          throw error;
        }
      }
      return media;
    } catch (error) {
      const mapped = toRemoteMediaError(error, signal);
      if (mapped instanceof RemoteMediaError) {
        this.#logger.info({ serverName, mediaId, what: plan.what, failure: mapped.code, remoteStatus: mapped.remoteStatus }, failureLog);
      }
      throw mapped;
    }
  }

  async #fetchV1(plan: FetchPlan): Promise<RemoteMedia> {
    const { serverName, maxBytes, timeoutMs, signal, what } = plan;
    const res = await this.#signedGet(serverName, plan.v1Path, maxBytes + MULTIPART_OVERHEAD, timeoutMs, signal);
    if (res.status !== 200) {
      const info = await readRemoteError(res);
      if (isUnknownEndpoint(info.status, info.errcode, info.isJson)) {
        this.#logger.debug({ serverName, status: info.status, errcode: info.errcode }, 'v1 media endpoint unknown; using legacy');
        return this.#fetchLegacy(plan);
      }
      throw remoteError(info, what);
    }
    const contentType = firstHeader(res.headers, 'content-type') ?? '';
    if (!/^multipart\/mixed\s*(;|$)/i.test(contentType)) {
      await res.body.cancel();
      throw new RemoteMediaError('bad_response', `${what}: expected multipart/mixed, got ${JSON.stringify(contentType)}`);
    }
    if (res.contentLength !== null && res.contentLength > maxBytes + MULTIPART_OVERHEAD) {
      await res.body.cancel();
      throw new RemoteMediaError('too_large', `${what}: ${res.contentLength} bytes exceeds the limit of ${maxBytes}`);
    }
    const decoded = await decodeMultipart(contentType, res.body, {
      maxContentBytes: maxBytes,
      ...(signal === undefined ? {} : { signal }),
    });
    if (decoded.kind === 'location') {
      // Spec §3.3: a plain GET without X-Matrix; type and disposition come from that response.
      return this.#fetchUnsigned(new URL(decoded.location), plan, this.#maxRedirects);
    }
    return {
      contentType: decoded.contentType ?? null,
      contentDisposition: decoded.contentDisposition ?? null,
      contentLength: parseLength(decoded.headers['content-length']),
      body: mapStreamErrors(decoded.stream, (error) => toRemoteMediaError(error, signal)),
    };
  }

  /**
   * The deprecated `/_matrix/media/v3` endpoint, for servers predating v1
   * (https://spec.matrix.org/v1.12/server-server-api/#content-repository).
   */
  async #fetchLegacy(plan: FetchPlan): Promise<RemoteMedia> {
    const { serverName, maxBytes, timeoutMs, signal, what } = plan;
    const res = await this.#signedGet(serverName, plan.legacyPath, maxBytes, timeoutMs, signal);
    const location = firstHeader(res.headers, 'location');
    if (isRedirect(res.status) && location !== undefined) {
      await res.body.cancel();
      // Redirects from the legacy endpoint go to a CDN: absolute URLs only.
      if (!URL.canParse(location)) {
        throw new RemoteMediaError('bad_response', `${what}: legacy redirect to a relative URL`);
      }
      if (this.#maxRedirects <= 0) {
        throw new RemoteMediaError('bad_response', `${what}: legacy endpoint redirects, redirects disabled`);
      }
      return this.#fetchUnsigned(new URL(location), plan, this.#maxRedirects - 1);
    }
    return this.#mediaFromPlainResponse(res, plan, `${what} (legacy)`);
  }

  /** An unsigned GET of a `Location` or redirect target, following a few redirects. */
  async #fetchUnsigned(url: URL, plan: FetchPlan, redirectsLeft: number): Promise<RemoteMedia> {
    const { maxBytes, signal } = plan;
    const what = `${plan.what} via ${url.protocol}//${url.host}`;
    for (let left = redirectsLeft; ; left--) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new RemoteMediaError('bad_response', `${what}: redirect to a non-http(s) URL`);
      }
      if (url.username !== '' || url.password !== '') {
        throw new RemoteMediaError('bad_response', `${what}: redirect URL carries credentials`);
      }
      const res = await this.#transport.request({
        url,
        maxBodyBytes: maxBytes,
        headersTimeoutMs: Math.max(this.#idleMs, plan.timeoutMs),
        ...(signal === undefined ? {} : { signal }),
      });
      const location = firstHeader(res.headers, 'location');
      if (isRedirect(res.status) && location !== undefined) {
        await res.body.cancel();
        if (left <= 0) throw new RemoteMediaError('bad_response', `${what}: too many redirects`);
        url = new URL(location, url);
        continue;
      }
      return this.#mediaFromPlainResponse(res, plan, what);
    }
  }

  /** A non-multipart media response (legacy endpoint, `Location` target). */
  async #mediaFromPlainResponse(res: TransportResponse, plan: FetchPlan, what: string): Promise<RemoteMedia> {
    if (res.status !== 200) {
      throw remoteError(await readRemoteError(res), what);
    }
    if (res.contentLength !== null && res.contentLength > plan.maxBytes) {
      await res.body.cancel();
      throw new RemoteMediaError('too_large', `${what}: ${res.contentLength} bytes exceeds the limit of ${plan.maxBytes}`);
    }
    return {
      contentType: firstHeader(res.headers, 'content-type') ?? null,
      contentDisposition: firstHeader(res.headers, 'content-disposition') ?? null,
      contentLength: res.contentLength,
      body: mapStreamErrors(res.body, (error) => toRemoteMediaError(error, plan.signal)),
    };
  }

  /**
   * A signed GET on `destination`, trying each discovered target in turn
   * while they are unreachable. The X-Matrix header always names the
   * pre-delegation `destination` and signs the exact request target sent.
   */
  #signedGet(
    destination: string,
    path: string,
    maxBodyBytes: number,
    remoteTimeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<TransportResponse> {
    const authorization = signXMatrixRequest({ method: 'GET', uri: path, origin: this.#serverName, destination }, this.#key);
    return this.#federationRequest(destination, path, {
      headers: { Authorization: authorization, Accept: 'application/json, multipart/mixed' },
      maxBodyBytes,
      // The remote may hold the response up to `timeout_ms` waiting for an async upload.
      headersTimeoutMs: this.#idleMs + (remoteTimeoutMs ?? 0),
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /** A request to a discovered server, trying each target in turn while they are unreachable. */
  async #federationRequest(
    destination: string,
    path: string,
    options: Omit<TransportRequest, 'url' | 'connectTo' | 'hostHeader' | 'tlsServerName'>,
  ): Promise<TransportResponse> {
    const resolved = await this.#discovery.resolveServer(destination, options.signal);
    let lastError: unknown;
    for (const target of resolved.targets) {
      const hostForUrl = target.host.includes(':') ? `[${target.host}]` : target.host;
      try {
        return await this.#transport.request({
          ...options,
          url: new URL(`${resolved.scheme}://${hostForUrl}:${target.port}${path}`),
          connectTo: target,
          hostHeader: resolved.hostHeader,
          tlsServerName: resolved.tlsServerName,
        });
      } catch (error) {
        if (!isFederationError(error) || error.code !== 'unreachable') throw error;
        lastError = error;
        this.#logger.debug({ destination, target, err: error }, 'federation target unreachable');
      }
    }
    throw lastError ?? new FederationError('unreachable', `${destination}: no target to connect to`);
  }

  /**
   * Options for `@hsmedia/signing`'s `KeyRing` so that key fetches use this
   * client's server discovery and SSRF-guarded transport:
   * `new KeyRing({ ...client.keyRingOptions(), store })`.
   *
   * `resolveServer` answers `matrix-federation://<server name>` (the scheme
   * Synapse uses internally for the same purpose) and `fetch` understands
   * exactly those URLs. Key requests are not signed: the key endpoints
   * need no authentication.
   */
  keyRingOptions(): KeyRingTransport {
    return {
      resolveServer: (serverName: string): Promise<string> => Promise.resolve(`${FEDERATION_SCHEME}${serverName}`),
      fetch: (url: string, init: RequestInit): Promise<Response> => this.#fetchForKeyRing(url, init),
    };
  }

  async #fetchForKeyRing(url: string, init: RequestInit): Promise<Response> {
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
    const res = await this.#federationRequest(rest.slice(0, slash), rest.slice(slash), {
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
}
