import { Resolver } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import {
  essenceOf,
  REMOTE_THUMBNAIL_CONTENT_TYPES,
  RemoteMediaError,
  type RemoteMedia,
  type RemoteMediaRequest,
  type RemoteMediaSource,
  type RemoteThumbnailRequest,
} from '@hsmedia/media-core';
import { noopLogger, systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import type { AddressPolicy } from '@hsmedia/net-guard';
import { signXMatrixRequest, type SigningKey } from '@hsmedia/signing';
import { ServerResolver, type ResolvedServer, type SrvResolver } from './discovery.js';
import { FederationError, isFederationError } from './errors.js';
import { FEDERATION_SCHEME, fetchForKeyRing } from './internal/key-ring-fetch.js';
import { fetchPlanned, type FetchPlan, type MediaFetchContext } from './internal/media-fetch.js';
import { readRemoteError } from './remote-errors.js';
import { readAll, Transport, type Timeouts, type TransportRequest, type TransportResponse } from './transport.js';

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
  /**
   * Timeouts: `connectMs` and `idleMs` of every request (default 10 s and 30 s), and the overall
   * deadline and minimum rate of remote media fetches (`totalMs`, default 120 s;
   * `minBytesPerSecond`, default 4096 over windows of `rateWindowMs`, default 10 s).
   */
  readonly timeouts?: Partial<FederationTimeouts>;
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

/** Options of {@link FederationClient.getJson}. */
export interface GetJsonOptions {
  /** Largest response accepted. Default 1 MiB. */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal;
}

/** {@link FederationClientOptions.timeouts}. */
export interface FederationTimeouts extends Timeouts {
  /**
   * Overall deadline of one `fetchMedia`/`fetchThumbnail`, in ms: server discovery, every request
   * (fallback, `Location`, redirects), the remote's wait for an async upload (`timeout_ms`) and
   * the whole body. Past it the fetch fails with `RemoteMediaError` `timeout`, body included.
   * Default 120 000; 0: no deadline.
   */
  readonly totalMs: number;
  /**
   * Least bytes per second a remote media response body must bring, measured over windows of
   * `rateWindowMs` of waiting for the remote (time our own reader is slow does not count). A
   * slower body fails with `RemoteMediaError` `timeout`. Default 4096; 0 disables the check.
   */
  readonly minBytesPerSecond: number;
  /** The window of the rate check, in ms. Default 10 000: a short stall is fine, a drip is not. */
  readonly rateWindowMs: number;
}

const DEFAULT_TIMEOUTS: FederationTimeouts = {
  connectMs: 10_000,
  idleMs: 30_000,
  totalMs: 120_000,
  minBytesPerSecond: 4096,
  rateWindowMs: 10_000,
};

function checkTimeouts(timeouts: FederationTimeouts): FederationTimeouts {
  for (const [name, value] of Object.entries(timeouts)) {
    const min = name === 'totalMs' || name === 'minBytesPerSecond' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`FederationClient: timeouts.${name} must be an integer of at least ${min}, got ${String(value)}`);
    }
  }
  return timeouts;
}

/** What `KeyRing` from `@hsmedia/signing` needs to fetch keys through this client. */
export interface KeyRingTransport {
  readonly resolveServer: (serverName: string) => Promise<string>;
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
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
  readonly #logger: Logger;
  readonly #idleMs: number;
  readonly #fetchContext: MediaFetchContext;

  constructor(options: FederationClientOptions) {
    const timeouts = checkTimeouts({ ...DEFAULT_TIMEOUTS, ...options.timeouts });
    const ca = options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca : [options.ca];
    this.#serverName = options.serverName;
    this.#key = options.signingKey;
    this.#logger = options.logger ?? noopLogger;
    this.#idleMs = timeouts.idleMs;
    this.#transport = new Transport({
      addressPolicy: options.addressPolicy,
      timeouts: { connectMs: timeouts.connectMs, idleMs: timeouts.idleMs },
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
    this.#fetchContext = {
      signedGet: (destination, path, maxBodyBytes, remoteTimeoutMs, signal) =>
        this.#signedGet(destination, path, maxBodyBytes, remoteTimeoutMs, signal),
      transport: this.#transport,
      maxRedirects: options.maxRedirects ?? 3,
      idleMs: this.#idleMs,
      limits: { totalMs: timeouts.totalMs, minBytesPerSecond: timeouts.minBytesPerSecond, rateWindowMs: timeouts.rateWindowMs },
      logger: this.#logger,
      keyId: this.#key.keyId,
    };
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
        `/_matrix/media/v3/download/${legacyServerSegment(serverName)}/${mediaId}` +
        `?allow_remote=false&timeout_ms=${timeout}&allow_redirect=true`,
      what: `mxc://${serverName}/${mediaId}`,
    };
    return fetchPlanned(this.#fetchContext, plan, request.legacyOnly === true, 'remote media fetch failed');
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
        `/_matrix/media/v3/thumbnail/${legacyServerSegment(serverName)}/${mediaId}` +
        `?${size}&allow_remote=false&timeout_ms=${timeout}&allow_redirect=true`,
      what: `thumbnail ${width}x${height} ${method} of mxc://${serverName}/${mediaId}`,
    };
    return fetchPlanned(this.#fetchContext, plan, request.legacyOnly === true, 'remote thumbnail fetch failed', (media) => {
      const type = media.contentType === null ? '' : essenceOf(media.contentType);
      if (!REMOTE_THUMBNAIL_CONTENT_TYPES.includes(type)) {
        throw new RemoteMediaError('bad_response', `${plan.what}: not a thumbnail type: ${JSON.stringify(media.contentType)}`);
      }
    });
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
      fetch: (url: string, init: RequestInit): Promise<Response> =>
        fetchForKeyRing(url, init, (destination, path, options) => this.#federationRequest(destination, path, options)),
    };
  }
}

/**
 * A server name as a path segment of the legacy `/_matrix/media/v3` paths. The `:` before a
 * port is left as is: it is allowed in a path segment (RFC 3986 §3.3, `pchar`), and some servers
 * do not decode `%3A` there. Anything else outside the server-name grammar is percent-encoded.
 */
function legacyServerSegment(serverName: string): string {
  return encodeURIComponent(serverName).replace(/%3A/gi, ':').replace(/%5B/gi, '[').replace(/%5D/gi, ']');
}
