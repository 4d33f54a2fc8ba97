/**
 * oEmbed (https://oembed.com): a provider list that maps URL schemes to
 * endpoints, and the mapping of an oEmbed JSON response to OpenGraph
 * properties. Pure functions; the previewer does the fetching.
 */
import { Parser } from 'htmlparser2';
import { MAX_DESCRIPTION_CHARS, resolveHttpUrl, summarise } from './open-graph.js';

export {
  DEFAULT_OEMBED_PROVIDERS,
  compileOEmbedProviders,
  oEmbedRequestUrl,
  oEmbedSchemeToRegExp,
  type OEmbedEndpoint,
  type OEmbedMatcher,
  type OEmbedProvider,
} from './oembed-provider-list.js';

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
