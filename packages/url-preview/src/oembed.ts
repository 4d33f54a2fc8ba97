/**
 * oEmbed (https://oembed.com): a provider list that maps URL schemes to
 * endpoints, and the mapping of an oEmbed JSON response to OpenGraph
 * properties. Pure functions; the previewer does the fetching.
 */
import { Parser } from 'htmlparser2';
import { MAX_DESCRIPTION_CHARS, resolveHttpUrl, summarise } from './open-graph.js';
import providers from './oembed-providers.json' with { type: 'json' };

/** One oEmbed endpoint and the URL schemes (globs with `*`) it serves. */
export interface OEmbedEndpoint {
  readonly schemes: readonly string[];
  /** The endpoint URL; `{format}` is replaced with `json`. */
  readonly url: string;
}

/** A provider, in the shape of oembed.com's `providers.json` (so entries can be copied from it). */
export interface OEmbedProvider {
  readonly provider_name: string;
  readonly provider_url?: string;
  readonly endpoints: readonly OEmbedEndpoint[];
}

/**
 * The bundled, curated provider list: YouTube, Vimeo, Twitter/X, Reddit,
 * Spotify, SoundCloud, TikTok, Flickr, Bluesky, GIPHY.
 */
export const DEFAULT_OEMBED_PROVIDERS: readonly OEmbedProvider[] = Object.freeze(providers as OEmbedProvider[]);

/** Finds the oEmbed request URL for a page URL, or undefined when no provider serves it. */
export type OEmbedMatcher = (url: string) => string | undefined;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * A scheme glob as an anchored regular expression. In the host a `*`
 * matches within the authority only (`[^/?#@:]*`), so
 * `https://*.youtube.com/*` cannot match `https://evil.example/?.youtube.com/`;
 * in the path and query it matches anything. `http` and `https` match each other.
 */
export function oEmbedSchemeToRegExp(scheme: string): RegExp | undefined {
  const match = /^(https?):\/\/([^/]+)(\/.*)?$/i.exec(scheme.trim());
  if (match === null) return undefined;
  const host = match[2]!.split('*').map(escapeRegExp).join('[^/?#@:]*');
  const path = (match[3] ?? '/').split('*').map(escapeRegExp).join('.*');
  return new RegExp(`^https?://${host}${path}$`, 'i');
}

/**
 * Compiles a provider list, reporting every malformed entry in `problems`
 * (the previewer turns them into a `PreviewConfigError`).
 */
export function compileOEmbedProviders(
  list: readonly OEmbedProvider[],
  problems: string[] = [],
): OEmbedMatcher {
  const compiled: { pattern: RegExp; endpoint: string }[] = [];
  list.forEach((provider, index) => {
    const name = typeof provider?.provider_name === 'string' ? provider.provider_name : `#${index}`;
    if (!Array.isArray(provider?.endpoints)) {
      problems.push(`oEmbed provider ${name}: endpoints must be an array`);
      return;
    }
    for (const endpoint of provider.endpoints) {
      const endpointUrl = resolveHttpUrl(typeof endpoint?.url === 'string' ? endpoint.url.replace('{format}', 'json') : undefined, 'http://invalid/');
      if (endpointUrl === undefined || !/^https?:\/\//i.test(endpoint.url)) {
        problems.push(`oEmbed provider ${name}: endpoint url ${JSON.stringify(endpoint?.url)} is not an absolute http(s) URL`);
        continue;
      }
      for (const scheme of Array.isArray(endpoint.schemes) ? endpoint.schemes : [undefined]) {
        const pattern = typeof scheme === 'string' ? oEmbedSchemeToRegExp(scheme) : undefined;
        if (pattern === undefined) {
          problems.push(`oEmbed provider ${name}: scheme ${JSON.stringify(scheme)} is not an http(s) URL glob`);
          continue;
        }
        compiled.push({ pattern, endpoint: endpointUrl });
      }
    }
  });
  return (url: string): string | undefined => {
    const hit = compiled.find((entry) => entry.pattern.test(url));
    return hit === undefined ? undefined : oEmbedRequestUrl(hit.endpoint, url);
  };
}

/** The request URL for `pageUrl` at `endpoint`: `?url=…&format=json` added to its query. */
export function oEmbedRequestUrl(endpoint: string, pageUrl: string): string {
  const url = new URL(endpoint);
  url.searchParams.set('url', pageUrl);
  url.searchParams.set('format', 'json');
  return url.href;
}

/** Elements whose edges separate words. */
const BLOCK_ELEMENTS: ReadonlySet<string> = new Set(['br', 'p', 'div', 'blockquote', 'li', 'h1', 'h2', 'h3', 'td']);

/** Visible text of an oEmbed `html` snippet (rich and video types carry the content there). */
function textOfHtml(html: string): string {
  let text = '';
  let skip = 0;
  const parser = new Parser(
    {
      onopentag: (name) => {
        if (name === 'script' || name === 'style') skip += 1;
        else if (BLOCK_ELEMENTS.has(name)) text += ' ';
      },
      onclosetag: (name) => {
        if ((name === 'script' || name === 'style') && skip > 0) skip -= 1;
        else if (BLOCK_ELEMENTS.has(name)) text += ' ';
      },
      ontext: (data) => {
        if (skip === 0 && text.length < 4 * MAX_DESCRIPTION_CHARS) text += data;
      },
    },
    { decodeEntities: true },
  );
  parser.end(html);
  return text.replace(/\s+/g, ' ').trim();
}

function stringField(json: Record<string, unknown>, key: string): string | undefined {
  const value = json[key];
  if (typeof value !== 'string') return undefined;
  const trimmed = value.replace(/\s+/g, ' ').trim();
  return trimmed === '' ? undefined : trimmed.slice(0, 1000);
}

/** What an oEmbed response gives a preview. */
export interface OEmbedPreviewSource {
  readonly openGraph: Record<string, string>;
  /** Absolute http(s) URL of the image (`url` of a photo, else `thumbnail_url`). */
  readonly imageUrl: string | undefined;
}

/**
 * OpenGraph properties from an oEmbed response: `title` → `og:title`,
 * `provider_name` → `og:site_name`, the text of `html` (rich, video) →
 * `og:description` (else `author_name`), a photo's `url` or the
 * `thumbnail_url` → the image. Returns undefined when `json` is not an
 * oEmbed object.
 *
 * @param responseUrl the oEmbed endpoint URL, to resolve relative image URLs.
 */
export function previewFromOEmbed(json: unknown, responseUrl: string): OEmbedPreviewSource | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const record = json as Record<string, unknown>;
  const type = stringField(record, 'type');
  const openGraph: Record<string, string> = {};
  const title = stringField(record, 'title');
  if (title !== undefined) openGraph['og:title'] = title;
  const site = stringField(record, 'provider_name');
  if (site !== undefined) openGraph['og:site_name'] = site;
  const html = typeof record['html'] === 'string' ? textOfHtml(record['html']) : '';
  const description = html !== '' ? html : stringField(record, 'author_name');
  if (description !== undefined) openGraph['og:description'] = summarise(description);
  if (type === 'video') openGraph['og:type'] = 'video.other';
  const imageHref = type === 'photo' ? (stringField(record, 'url') ?? stringField(record, 'thumbnail_url')) : stringField(record, 'thumbnail_url');
  return { openGraph, imageUrl: resolveHttpUrl(imageHref, responseUrl) };
}
