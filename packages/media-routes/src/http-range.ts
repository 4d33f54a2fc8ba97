import { ErrCode, MatrixError } from '@hsmedia/errors';
import type { Context } from 'koa';

/** The outcome of reading a `Range` header against a representation of `size` bytes. */
export type RangeDecision =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

// Shared answers: deciding on a request allocates nothing unless it names a range.
const FULL: { readonly kind: 'full' } = Object.freeze({ kind: 'full' } as const);
const UNSATISFIABLE: { readonly kind: 'unsatisfiable' } = Object.freeze({ kind: 'unsatisfiable' } as const);

const SINGLE_RANGE_RE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

/**
 * Decides how to answer a `Range` header (RFC 9110 §14.2): one satisfiable
 * byte range → 206; a range wholly past the end → 416; anything else
 * (absent, malformed, several ranges, another unit) → the full 200, which
 * RFC 9110 allows a server to send instead of a multipart/byteranges body.
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined || header === '') return FULL;
  const match = SINGLE_RANGE_RE.exec(header);
  if (!match) return FULL;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return FULL;
  // Digits only, but possibly absurdly long: Number() saturates, which is fine for comparisons.
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return FULL; // invalid range-spec: ignore the header
  if (start >= size) return UNSATISFIABLE;
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

/** What {@link answerConditional} needs of the media: its answer may be that nobody reads it. */
interface Discardable {
  discard(): void;
}

/**
 * The one conditional-request step of every stored-media answer (client
 * downloads, thumbnails and the federation multipart answer): a matching
 * `If-None-Match` is a 304 (RFC 9110 §13.1.2), then, when `ranges` and the
 * request is a GET, `If-Range` (§13.1.5) and `Range` (§14.2) pick the bytes.
 * Returns undefined once the 304 is set (`media` discarded), throws 416 with
 * `Content-Range: bytes *\/size` for an unsatisfiable range (`media`
 * discarded), else the part to send. The validators are headers already set.
 */
export function answerConditional(
  ctx: Context,
  media: Discardable,
  etag: string,
  size: number,
  ranges: boolean,
): Exclude<RangeDecision, { kind: 'unsatisfiable' }> | undefined {
  const { headers } = ctx.req;
  if (ifNoneMatchMatches(headers['if-none-match'], etag)) {
    ctx.status = 304;
    media.discard();
    return undefined;
  }
  const header = headers.range;
  if (!ranges || header === undefined || ctx.method !== 'GET' || !ifRangeAllows(ctx.get('If-Range') || undefined, etag)) {
    return FULL;
  }
  const range = decideRange(header, size);
  if (range.kind === 'unsatisfiable') {
    media.discard();
    throw new MatrixError(ErrCode.UNKNOWN, 'Requested range not satisfiable', {
      httpStatus: 416,
      headers: { 'Content-Range': `bytes */${size}` },
    });
  }
  return range;
}
