/**
 * Pure functions from collected HTML metadata to the OpenGraph object of a
 * preview (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url: any OpenGraph
 * property may appear; `og:image` is an
 * `mxc://` URI the server fills in itself).
 */
import { DESCRIPTION_META_KEYS, IMAGE_META_KEYS, type HtmlImage, type HtmlMetadata } from './html-metadata.js';
import { resolveHttpUrl } from './http-url.js';

export { resolveHttpUrl };

/** What a page offers for its preview, before the image is fetched. */
export interface HtmlPreviewSource {
  /** Text properties (`og:title`, `og:description`, ...), without the `og:image*` keys the server sets. */
  readonly openGraph: Record<string, string>;
  /** The absolute http(s) URL of the preview image, when the page names one. */
  readonly imageUrl: string | undefined;
  /** The absolute http(s) URL of an oEmbed discovery link, when present. */
  readonly oEmbedUrl: string | undefined;
}

/** Longest description kept (Synapse's summary length). */
export const MAX_DESCRIPTION_CHARS = 500;
const MAX_PROPERTY_CHARS = 1000;
const MAX_PROPERTIES = 50;

/** `og:image*` keys the server computes itself; the page's values would be wrong or unsafe (a remote URL). */
const SERVER_IMAGE_KEYS: ReadonlySet<string> = new Set([
  'og:image',
  'og:image:url',
  'og:image:secure_url',
  'og:image:width',
  'og:image:height',
  'og:image:type',
]);

function clean(text: string | undefined): string | undefined {
  const value = text?.replace(/\s+/g, ' ').trim();
  return value === undefined || value === '' ? undefined : value;
}

/** Cuts `text` to `max` characters at a word boundary, marking the cut with an ellipsis. */
export function summarise(text: string, max: number = MAX_DESCRIPTION_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** The largest body image by declared size, else the first one. */
function bestBodyImage(images: readonly HtmlImage[]): HtmlImage | undefined {
  let best: HtmlImage | undefined;
  let bestArea = 0;
  for (const image of images) {
    const area = (image.width ?? 0) * (image.height ?? 0);
    if (area > bestArea) {
      best = image;
      bestArea = area;
    }
  }
  return best ?? images[0];
}

function first(meta: ReadonlyMap<string, string>, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = clean(meta.get(key));
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * The preview a page gives, with the fallbacks users expect when it has no
 * OpenGraph data: `og:title` from `twitter:title` or `<title>`,
 * `og:description` from `twitter:description`, `<meta name=description>` or
 * the first paragraphs, the image from `twitter:image`, `<link
 * rel=image_src>` or the largest declared body `<img>`. Relative URLs are
 * resolved against `<base href>` and the page's own (final) URL.
 *
 * @param pageUrl the URL the page was finally fetched from (after redirects).
 */
export function previewFromHtml(metadata: HtmlMetadata, pageUrl: string): HtmlPreviewSource {
  const base = resolveHttpUrl(metadata.baseHref, pageUrl) ?? pageUrl;
  const openGraph: Record<string, string> = {};
  let count = 0;
  for (const [key, raw] of metadata.meta) {
    if (!key.startsWith('og:') || SERVER_IMAGE_KEYS.has(key) || count >= MAX_PROPERTIES) continue;
    const value = clean(raw);
    if (value === undefined) continue;
    openGraph[key] = value.length > MAX_PROPERTY_CHARS ? summarise(value, MAX_PROPERTY_CHARS) : value;
    count += 1;
  }
  const title = first(metadata.meta, ['og:title', 'twitter:title']) ?? clean(metadata.title);
  if (title !== undefined) openGraph['og:title'] = summarise(title, MAX_PROPERTY_CHARS);
  const description = first(metadata.meta, DESCRIPTION_META_KEYS) ?? clean(metadata.paragraphText);
  if (description !== undefined) openGraph['og:description'] = summarise(description);

  const imageHref =
    first(metadata.meta, IMAGE_META_KEYS) ?? metadata.imageSrcHref ?? bestBodyImage(metadata.images)?.src;
  return {
    openGraph,
    imageUrl: resolveHttpUrl(imageHref, base),
    oEmbedUrl: resolveHttpUrl(metadata.oEmbedHref, base),
  };
}
