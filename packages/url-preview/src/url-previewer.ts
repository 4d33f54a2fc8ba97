/**
 * The URL previewer behind `GET /_matrix/client/v1/media/preview_url`
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url). Pipeline, for one normalised URL:
 *
 * 1. Validate the URL (http/https, no credentials) and the operator's URL deny rules.
 * 2. Serve a cached result (or a recent failure); join a fetch already in flight.
 * 3. If a bundled/configured oEmbed provider serves the URL, ask it.
 * 4. Otherwise (or if that fails) GET the URL, following redirects hop by hop,
 *    every hop re-checked (scheme, deny rules, IP range policy on the address
 *    actually connected to).
 * 5. An image answer is itself the preview. HTML is decoded (BOM, header,
 *    `<meta>` charset) and parsed as a stream, stopping once the head and
 *    the fallbacks are read or at the byte cap; an oEmbed discovery link is
 *    followed and its data wins over the page's.
 * 6. The preview image is downloaded (byte cap, header probed for type and
 *    pixel count before anything is stored) and handed to `storeImage`, and
 *    its `mxc://` URI returned as `og:image`.
 */
import type { LookupFunction } from 'node:net';
import { TextDecoder } from 'node:util';
import { createAddressPolicy, GuardedHttpClient, type AddressPolicy } from '@hsmedia/net-guard';
import { essenceOf, parseContentDisposition } from '@hsmedia/media-core';
import { noopLogger, raceAbort, systemClock, type Clock, type Logger, type Requester } from '@hsmedia/runtime';
import { CHARSET_PRESCAN_BYTES, sniffHtmlEncoding } from './charset.js';
import { PreviewConfigError, PreviewError, isPreviewError } from './errors.js';
import { HtmlMetadataCollector } from './html-metadata.js';
import { isUnrecognisedImage, probeImageHeader, type ImageHeader } from './image-probe.js';
import { DEFAULT_OEMBED_PROVIDERS, compileOEmbedProviders, previewFromOEmbed, type OEmbedMatcher, type OEmbedProvider } from './oembed.js';
import { previewFromHtml } from './open-graph.js';
import { compileUrlDenyRules, type UrlDenyMatcher, type UrlDenyRule } from './url-rules.js';
import { guardedGet, type FetchedResponse, type GuardedFetchContext } from './internal/guarded-fetch.js';
import { PreviewCache } from './internal/preview-cache.js';

/** Per-call options of {@link UrlPreviewer.preview}. */
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
 * Makes URL previews: the OpenGraph object of
 * https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url, with `og:image`
 * as an `mxc://` URI. Rejects with {@link PreviewError} (map it with
 * `previewErrorToMatrixError`) or the caller's abort reason.
 */
export interface UrlPreviewer {
  preview(url: string, options: PreviewRequestOptions): Promise<Record<string, unknown>>;
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
  /** Replaces the bundled {@link DEFAULT_OEMBED_PROVIDERS}; `[]` turns provider lookups off. */
  readonly providers?: readonly OEmbedProvider[];
  /** Follow `<link rel="alternate" type="application/json+oembed">` in pages. Default true. */
  readonly discovery?: boolean;
}

/** Options of {@link createUrlPreviewer}. Validated and copied when it is called. */
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
  readonly oEmbed?: OEmbedOptions;
  /** Replaces the built-in PNG/JPEG/GIF/WebP header probe; return null when the prefix is not enough. */
  readonly probeImage?: (prefix: Uint8Array) => ImageHeader | null;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

const DEFAULTS = {
  userAgent: 'hsmedia-url-preview/0.1 (bot; Matrix URL preview)',
  acceptLanguage: 'en',
  maxPageBytes: 10 * 1024 * 1024,
  maxImageBytes: 10 * 1024 * 1024,
  maxImagePixels: 32_000_000,
  maxRedirects: 5,
  timeoutMs: 10_000,
  cacheTtlMs: 60 * 60 * 1000,
  errorCacheTtlMs: 60 * 1000,
  cacheMaxEntries: 1000,
} as const;

const MAX_URL_LENGTH = 4096;
const MAX_OEMBED_BYTES = 1024 * 1024;
/** Image bytes buffered at most while looking for the header (JPEG frames follow EXIF, ≤ 64 KiB each). */
const IMAGE_PROBE_BYTES = 256 * 1024;
const ACCEPT_PAGE = 'text/html,application/xhtml+xml;q=0.9,image/*;q=0.8,*/*;q=0.5';
const ACCEPT_IMAGE = 'image/png,image/jpeg,image/gif,image/webp;q=0.9,image/*;q=0.5';
const ACCEPT_OEMBED = 'application/json';

/**
 * Representative non-public addresses, per family. If the effective policy
 * lets every one of a family through, there is no IP range deny list in
 * effect for it, and previews would be an open proxy into the network.
 */
const SENTINELS: Readonly<Record<'IPv4' | 'IPv6', readonly string[]>> = {
  IPv4: ['127.0.0.1', '10.0.0.1', '172.16.0.1', '192.168.0.1', '169.254.169.254', '100.64.0.1'],
  IPv6: ['::1', 'fc00::1', 'fe80::1', 'fec0::1'],
};

interface Settings {
  readonly storeImage: StorePreviewImage;
  readonly denyUrl: UrlDenyMatcher;
  readonly oEmbedFor: OEmbedMatcher;
  readonly oEmbedDiscovery: boolean;
  readonly fetchContext: GuardedFetchContext;
  readonly maxPageBytes: number;
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  readonly errorCacheTtlMs: number;
  readonly probeImage: (prefix: Uint8Array) => ImageHeader | null;
  readonly logger: Logger;
  readonly clock: Clock;
}

function positiveInteger(
  options: UrlPreviewerOptions,
  key: 'maxPageBytes' | 'maxImageBytes' | 'maxImagePixels' | 'timeoutMs' | 'cacheTtlMs' | 'errorCacheTtlMs' | 'cacheMaxEntries' | 'maxRedirects',
  problems: string[],
  allowZero: boolean = false,
): number {
  const value = options[key] ?? DEFAULTS[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    problems.push(`${key} must be a${allowZero ? ' non-negative' : ' positive'} integer, got ${JSON.stringify(value)}`);
    return DEFAULTS[key];
  }
  return value;
}

function headerValue(options: UrlPreviewerOptions, key: 'userAgent' | 'acceptLanguage', problems: string[]): string {
  const value = options[key] ?? DEFAULTS[key];
  // No CR/LF/control characters: the value goes verbatim into a request header.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (typeof value !== 'string' || value.trim() === '' || /[\0-\x1f\x7f]/.test(value)) {
    problems.push(`${key} must be a non-empty header value`);
    return DEFAULTS[key];
  }
  return value;
}

function buildPolicy(options: UrlPreviewerOptions, problems: string[]): AddressPolicy {
  let policy: AddressPolicy = () => false;
  try {
    policy = createAddressPolicy({ allow: options.ipRangeAllowList ?? [], deny: options.ipRangeDenyList ?? [] });
  } catch (error) {
    problems.push((error as Error).message);
    return policy;
  }
  for (const [family, addresses] of Object.entries(SENTINELS)) {
    if (addresses.every((address) => policy(address))) {
      problems.push(
        `no IP range deny list is in effect for ${family} (the allow list opens every private range); URL previews ` +
          `would reach the internal network. Narrow ipRangeAllowList or add ipRangeDenyList entries`,
      );
    }
  }
  return policy;
}

function validate(options: UrlPreviewerOptions): Settings {
  const problems: string[] = [];
  if (typeof options?.storeImage !== 'function') problems.push('storeImage must be a function');
  const policy = buildPolicy(options, problems);
  const denyUrl = compileUrlDenyRules(options.urlDenyList ?? [], problems);
  const oEmbedFor = compileOEmbedProviders(options.oEmbed?.providers ?? DEFAULT_OEMBED_PROVIDERS, problems);
  const maxRedirects = positiveInteger(options, 'maxRedirects', problems, true);
  const userAgent = headerValue(options, 'userAgent', problems);
  const acceptLanguage = headerValue(options, 'acceptLanguage', problems);
  const settings = {
    maxPageBytes: positiveInteger(options, 'maxPageBytes', problems),
    maxImageBytes: positiveInteger(options, 'maxImageBytes', problems),
    maxImagePixels: positiveInteger(options, 'maxImagePixels', problems),
    timeoutMs: positiveInteger(options, 'timeoutMs', problems),
    cacheTtlMs: positiveInteger(options, 'cacheTtlMs', problems, true),
    errorCacheTtlMs: positiveInteger(options, 'errorCacheTtlMs', problems, true),
  };
  positiveInteger(options, 'cacheMaxEntries', problems, true);
  if (options.probeImage !== undefined && typeof options.probeImage !== 'function') problems.push('probeImage must be a function');
  if (problems.length > 0) throw new PreviewConfigError(problems);

  const checkUrl = (url: URL): void => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new PreviewError('invalid_url', `Only http and https URLs can be previewed, not ${url.protocol}`);
    }
    if (denyUrl(url)) throw new PreviewError('url_denied', 'URL blocked');
  };
  return {
    storeImage: options.storeImage,
    denyUrl,
    oEmbedFor,
    oEmbedDiscovery: options.oEmbed?.discovery ?? true,
    fetchContext: {
      // No keep-alive: every request opens (and checks) its own connection.
      client: new GuardedHttpClient({ policy, ...(options.lookup === undefined ? {} : { lookup: options.lookup }) }),
      userAgent,
      acceptLanguage,
      checkUrl,
      maxRedirects,
    },
    ...settings,
    probeImage: options.probeImage ?? probeImageHeader,
    logger: options.logger ?? noopLogger,
    clock: options.clock ?? systemClock,
  };
}

/** Parses and normalises the requested URL (fragment dropped), or throws `invalid_url`. */
function normaliseUrl(raw: string): URL {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_URL_LENGTH) {
    throw new PreviewError('invalid_url', `The URL must be 1 to ${MAX_URL_LENGTH} characters long`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PreviewError('invalid_url', 'The URL is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PreviewError('invalid_url', `Only http and https URLs can be previewed, not ${url.protocol}`);
  }
  // Credentials in a preview URL would be sent to the site on the user's behalf.
  if (url.username !== '' || url.password !== '') throw new PreviewError('invalid_url', 'URLs with credentials are not previewed');
  url.hash = '';
  return url;
}

function statusError(response: FetchedResponse): PreviewError {
  return new PreviewError('upstream_status', `Got error ${response.status}`, { upstreamStatus: response.status });
}

interface IngestedImage {
  readonly mxcUri: string;
  readonly size: number;
  readonly width: number;
  readonly height: number;
  readonly contentType: string;
}

function imageProperties(image: IngestedImage): Record<string, unknown> {
  return {
    'og:image': image.mxcUri,
    'og:image:type': image.contentType,
    'og:image:width': image.width,
    'og:image:height': image.height,
    'matrix:image:size': image.size,
  };
}

/**
 * The previewer built by {@link createUrlPreviewer}. Holds the cache and the
 * in-flight fetches; nothing else is shared between calls.
 */
export class HttpUrlPreviewer implements UrlPreviewer {
  readonly #settings: Settings;
  readonly #cache: PreviewCache;
  readonly #inFlight = new Map<string, Promise<Readonly<Record<string, unknown>>>>();

  constructor(options: UrlPreviewerOptions) {
    this.#settings = validate(options);
    this.#cache = new PreviewCache(options.cacheMaxEntries ?? DEFAULTS.cacheMaxEntries);
  }

  async preview(rawUrl: string, options: PreviewRequestOptions): Promise<Record<string, unknown>> {
    options.signal?.throwIfAborted();
    const url = normaliseUrl(rawUrl);
    this.#settings.fetchContext.checkUrl(url);
    const key = url.href;
    const cached = this.#cache.get(key, this.#settings.clock.now());
    if (cached !== undefined) {
      if (!cached.ok) throw cached.error;
      return { ...cached.value };
    }
    let flight = this.#inFlight.get(key);
    if (flight === undefined) {
      flight = this.#generate(url, options.requester);
      this.#inFlight.set(key, flight);
      const started = flight;
      started.then(
        (value) => this.#settle(key, started, { ok: true, value }),
        (error: unknown) => this.#settle(key, started, { ok: false, error }),
      );
    }
    return { ...(await raceAbort(flight, options.signal)) };
  }

  #settle(
    key: string,
    flight: Promise<unknown>,
    outcome: { ok: true; value: Readonly<Record<string, unknown>> } | { ok: false; error: unknown },
  ): void {
    if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key);
    const now = this.#settings.clock.now();
    if (outcome.ok) {
      if (this.#settings.cacheTtlMs > 0) this.#cache.set(key, { ...outcome, expiresAt: now + this.#settings.cacheTtlMs });
    } else if (isPreviewError(outcome.error) && outcome.error.code !== 'internal' && this.#settings.errorCacheTtlMs > 0) {
      // Failures of the site are cached briefly, so a broken link posted in a busy room is fetched once, not per client.
      this.#cache.set(key, { ...outcome, expiresAt: now + this.#settings.errorCacheTtlMs });
    }
  }

  async #generate(url: URL, requester: Requester): Promise<Readonly<Record<string, unknown>>> {
    const { logger } = this.#settings;
    const oEmbedUrl = this.#settings.oEmbedFor(url.href);
    if (oEmbedUrl !== undefined) {
      try {
        const fromProvider = await this.#fetchOEmbed(new URL(oEmbedUrl));
        if (fromProvider !== undefined) {
          return Object.freeze(await this.#withImage(fromProvider.openGraph, fromProvider.imageUrl, requester));
        }
      } catch (error) {
        logger.info({ err: error, url: url.href }, 'url-preview: oEmbed provider failed, fetching the page instead');
      }
    }

    const signal = AbortSignal.timeout(this.#settings.timeoutMs);
    // No byte cap here: HTML is read up to maxPageBytes and then dropped, an image up to maxImageBytes (#ingestImage).
    const response = await guardedGet(this.#settings.fetchContext, url, { accept: ACCEPT_PAGE, maxBytes: Infinity, signal });
    try {
      if (response.status < 200 || response.status > 299) throw statusError(response);
      const type = essenceOf(response.contentType ?? '');
      if (type.startsWith('image/')) {
        const image = await this.#ingestImage(response, signal, requester);
        const result: Record<string, unknown> = imageProperties(image);
        const filename =
          response.contentDisposition === null ? null : (parseContentDisposition(response.contentDisposition)?.filename ?? null);
        if (filename !== null && filename.trim() !== '') result['og:title'] = filename.trim();
        return Object.freeze(result);
      }
      if (type !== 'text/html' && type !== 'application/xhtml+xml') {
        throw new PreviewError(
          'unsupported_content_type',
          `Requested file's content type not allowed for this operation: ${type === '' ? 'none' : type}`,
        );
      }
      const metadata = await this.#readHtml(response);
      const fromPage = previewFromHtml(metadata, response.url.href);
      let openGraph = fromPage.openGraph;
      let imageUrl = fromPage.imageUrl;
      if (fromPage.oEmbedUrl !== undefined && this.#settings.oEmbedDiscovery) {
        try {
          const discovered = await this.#fetchOEmbed(new URL(fromPage.oEmbedUrl));
          if (discovered !== undefined) {
            // oEmbed data is meant for embedding, so it wins over the page's own tags (as in Synapse).
            openGraph = { ...openGraph, ...discovered.openGraph };
            imageUrl = discovered.imageUrl ?? imageUrl;
          }
        } catch (error) {
          logger.info({ err: error, url: fromPage.oEmbedUrl }, 'url-preview: oEmbed discovery link failed');
        }
      }
      return Object.freeze(await this.#withImage(openGraph, imageUrl, requester));
    } finally {
      response.close();
    }
  }

  /** The preview with its image, or without when the image cannot be had (the page is still worth a preview). */
  async #withImage(
    openGraph: Record<string, string>,
    imageUrl: string | undefined,
    requester: Requester,
  ): Promise<Record<string, unknown>> {
    if (imageUrl === undefined) return { ...openGraph };
    const signal = AbortSignal.timeout(this.#settings.timeoutMs);
    try {
      // #ingestImage enforces maxImageBytes itself, with the message the user sees.
      const response = await guardedGet(this.#settings.fetchContext, new URL(imageUrl), { accept: ACCEPT_IMAGE, maxBytes: Infinity, signal });
      try {
        if (response.status < 200 || response.status > 299) throw statusError(response);
        const image = await this.#ingestImage(response, signal, requester);
        return { ...openGraph, ...imageProperties(image) };
      } finally {
        response.close();
      }
    } catch (error) {
      this.#settings.logger.info({ err: error, imageUrl }, 'url-preview: preview image left out');
      return { ...openGraph };
    }
  }

  async #fetchOEmbed(endpoint: URL): Promise<ReturnType<typeof previewFromOEmbed>> {
    const signal = AbortSignal.timeout(this.#settings.timeoutMs);
    const response = await guardedGet(this.#settings.fetchContext, endpoint, { accept: ACCEPT_OEMBED, maxBytes: MAX_OEMBED_BYTES, signal });
    try {
      if (response.status < 200 || response.status > 299) throw statusError(response);
      if (response.contentLength !== null && response.contentLength > MAX_OEMBED_BYTES) {
        throw new PreviewError('too_large', 'oEmbed response is too large');
      }
      const chunks: Uint8Array[] = [];
      for await (const chunk of response.body) chunks.push(chunk); // errors with too_large past MAX_OEMBED_BYTES
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder('utf-8').decode(Buffer.concat(chunks)));
      } catch (error) {
        throw new PreviewError('unreachable', 'oEmbed response is not JSON', { cause: error });
      }
      return previewFromOEmbed(json, response.url.href);
    } finally {
      response.close();
    }
  }

  /**
   * Reads HTML up to the byte cap, decoding with the sniffed charset, and
   * stops as soon as the collector has everything; the rest of a huge page
   * is never downloaded.
   */
  async #readHtml(response: FetchedResponse): Promise<ReturnType<HtmlMetadataCollector['end']>> {
    const collector = new HtmlMetadataCollector();
    const max = this.#settings.maxPageBytes;
    let decoder: TextDecoder | undefined;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let total = 0;
    const start = (): void => {
      const prefix = Buffer.concat(pending);
      decoder = new TextDecoder(sniffHtmlEncoding(prefix, response.contentType));
      collector.write(decoder.decode(prefix, { stream: true }));
      pending = [];
    };
    for await (const raw of response.body) {
      const chunk = total + raw.byteLength > max ? raw.subarray(0, max - total) : raw;
      total += chunk.byteLength;
      if (decoder === undefined) {
        pending.push(chunk);
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= CHARSET_PRESCAN_BYTES) start();
      } else {
        collector.write(decoder.decode(chunk, { stream: true }));
      }
      if (collector.done || total >= max) break; // leaving the loop closes the connection
    }
    if (decoder === undefined) start();
    collector.write(decoder!.decode());
    return collector.end();
  }

  /**
   * Buffers the image's first bytes until its header tells type and size,
   * refuses what is not a PNG/JPEG/GIF/WebP or has too many pixels, then
   * streams the buffered and remaining bytes (capped) into `storeImage`.
   */
  async #ingestImage(response: FetchedResponse, signal: AbortSignal, requester: Requester): Promise<IngestedImage> {
    const { maxImageBytes, maxImagePixels, probeImage } = this.#settings;
    if (response.contentLength !== null && response.contentLength > maxImageBytes) {
      throw new PreviewError('too_large', `Requested file is too large > ${maxImageBytes} bytes`);
    }
    const iterator = response.body[Symbol.asyncIterator]();
    const buffered: Uint8Array[] = [];
    let total = 0;
    let header: ImageHeader | null = null;
    let ended = false;
    try {
      while (header === null) {
        const next = await iterator.next();
        if (next.done === true) {
          ended = true;
        } else {
          total += next.value.byteLength;
          if (total > maxImageBytes) throw new PreviewError('too_large', `Requested file is too large > ${maxImageBytes} bytes`);
          buffered.push(next.value);
        }
        const prefix = Buffer.concat(buffered);
        header = probeImage(prefix);
        if (header === null && (ended || prefix.byteLength >= IMAGE_PROBE_BYTES || isUnrecognisedImage(prefix))) {
          throw new PreviewError(
            'unsupported_content_type',
            "Requested file's content type not allowed for this operation: not a PNG, JPEG, GIF or WebP image",
          );
        }
      }
      if (header.width * header.height > maxImagePixels) {
        throw new PreviewError('too_large', `Image is too large: ${header.width}x${header.height} pixels`);
      }
    } catch (error) {
      await iterator.return?.();
      throw error;
    }

    let streamError: PreviewError | undefined;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const first = buffered.shift();
          if (first !== undefined) {
            controller.enqueue(first);
            return;
          }
          if (ended) {
            controller.close();
            return;
          }
          try {
            const next = await iterator.next();
            if (next.done === true) {
              controller.close();
              return;
            }
            total += next.value.byteLength;
            if (total > maxImageBytes) {
              streamError = new PreviewError('too_large', `Requested file is too large > ${maxImageBytes} bytes`);
              throw streamError;
            }
            controller.enqueue(next.value);
          } catch (error) {
            if (isPreviewError(error)) streamError ??= error;
            await iterator.return?.();
            controller.error(error);
          }
        },
        cancel: async () => {
          await iterator.return?.();
        },
      },
      { highWaterMark: 0 },
    );
    let stored: StoredPreviewImage;
    try {
      stored = await this.#settings.storeImage(stream, header.contentType, { maxBytes: maxImageBytes, signal, requester });
    } catch (error) {
      if (streamError !== undefined) throw streamError;
      if (signal.aborted) throw new PreviewError('timeout', 'Timed out fetching the image', { cause: error });
      throw new PreviewError('internal', 'Storing the preview image failed', { cause: error });
    }
    return {
      mxcUri: stored.mxcUri,
      size: stored.size,
      width: stored.width ?? header.width,
      height: stored.height ?? header.height,
      contentType: header.contentType,
    };
  }
}

/**
 * Builds a {@link UrlPreviewer}. Validates every option at once and refuses
 * unsafe settings with a {@link PreviewConfigError}: in particular an IP
 * range policy that lets a whole address family's private ranges through
 * (Synapse likewise refuses to start with previews and no
 * `url_preview_ip_range_blacklist`,
 * https://element-hq.github.io/synapse/latest/usage/configuration/config_documentation.html#url_preview_ip_range_blacklist).
 *
 * @example
 * const previewer = createUrlPreviewer({
 *   storeImage: (stream, contentType, { maxBytes, signal, requester }) =>
 *     media.storePreviewImage(stream, contentType, { maxBytes, signal, userId: requester.userId }),
 *   urlDenyList: [{ host: '*.internal.example' }],
 * });
 * const og = await previewer.preview('https://matrix.org/', { requester });
 */
export function createUrlPreviewer(options: UrlPreviewerOptions): UrlPreviewer {
  return new HttpUrlPreviewer(options);
}
