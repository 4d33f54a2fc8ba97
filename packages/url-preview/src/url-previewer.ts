/**
 * The URL previewer behind `GET /_matrix/client/v1/media/preview_url`
 * (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url).
 * Pipeline, for one normalised URL:
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
import { TextDecoder } from 'node:util';
import { essenceOf, parseContentDisposition } from '@hsmedia/media-core';
import { raceAbort, type Requester } from '@hsmedia/runtime';
import { CHARSET_PRESCAN_BYTES, sniffHtmlEncoding } from './charset.js';
import { PreviewError, isPreviewError } from './errors.js';
import { HtmlMetadataCollector } from './html-metadata.js';
import { isUnrecognisedImage, type ImageHeader } from './image-probe.js';
import { previewFromOEmbed } from './oembed.js';
import { previewFromHtml } from './open-graph.js';
import type { PreviewRequestOptions, SharedPreviewCache, StoredPreviewImage, UrlPreviewerOptions } from './url-previewer-options.js';
import { guardedGet, type FetchedResponse } from './internal/guarded-fetch.js';
import { PreviewCache } from './internal/preview-cache.js';
import { DEFAULTS, normaliseUrl, validate, type Settings } from './internal/settings.js';

/**
 * Makes URL previews: the OpenGraph object of
 * https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url, with `og:image`
 * as an `mxc://` URI. Rejects with {@link PreviewError} (map it with
 * `previewErrorToMatrixError`) or the caller's abort reason.
 */
export interface UrlPreviewer {
  preview(url: string, options: PreviewRequestOptions): Promise<Record<string, unknown>>;
}

const MAX_OEMBED_BYTES = 1024 * 1024;
/** Image bytes buffered at most while looking for the header (JPEG frames follow EXIF, ≤ 64 KiB each). */
const IMAGE_PROBE_BYTES = 256 * 1024;
const ACCEPT_PAGE = 'text/html,application/xhtml+xml;q=0.9,image/*;q=0.8,*/*;q=0.5';
const ACCEPT_IMAGE = 'image/png,image/jpeg,image/gif,image/webp;q=0.9,image/*;q=0.5';
const ACCEPT_OEMBED = 'application/json';

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
  readonly #sharedCache: SharedPreviewCache | undefined;

  constructor(options: UrlPreviewerOptions) {
    this.#settings = validate(options);
    this.#sharedCache = options.sharedCache;
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
      flight = this.#sharedOrGenerate(url, options.requester);
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

  /** The deployment's shared preview when one is fresh, else a fresh one (then shared). */
  async #sharedOrGenerate(url: URL, requester: Requester): Promise<Readonly<Record<string, unknown>>> {
    const shared = this.#sharedCache;
    if (shared === undefined) return this.#generate(url, requester);
    const { clock, logger } = this.#settings;
    try {
      const found = await shared.get(url.href, clock.now());
      if (found !== undefined) return Object.freeze({ ...found });
    } catch (error) {
      logger.warn({ err: error }, 'url-preview: the shared preview cache failed; fetching the page');
    }
    const preview = await this.#generate(url, requester);
    const now = clock.now();
    if (this.#settings.cacheTtlMs > 0) {
      await shared.set(url.href, preview, now, now + this.#settings.cacheTtlMs).catch((error: unknown) => {
        logger.warn({ err: error }, 'url-preview: could not share a preview with the other processes');
      });
    }
    return preview;
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
