/**
 * The options of the URL previewer (`createUrlPreviewer`) and of one
 * `preview` call, and the `storeImage` callback through which preview
 * images become `mxc://` media.
 */
import type { LookupFunction } from 'node:net';
import type { Clock, Logger, Requester } from '@hsmedia/runtime';
import type { ImageHeader } from './image-probe.js';
import type { OEmbedProvider } from './oembed.js';
import type { UrlDenyRule } from './url-rules.js';

/** Per-call options of `UrlPreviewer.preview`. */
export interface PreviewRequestOptions {
  /**
   * The preferred point in time (ms since epoch), from the `ts` query
   * parameter. The spec lets a server answer with a newer preview; this
   * previewer serves its cached (newest) one whatever `ts` says.
   */
  readonly ts?: number;
  /** Who asked; passed on to `storeImage` as the preview image's owner. */
  readonly requester: Requester;
  /** Stops waiting (the shared fetch goes on for the other waiters and the cache). */
  readonly signal?: AbortSignal;
}

/**
 * Previews kept where every process of a deployment sees them (a table of the
 * shared database, as Synapse's `local_media_repository_url_cache`), so a URL
 * is fetched once per deployment within the cache time. Keys are the
 * normalised URL. Failures of this store are logged and ignored: the preview
 * is then fetched (or kept) by this process alone.
 */
export interface SharedPreviewCache {
  /** The preview of `url` that has not expired at `now`, or undefined. */
  get(url: string, now: number): Promise<Readonly<Record<string, unknown>> | undefined>;
  /** Keeps `preview` for `url` until `expiresAt` (ms since epoch), replacing an older one. */
  set(url: string, preview: Readonly<Record<string, unknown>>, fetchedAt: number, expiresAt: number): Promise<void>;
}

/** Options of {@link StorePreviewImage}. */
export interface StorePreviewImageOptions {
  /** Refuse the stream past this many bytes (the stream itself also errors past it). */
  readonly maxBytes: number;
  readonly signal: AbortSignal;
  readonly requester: Requester;
}

/** What {@link StorePreviewImage} stored. */
export interface StoredPreviewImage {
  /** `mxc://server/mediaId` of the stored image. */
  readonly mxcUri: string;
  /** Stored bytes. */
  readonly size: number;
  /** Pixel size, if the store measured it; otherwise the header probe's values are used. */
  readonly width?: number;
  readonly height?: number;
}

/**
 * Stores a preview image as local media (the media server provides it).
 * `contentType` is the type the bytes really are (probed), not what the
 * site claimed.
 */
export type StorePreviewImage = (
  stream: ReadableStream<Uint8Array>,
  contentType: string,
  options: StorePreviewImageOptions,
) => Promise<StoredPreviewImage>;

/** oEmbed settings of {@link UrlPreviewerOptions}. */
export interface OEmbedOptions {
  /** Replaces the bundled `DEFAULT_OEMBED_PROVIDERS`; `[]` turns provider lookups off. */
  readonly providers?: readonly OEmbedProvider[];
  /** Follow `<link rel="alternate" type="application/json+oembed">` in pages. Default true. */
  readonly discovery?: boolean;
}

/** Options of `createUrlPreviewer`. Validated and copied when it is called. */
export interface UrlPreviewerOptions {
  /** Stores the preview image and returns its `mxc://` URI. */
  readonly storeImage: StorePreviewImage;
  /**
   * CIDRs to refuse on top of the built-in non-public ranges (loopback,
   * private, link-local, CGNAT, multicast, documentation, IPv4-mapped and
   * the rest; see `@hsmedia/net-guard`), which are always refused unless allowed.
   */
  readonly ipRangeDenyList?: readonly string[];
  /** CIDRs to allow although non-public (most specific entry wins against the deny list). */
  readonly ipRangeAllowList?: readonly string[];
  /** URLs never fetched (checked on the requested URL and every redirect). */
  readonly urlDenyList?: readonly UrlDenyRule[];
  /** DNS resolver to guard; default `dns.lookup`. */
  readonly lookup?: LookupFunction;
  /** Default `hsmedia-url-preview/0.1 (bot; Matrix URL preview)`. */
  readonly userAgent?: string;
  /** Default `en`. */
  readonly acceptLanguage?: string;
  /** HTML bytes read at most (parsing stops earlier once the head is read). Default 10 MiB. */
  readonly maxPageBytes?: number;
  /** Largest preview image, and largest image URL previewed. Default 10 MiB. */
  readonly maxImageBytes?: number;
  /** Largest image in pixels (decompression-bomb guard). Default 32 000 000. */
  readonly maxImagePixels?: number;
  /** Redirects followed per fetch. Default 5. */
  readonly maxRedirects?: number;
  /** Time for one fetch (page with its redirects, oEmbed, or image), body included. Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** How long a preview is cached. Default 1 h. */
  readonly cacheTtlMs?: number;
  /** How long a failure is cached. Default 60 s. */
  readonly errorCacheTtlMs?: number;
  /** Cached URLs kept at most. Default 1000. */
  readonly cacheMaxEntries?: number;
  /** Previews shared with the other processes of a deployment, asked before fetching; none: this process's cache only. */
  readonly sharedCache?: SharedPreviewCache;
  readonly oEmbed?: OEmbedOptions;
  /** Replaces the built-in PNG/JPEG/GIF/WebP header probe; return null when the prefix is not enough. */
  readonly probeImage?: (prefix: Uint8Array) => ImageHeader | null;
  readonly logger?: Logger;
  readonly clock?: Clock;
}
