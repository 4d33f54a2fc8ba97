/**
 * Content-Type and Content-Disposition rules for served media
 * (spec v1.12, MSC2701/MSC2702; https://spec.matrix.org/v1.12/client-server-api/#content-repository).
 */

/** Types the spec allows to be served `inline` (compared on type/subtype only). */
export const INLINE_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

/** The type used when none is known (spec: uploads without Content-Type). */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** `type/subtype` of a Content-Type value, lower-cased, without parameters. */
export function essenceOf(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** True when media of this type may be served with `Content-Disposition: inline`. */
export function isInlineContentType(contentType: string): boolean {
  return INLINE_CONTENT_TYPES.has(essenceOf(contentType));
}

// RFC 7230 token characters.
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Printable ASCII without control characters; quoted-string can carry these with \-escapes.
const PRINTABLE_ASCII_RE = /^[\x20-\x7e]*$/;

/** RFC 5987 `attr-char` percent-encoding of UTF-8 bytes. */
function encodeRfc5987(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The `filename` parameter(s) for a Content-Disposition header: a token when
 * it is one, a quoted string for other printable ASCII, and `filename*=utf-8''…`
 * (RFC 6266 / RFC 5987) for anything else, so no name can inject header syntax.
 */
export function dispositionFilenameParam(filename: string): string {
  if (TOKEN_RE.test(filename)) return `filename=${filename}`;
  if (PRINTABLE_ASCII_RE.test(filename)) return `filename="${filename.replace(/[\\"]/g, '\\$&')}"`;
  return `filename*=utf-8''${encodeRfc5987(filename)}`;
}

/**
 * The Content-Disposition for a download: `inline` for the spec's safe list,
 * `attachment` otherwise; with the filename when one is known.
 * Thumbnails pass `forceInline` (the spec requires `inline` for them).
 */
export function contentDispositionFor(
  contentType: string,
  filename: string | null | undefined,
  forceInline = false,
): string {
  const type = forceInline || isInlineContentType(contentType) ? 'inline' : 'attachment';
  return filename ? `${type}; ${dispositionFilenameParam(filename)}` : type;
}

/** A parsed Content-Disposition header. */
export interface ParsedContentDisposition {
  readonly type: string;
  readonly filename: string | null;
}

/**
 * Parses a Content-Disposition header as remote servers send it: token,
 * quoted and `filename*` (RFC 5987, preferred when present) forms.
 * Returns null when the header is malformed.
 */
export function parseContentDisposition(header: string): ParsedContentDisposition | null {
  let i = 0;
  const n = header.length;
  const skipWs = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  skipWs();
  const type = readToken().toLowerCase();
  if (!type) return null;
  let plain: string | null = null;
  let extended: string | null = null;
  for (;;) {
    skipWs();
    if (i >= n) break;
    if (header[i] !== ';') return null;
    i++;
    skipWs();
    if (i >= n) break; // tolerate a trailing ';'
    const name = readToken().toLowerCase();
    if (!name) return null;
    skipWs();
    if (header[i] !== '=') return null;
    i++;
    skipWs();
    let value: string;
    if (header[i] === '"') {
      i++;
      let out = '';
      let closed = false;
      while (i < n) {
        const c = header[i]!;
        if (c === '\\' && i + 1 < n) {
          out += header[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          out += c;
          i++;
        }
      }
      if (!closed) return null;
      value = out;
    } else {
      const start = i;
      while (i < n && header[i] !== ';' && header[i] !== ' ' && header[i] !== '\t') i++;
      value = header.slice(start, i);
    }
    if (name === 'filename') plain = value;
    else if (name === 'filename*') {
      const m = /^([A-Za-z0-9!#$%&+^_`{}~-]+)'[A-Za-z0-9-]*'(.*)$/.exec(value);
      if (m) {
        const charset = m[1]!.toLowerCase();
        try {
          if (charset === 'utf-8') extended = decodeURIComponent(m[2]!);
          else if (charset === 'iso-8859-1')
            extended = unescape(m[2]!); // latin-1 percent-decoding, per RFC 5987
        } catch {
          // A bad percent-escape in filename* falls back to the plain filename.
        }
      }
    }
  }
  return { type, filename: extended ?? plain };
}

/**
 * Validates and normalises an upload Content-Type: missing or blank means
 * `application/octet-stream`; anything with control characters or absurd
 * length is refused (returns null) because it would be echoed as a header.
 */
export function normaliseUploadContentType(value: string | undefined): string | null {
  if (value === undefined) return DEFAULT_CONTENT_TYPE;
  const trimmed = value.trim();
  if (trimmed === '') return DEFAULT_CONTENT_TYPE;
  if (trimmed.length > 255 || !/^[\x20-\x7e]+$/.test(trimmed)) return null;
  return trimmed;
}

/**
 * Validates an upload filename: refused (null) when it has control characters
 * or is longer than 255 UTF-8-agnostic characters; empty means "none".
 */
export function normaliseUploadFilename(value: string | undefined): string | null | undefined {
  if (value === undefined || value === '') return undefined;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (value.length > 255 || /[\x00-\x1f\x7f]/.test(value)) return null;
  return value;
}
