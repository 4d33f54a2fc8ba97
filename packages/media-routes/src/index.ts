export {
  createMediaRouters,
  mountMediaRoutes,
  type MediaRoutersOptions,
  type MediaRouters,
  type MountMediaRoutesOptions,
  type MountedMediaRouters,
  type MediaRateLimits,
} from './media-routers.js';
export { addAsyncUploadRoutes, type AsyncUploadRoutesOptions } from './async-upload-routes.js';
export {
  rateLimit,
  byteRateLimit,
  requesterKey,
  originKey,
  clientIpKey,
  type RateLimitOptions,
  type ByteRateLimitOptions,
  type ByteCharge,
} from './rate-limit.js';
export {
  createFederationMediaRouter,
  type FederationMediaRouterOptions,
  type FederationThumbnail,
  type FederationThumbnailProvider,
  type FederationThumbnailRequest,
} from './federation-router.js';
export { sendMedia, type SendMediaOptions, type SendableMedia } from './send-media.js';
export { accelMedia, type MediaAccel } from './accel-media.js';
export { allowsRedirect, redirectMedia, type DirectUrlTarget, type MediaRedirect, type RedirectableMedia } from './redirect-media.js';
export type { MediaRouteState } from './route-context.js';
export { addThumbnailRoutes, federationThumbnailProvider, type ThumbnailRoutesOptions } from './thumbnail-routes.js';
export {
  createPreviewUrlHandler,
  type PreviewUrlOptions,
  type PreviewUrlPort,
  type PreviewUrlRequest,
} from './preview-routes.js';
export {
  mediaSecurityHeaders,
  MEDIA_SECURITY_HEADERS,
  MEDIA_CONTENT_SECURITY_POLICY,
} from './media-headers.js';
export { decideRange, ifNoneMatchMatches, ifRangeAllows, type RangeDecision } from './http-range.js';
export {
  createAdminRouter,
  SYNAPSE_ADMIN_PREFIX,
  HSMEDIA_ADMIN_PREFIX,
  type AdminRouterOptions,
} from './admin-routes.js';
export { createScanAdminRouter, type ScanAdminRouterOptions } from './scan-admin-routes.js';
export {
  addBlockedHashListRoutes,
  DEFAULT_MAX_HASH_LIST_BYTES,
  type BlockedHashListRoutesOptions,
} from './admin-hash-list-routes.js';
export { createAdminConsoleRouter, type AdminConsoleRouterOptions } from './admin-console-routes.js';
