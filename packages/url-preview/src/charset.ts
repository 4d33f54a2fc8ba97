/**
 * Character encoding of an HTML page, in the order the WHATWG HTML
 * "determining the character encoding" algorithm uses: byte order mark,
 * then the transport layer (`Content-Type; charset=`), then a prescan of
 * the first bytes for `<meta charset>` / `<meta http-equiv content>` (and
 * an XML declaration), then UTF-8.
 */

/** How many leading bytes {@link sniffHtmlEncoding} needs for the meta prescan. */
export const CHARSET_PRESCAN_BYTES = 2048;

/** The encoding name `TextDecoder` knows for `label`, or undefined when it knows none. */
export function encodingForLabel(label: string): string | undefined {
  try {
    return new TextDecoder(label.trim()).encoding;
  } catch {
    return undefined;
  }
}

function fromBom(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'utf-8';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
  return undefined;
}

/** The `charset` parameter of a `Content-Type` value, if any. */
export function charsetOfContentType(contentType: string | null | undefined): string | undefined {
  if (contentType === null || contentType === undefined) return undefined;
  const match = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType);
  const value = match?.[1] ?? match?.[2];
  return value === undefined || value === '' ? undefined : value;
}

function fromPrescan(bytes: Uint8Array): string | undefined {
  // latin1 maps every byte to one char, so ASCII markup survives whatever the real encoding is.
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, CHARSET_PRESCAN_BYTES)).toString(
    'latin1',
  );
  for (const tag of text.matchAll(/<meta\b[^>]*>/gi)) {
    const charset = /\bcharset\s*=\s*["']?\s*([\w.:-]+)/i.exec(tag[0]);
    if (charset?.[1] !== undefined) return charset[1];
  }
  const xml = /^<\?xml[^>]*\bencoding\s*=\s*["']([\w.:-]+)["']/i.exec(text);
  return xml?.[1];
}

/**
 * The encoding to decode an HTML body with, as a `TextDecoder` name.
 * Unknown labels fall through to the next source. A `<meta>` that claims
 * UTF-16 means UTF-8 (the prescan read it as ASCII, so it cannot be UTF-16).
 *
 * @param prefix the first bytes of the body (up to {@link CHARSET_PRESCAN_BYTES}).
 * @param contentType the response's `Content-Type` header.
 * @example
 * sniffHtmlEncoding(bytes, 'text/html; charset=windows-1251'); // 'windows-1251'
 */
export function sniffHtmlEncoding(prefix: Uint8Array, contentType: string | null | undefined): string {
  const bom = fromBom(prefix);
  if (bom !== undefined) return bom;
  const header = charsetOfContentType(contentType);
  const fromHeader = header === undefined ? undefined : encodingForLabel(header);
  if (fromHeader !== undefined) return fromHeader;
  const meta = fromPrescan(prefix);
  const fromMeta = meta === undefined ? undefined : encodingForLabel(meta);
  if (fromMeta !== undefined) return fromMeta.startsWith('utf-16') ? 'utf-8' : fromMeta;
  return 'utf-8';
}
