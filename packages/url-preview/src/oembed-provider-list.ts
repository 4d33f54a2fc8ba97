/**
 * The oEmbed provider list (https://oembed.com: URL schemes mapped to
 * endpoints) and its compilation. Kept apart from the response mapping in
 * `oembed.ts`, which needs an HTML parser, so that checking options
 * (`@hsmedia/url-preview/config`) loads no parser.
 */
import { resolveHttpUrl } from './http-url.js';
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
