/**
 * A streaming collector of the HTML metadata a preview needs, on
 * htmlparser2's SAX-style parser (no DOM). It reads the `<head>` (meta,
 * title, base, link), and goes into the body only as far as it must to
 * find fallbacks (first suitable image, first paragraphs); `done` turns
 * true as soon as nothing more is needed, so the caller can stop reading.
 */
import { Parser } from 'htmlparser2';

/** An `<img>` seen in the body, as candidates for the fallback image. */
export interface HtmlImage {
  readonly src: string;
  /** Declared `width`/`height` attributes, when numeric. */
  readonly width: number | undefined;
  readonly height: number | undefined;
}

/** Everything {@link HtmlMetadataCollector} gathered. Values are raw page text (entities decoded). */
export interface HtmlMetadata {
  /** `<meta property|name content>` by lower-cased key, first occurrence wins. */
  readonly meta: ReadonlyMap<string, string>;
  readonly title: string | undefined;
  /** `<base href>`, for resolving relative URLs. */
  readonly baseHref: string | undefined;
  /** `<link rel="alternate" type="application/json+oembed" href>` (oEmbed discovery). */
  readonly oEmbedHref: string | undefined;
  /** `<link rel="image_src" href>`. */
  readonly imageSrcHref: string | undefined;
  /** The first few body images with a usable `src`. */
  readonly images: readonly HtmlImage[];
  /** Text of the first body paragraphs, whitespace collapsed, capped. */
  readonly paragraphText: string;
}

const MAX_META_ENTRIES = 200;
const MAX_VALUE_CHARS = 4096;
const MAX_IMAGES = 20;
/** Enough paragraph text for a description (which is cut to 500 characters later). */
const PARAGRAPH_CHARS = 600;

/** Elements whose start means the `<head>` is over even without `</head>` or `<body>`. */
const BODY_ELEMENTS: ReadonlySet<string> = new Set([
  'body', 'p', 'div', 'img', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'main', 'article', 'section', 'header', 'footer',
  'nav', 'aside', 'ul', 'ol', 'table', 'form', 'span', 'a', 'figure', 'picture', 'video', 'iframe', 'pre', 'blockquote',
]);
/** Body elements whose text is not content (menus, scripts). */
const SKIP_TEXT_ELEMENTS: ReadonlySet<string> = new Set([
  'script', 'style', 'noscript', 'template', 'nav', 'header', 'footer', 'aside', 'form', 'svg', 'button', 'select',
]);

/** Meta keys that give a preview its image, in order of preference. */
export const IMAGE_META_KEYS: readonly string[] = Object.freeze([
  'og:image',
  'og:image:url',
  'og:image:secure_url',
  'twitter:image',
  'twitter:image:src',
]);
/** Meta keys that give a preview its description, in order of preference. */
export const DESCRIPTION_META_KEYS: readonly string[] = Object.freeze(['og:description', 'twitter:description', 'description']);

function cap(text: string, max: number): string {
  return text.length > max ? text.slice(0, max) : text;
}

function relTokens(rel: string | undefined): string[] {
  return (rel ?? '').toLowerCase().split(/\s+/).filter((token) => token !== '');
}

function dimension(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d{1,6}\s*(px)?\s*$/i.test(value)) return undefined;
  return Number.parseInt(value, 10);
}

/**
 * Feed it decoded text with {@link write}, check {@link done} after each
 * chunk, then call {@link end} and read {@link result}.
 *
 * @example
 * const collector = new HtmlMetadataCollector();
 * for await (const text of decodedChunks) { collector.write(text); if (collector.done) break; }
 * const meta = collector.end();
 */
export class HtmlMetadataCollector {
  readonly #meta = new Map<string, string>();
  #title: string | undefined;
  #titleText: string | undefined;
  #baseHref: string | undefined;
  #oEmbedHref: string | undefined;
  #imageSrcHref: string | undefined;
  readonly #images: HtmlImage[] = [];
  #paragraphText = '';
  #paragraphDepth = 0;
  #skipDepth = 0;
  #inHead = false;
  #bodyStarted = false;
  #ended = false;
  readonly #parser: Parser;

  constructor() {
    this.#parser = new Parser(
      {
        onopentag: (name, attribs) => this.#open(name, attribs),
        onclosetag: (name) => this.#close(name),
        ontext: (text) => this.#text(text),
      },
      { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
    );
  }

  #open(name: string, attribs: Record<string, string>): void {
    if (name === 'head' && !this.#bodyStarted) this.#inHead = true;
    if (!this.#bodyStarted && (name === 'body' || (!this.#inHead && BODY_ELEMENTS.has(name)))) {
      this.#bodyStarted = true;
      this.#inHead = false;
    }
    switch (name) {
      case 'meta': {
        const key = (attribs['property'] ?? attribs['name'] ?? attribs['itemprop'])?.trim().toLowerCase();
        const content = attribs['content'];
        if (key !== undefined && key !== '' && content !== undefined && !this.#meta.has(key) && this.#meta.size < MAX_META_ENTRIES) {
          this.#meta.set(key, cap(content, MAX_VALUE_CHARS));
        }
        return;
      }
      case 'title':
        if (this.#title === undefined && this.#titleText === undefined && this.#skipDepth === 0) this.#titleText = '';
        return;
      case 'base':
        if (this.#baseHref === undefined && attribs['href'] !== undefined) this.#baseHref = attribs['href'].trim();
        return;
      case 'link': {
        const rel = relTokens(attribs['rel']);
        const href = attribs['href']?.trim();
        if (href === undefined || href === '') return;
        const type = attribs['type']?.trim().toLowerCase();
        if (this.#oEmbedHref === undefined && rel.includes('alternate') && type === 'application/json+oembed') {
          this.#oEmbedHref = href;
        }
        if (this.#imageSrcHref === undefined && rel.includes('image_src')) this.#imageSrcHref = href;
        return;
      }
      case 'img': {
        const src = attribs['src']?.trim();
        if (this.#bodyStarted && this.#skipDepth === 0 && src !== undefined && src !== '' && !src.startsWith('data:') && this.#images.length < MAX_IMAGES) {
          const width = dimension(attribs['width']);
          const height = dimension(attribs['height']);
          // Icons, spacers and tracking pixels make poor previews (Synapse skips ≤ 10 px too).
          if ((width === undefined || width > 10) && (height === undefined || height > 10)) this.#images.push({ src, width, height });
        }
        return;
      }
      case 'p':
        if (this.#bodyStarted) this.#paragraphDepth += 1;
        return;
      default:
        if (this.#bodyStarted && SKIP_TEXT_ELEMENTS.has(name)) this.#skipDepth += 1;
    }
  }

  #close(name: string): void {
    if (name === 'head' && this.#inHead) {
      this.#inHead = false;
      this.#bodyStarted = true;
    }
    if (name === 'title' && this.#titleText !== undefined) {
      const title = this.#titleText.replace(/\s+/g, ' ').trim();
      this.#titleText = undefined;
      if (title !== '') this.#title = cap(title, MAX_VALUE_CHARS);
    } else if (name === 'p' && this.#paragraphDepth > 0) {
      this.#paragraphDepth -= 1;
      if (this.#paragraphText !== '' && !this.#paragraphText.endsWith(' ')) this.#paragraphText += ' ';
    } else if (this.#bodyStarted && SKIP_TEXT_ELEMENTS.has(name) && this.#skipDepth > 0) {
      this.#skipDepth -= 1;
    }
  }

  #text(text: string): void {
    if (this.#titleText !== undefined) {
      if (this.#titleText.length < MAX_VALUE_CHARS) this.#titleText += text;
      return;
    }
    if (this.#paragraphDepth > 0 && this.#skipDepth === 0 && this.#paragraphText.length < PARAGRAPH_CHARS) {
      this.#paragraphText = cap((this.#paragraphText + text).replace(/\s+/g, ' ').trimStart(), PARAGRAPH_CHARS + 1);
    }
  }

  #hasAny(keys: readonly string[]): boolean {
    return keys.some((key) => (this.#meta.get(key)?.trim() ?? '') !== '');
  }

  /**
   * True once the head is over and every preview field has been found, in
   * the head or in the body's fallbacks: reading on cannot change the result.
   */
  get done(): boolean {
    if (!this.#bodyStarted) return false;
    const haveImage = this.#hasAny(IMAGE_META_KEYS) || this.#imageSrcHref !== undefined || this.#images.length > 0;
    const haveDescription = this.#hasAny(DESCRIPTION_META_KEYS) || this.#paragraphText.length >= PARAGRAPH_CHARS;
    return haveImage && haveDescription;
  }

  /** Parses more decoded text. */
  write(text: string): void {
    if (!this.#ended) this.#parser.write(text);
  }

  /** Flushes the parser (an unterminated `<title>` still counts) and returns what was found. */
  end(): HtmlMetadata {
    if (!this.#ended) {
      this.#ended = true;
      this.#parser.end();
      if (this.#titleText !== undefined) this.#close('title');
    }
    return {
      meta: this.#meta,
      title: this.#title,
      baseHref: this.#baseHref,
      oEmbedHref: this.#oEmbedHref,
      imageSrcHref: this.#imageSrcHref,
      images: this.#images,
      paragraphText: this.#paragraphText.trim(),
    };
  }
}

/** Parses a whole HTML string (for tests and small documents). */
export function parseHtmlMetadata(html: string): HtmlMetadata {
  const collector = new HtmlMetadataCollector();
  collector.write(html);
  return collector.end();
}
