/**
 * `@hsmedia/url-preview`: URL previews for Matrix `preview_url`
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url).
 * An SSRF-guarded fetcher (net-guard's `GuardedHttpClient`, IP range policy
 * on every hop), OpenGraph and oEmbed extraction as pure functions, and the
 * preview image stored through an injected callback as `mxc://` media.
 */
export { createUrlPreviewer, HttpUrlPreviewer, type UrlPreviewer } from './url-previewer.js';
export type {
  UrlPreviewerOptions,
  PreviewRequestOptions,
  StorePreviewImage,
  StorePreviewImageOptions,
  StoredPreviewImage,
  OEmbedOptions,
  SharedPreviewCache,
} from './url-previewer-options.js';
export {
  PreviewError,
  PreviewConfigError,
  isPreviewError,
  previewErrorToMatrixError,
  type PreviewErrorCode,
  type PreviewErrorOptions,
} from './errors.js';
export {
  HtmlMetadataCollector,
  parseHtmlMetadata,
  IMAGE_META_KEYS,
  DESCRIPTION_META_KEYS,
  type HtmlMetadata,
  type HtmlImage,
} from './html-metadata.js';
export {
  previewFromHtml,
  resolveHttpUrl,
  summarise,
  MAX_DESCRIPTION_CHARS,
  type HtmlPreviewSource,
} from './open-graph.js';
export {
  DEFAULT_OEMBED_PROVIDERS,
  compileOEmbedProviders,
  oEmbedSchemeToRegExp,
  oEmbedRequestUrl,
  previewFromOEmbed,
  type OEmbedProvider,
  type OEmbedEndpoint,
  type OEmbedMatcher,
  type OEmbedPreviewSource,
} from './oembed.js';
export { compileUrlDenyRules, type UrlDenyRule, type UrlDenyMatcher } from './url-rules.js';
export { probeImageHeader, isUnrecognisedImage, PROBED_IMAGE_TYPES, type ImageHeader } from './image-probe.js';
export { sniffHtmlEncoding, charsetOfContentType, encodingForLabel, CHARSET_PRESCAN_BYTES } from './charset.js';
