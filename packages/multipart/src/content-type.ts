import { MultipartParseError } from './errors.js';

// RFC 9110 §5.6.2 token characters.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Boundaries we *write* go out unquoted (Synapse's multipart reader splits on
// "boundary=" and keeps any quotes), so they must be both RFC 2046 bchars
// and an RFC 9110 token.
const WRITABLE_BOUNDARY = /^[0-9A-Za-z'+_\-.]{1,70}$/;
// Longest boundary we accept when reading. RFC 2046 §5.1.1 says 70; a little
// slack costs nothing and bounds the delimiter search pattern.
const MAX_READ_BOUNDARY = 200;

/**
 * Extracts the boundary from a `multipart/*` `Content-Type` header value
 * (RFC 2046 §5.1.1). Tolerant: quoted or unquoted value, any
 * parameter order, other parameters, any case in names. Throws
 * {@link MultipartParseError} when the type is not multipart or the boundary
 * is missing, duplicated, empty, too long or not printable ASCII.
 */
export function parseBoundary(contentType: string): string {
  const semi = contentType.indexOf(';');
  const mediaType = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  const slash = mediaType.indexOf('/');
  if (slash === -1 || mediaType.slice(0, slash) !== 'multipart' || !TOKEN.test(mediaType.slice(slash + 1))) {
    throw new MultipartParseError(`not a multipart content type: ${JSON.stringify(contentType.slice(0, 100))}`);
  }
  let boundary: string | undefined;
  let i = semi === -1 ? contentType.length : semi;
  const s = contentType;
  while (i < s.length) {
    // here s[i] === ';'
    i++;
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break; // a trailing ';' is harmless
    if (s[i] === ';') continue;
    const eq = s.indexOf('=', i);
    if (eq === -1) throw new MultipartParseError('malformed Content-Type parameter');
    const name = s.slice(i, eq).trim().toLowerCase();
    if (!TOKEN.test(name)) throw new MultipartParseError('malformed Content-Type parameter name');
    i = eq + 1;
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
    let value = '';
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const ch = s[i]!;
        if (ch === '\\' && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else if (ch === '"') {
          closed = true;
          i++;
          break;
        } else {
          value += ch;
          i++;
        }
      }
      if (!closed) throw new MultipartParseError('unterminated quoted Content-Type parameter');
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
      if (i < s.length && s[i] !== ';') throw new MultipartParseError('garbage after quoted parameter');
    } else {
      const end = s.indexOf(';', i);
      value = (end === -1 ? s.slice(i) : s.slice(i, end)).trim();
      i = end === -1 ? s.length : end;
    }
    if (name === 'boundary') {
      if (boundary !== undefined) throw new MultipartParseError('duplicate boundary parameter');
      boundary = value;
    }
  }
  if (boundary === undefined) throw new MultipartParseError('Content-Type has no boundary parameter');
  if (boundary.length === 0 || boundary.length > MAX_READ_BOUNDARY || !/^[\x20-\x7e]+$/.test(boundary)) {
    throw new MultipartParseError('invalid multipart boundary');
  }
  return boundary;
}

/**
 * True when `boundary` may be written unquoted as the last `Content-Type`
 * parameter: 1–70 characters from `[0-9A-Za-z'+_.-]` (RFC 2046 bchars that
 * are also RFC 9110 token characters).
 */
export function isWritableBoundary(boundary: string): boolean {
  return WRITABLE_BOUNDARY.test(boundary);
}
