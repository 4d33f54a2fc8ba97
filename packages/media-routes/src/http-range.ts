/** The outcome of reading a `Range` header against a representation of `size` bytes. */
export type RangeDecision =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

const SINGLE_RANGE_RE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

/**
 * Decides how to answer a `Range` header (RFC 9110 §14.2): one satisfiable
 * byte range → 206; a range wholly past the end → 416; anything else
 * (absent, malformed, several ranges, another unit) → the full 200, which
 * RFC 9110 allows a server to send instead of a multipart/byteranges body.
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined || header === '') return { kind: 'full' };
  const match = SINGLE_RANGE_RE.exec(header);
  if (!match) return { kind: 'full' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'full' };
  // Digits only, but possibly absurdly long: Number() saturates, which is fine for comparisons.
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return { kind: 'full' }; // invalid range-spec: ignore the header
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/**
 * True when an `If-None-Match` header matches `etag` (weak comparison,
 * RFC 9110 §13.1.2: `W/` prefixes are ignored; `*` matches anything).
 */
export function ifNoneMatchMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined || header === '') return false;
  if (header.trim() === '*') return true;
  const bare = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const candidate of header.split(',')) {
    const tag = candidate.trim();
    if ((tag.startsWith('W/') ? tag.slice(2) : tag) === bare) return true;
  }
  return false;
}

/**
 * True when an `If-Range` header allows a partial response: absent, or the
 * strong entity tag itself (RFC 9110 §13.1.5; a date or a weak tag never matches ours).
 */
export function ifRangeAllows(header: string | undefined, etag: string): boolean {
  if (header === undefined || header === '') return true;
  return header.trim() === etag;
}
