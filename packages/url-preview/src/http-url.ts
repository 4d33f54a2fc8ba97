/** URL resolution shared by the HTML and oEmbed extraction and the provider list (no HTML parser). */

/** `href` resolved against `base` when the result is an http(s) URL, else undefined. */
export function resolveHttpUrl(href: string | undefined, base: string): string | undefined {
  if (href === undefined || href.trim() === '') return undefined;
  try {
    const url = new URL(href.trim(), base);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    url.hash = '';
    return url.href;
  } catch {
    return undefined;
  }
}
