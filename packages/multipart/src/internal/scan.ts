/**
 * Delimiter search for RFC 2046 §5.1.1 bodies, on Buffers, without a
 * byte-by-byte JS loop over the payload: `Buffer.indexOf` finds candidate
 * delimiters, JS only looks at the few bytes around a candidate.
 *
 * The pattern searched is `LF "--" boundary`. A delimiter is that pattern
 * (with the CR before it when there is one, so both CRLF and bare-LF bodies
 * work) followed by either `--` (close delimiter) or optional transport
 * padding (spaces, tabs) and a line end. `LF--boundary` followed by anything
 * else is not a delimiter and stays in the payload.
 */

export const CR = 0x0d;
export const LF = 0x0a;
const DASH = 0x2d;
const SP = 0x20;
const HT = 0x09;

/** `part`: another part follows; `close`: `--boundary--`; `end`: `--boundary` then end of body. */
export type DelimiterKind = 'part' | 'close' | 'end';

/** Outcome of {@link scanBody}. */
export type ScanResult =
  | { readonly found: true; readonly contentEnd: number; readonly kind: DelimiterKind; readonly next: number }
  | { readonly found: false; readonly safeEnd: number };

/** The search needles for one boundary. */
export interface Needles {
  /** `LF--boundary` */
  readonly pattern: Buffer;
  /** `--boundary` (a delimiter may open the body with no line break before it) */
  readonly dashBoundary: Buffer;
}

/** Builds the {@link Needles} for a boundary. */
export function needles(boundary: string): Needles {
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  return { pattern: Buffer.concat([Buffer.from([LF]), dashBoundary]), dashBoundary };
}

// Result of looking at the bytes after `--boundary`: the kind and where the
// next part (or epilogue) starts, `NEED_MORE` or `NOT_DELIMITER`.
const NEED_MORE = -1;
const NOT_DELIMITER = -2;
let classifiedKind: DelimiterKind = 'part';

function classify(buf: Buffer, p: number, eof: boolean): number {
  const len = buf.length;
  if (p >= len) {
    if (!eof) return NEED_MORE;
    classifiedKind = 'end';
    return len;
  }
  if (buf[p] === DASH) {
    if (p + 1 >= len) return eof ? NOT_DELIMITER : NEED_MORE;
    if (buf[p + 1] !== DASH) return NOT_DELIMITER;
    classifiedKind = 'close';
    return p + 2;
  }
  let k = p;
  while (k < len && (buf[k] === SP || buf[k] === HT)) k++;
  if (k >= len) {
    if (!eof) return NEED_MORE;
    classifiedKind = 'end';
    return len;
  }
  const c = buf[k];
  if (c === LF) {
    classifiedKind = 'part';
    return k + 1;
  }
  if (c === CR) {
    if (k + 1 >= len) {
      if (!eof) return NEED_MORE;
      classifiedKind = 'end';
      return len;
    }
    if (buf[k + 1] === LF) {
      classifiedKind = 'part';
      return k + 2;
    }
  }
  return NOT_DELIMITER;
}

/**
 * Scans `buf[from..]` for the delimiter that ends a part body (or the
 * preamble). `atStart` means `from` is the very start of the body, where a
 * delimiter may appear without a line break before it (RFC 2046 allows it
 * for the first delimiter; an empty part body written as `...CRLF CRLF
 * --boundary` needs it too). `eof` means no more bytes will come.
 *
 * Returns either the delimiter (payload is `buf[from..contentEnd)`, parsing
 * resumes at `next`) or, when there is none yet, `safeEnd`: the payload
 * certainly extends to `safeEnd`, and `buf[safeEnd..]` (a possible start of
 * a delimiter: at most the pattern length plus padding) must be kept until
 * more bytes arrive.
 */
export function scanBody(buf: Buffer, from: number, n: Needles, atStart: boolean, eof: boolean): ScanResult {
  const len = buf.length;
  const { pattern, dashBoundary } = n;
  if (atStart) {
    const avail = len - from;
    if (avail < dashBoundary.length) {
      if (!eof && dashBoundary.compare(buf, from, len, 0, avail) === 0) return { found: false, safeEnd: from };
    } else if (dashBoundary.compare(buf, from, from + dashBoundary.length, 0, dashBoundary.length) === 0) {
      const next = classify(buf, from + dashBoundary.length, eof);
      if (next === NEED_MORE) return { found: false, safeEnd: from };
      if (next !== NOT_DELIMITER) return { found: true, contentEnd: from, kind: classifiedKind, next };
    }
  }
  let i = from;
  for (;;) {
    const j = buf.indexOf(pattern, i);
    if (j === -1) break;
    const start = j > from && buf[j - 1] === CR ? j - 1 : j;
    const next = classify(buf, j + pattern.length, eof);
    if (next === NEED_MORE) return { found: false, safeEnd: start };
    if (next !== NOT_DELIMITER) return { found: true, contentEnd: start, kind: classifiedKind, next };
    i = j + 1;
  }
  if (eof) return { found: false, safeEnd: len };
  // Hold back a tail that could be the start of the pattern (and its CR).
  let safeEnd = len;
  for (let k = Math.max(i, len - pattern.length + 1); k < len; k++) {
    if (buf[k] === LF && pattern.compare(buf, k, len, 0, len - k) === 0) {
      safeEnd = k;
      break;
    }
  }
  if (safeEnd > from && buf[safeEnd - 1] === CR) safeEnd--;
  return { found: false, safeEnd };
}
