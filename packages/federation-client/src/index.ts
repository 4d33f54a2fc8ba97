/**
 * `@hsmedia/federation-client`: outbound Matrix federation for media.
 * Server discovery (well-known, SRV, port 8448), X-Matrix signed requests,
 * an SSRF-guarded transport (net-guard's `GuardedHttpClient`) with timeouts
 * and byte caps, and a
 * `RemoteMediaSource` that fetches media and thumbnails over the v1
 * federation media endpoints (multipart, `Location`) with the legacy fallback.
 */
export {
  FederationClient,
  type FederationClientOptions,
  type FederationMediaRequest,
  type FederationThumbnailRequest,
  type FederationTimeouts,
  type GetJsonOptions,
  type KeyRingTransport,
} from './federation-client.js';
export { isUnknownEndpoint } from './remote-errors.js';
export {
  ServerResolver,
  cachePeriodFromHeaders,
  parseWellKnown,
  type ResolvedServer,
  type ServerResolverOptions,
  type SrvResolver,
} from './discovery.js';
export { FederationError, isFederationError, type FederationErrorCode, type FederationErrorOptions } from './errors.js';
export { Transport, type Timeouts, type TransportOptions, type TransportRequest, type TransportResponse } from './transport.js';
