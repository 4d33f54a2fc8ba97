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
  /** Boyer-Moore-Horspool bad-character shifts of `pattern`. */
  readonly shift: Uint8Array;
  /** `shift` with 0 for the pattern's last byte: a lane that meets it stays put until checked. */
  readonly park: Uint8Array;
}

/** Builds the {@link Needles} for a boundary. */
export function needles(boundary: string): Needles {
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  const pattern = Buffer.concat([Buffer.from([LF]), dashBoundary]);
  const m = pattern.length; // <= 203, fits a byte
  const shift = new Uint8Array(256).fill(m);
  for (let i = 0; i < m - 1; i++) shift[pattern[i]!] = m - 1 - i;
  const park = shift.slice();
  park[pattern[m - 1]!] = 0;
  return { pattern, dashBoundary, shift, park };
}

// Below this many bytes per lane, interleaving does not pay.
const MIN_LANE = 256;
// Candidate verifications tolerated before handing over to Buffer.indexOf
// (whose search stays fast on adversarial input; plain BMH may not).
const MAX_VERIFY = 128;

let verifies = 0;

function verify(h: Buffer, end: number, pat: Buffer): boolean {
  verifies++;
  for (let j = pat.length - 2, k = end - 1; j >= 0; j--, k--) if (h[k] !== pat[j]) return false;
  return true;
}

// Single-lane BMH over window ends [i, end); -1 none, -2 give up.
function lane(h: Buffer, i: number, end: number, pat: Buffer, shift: Uint8Array, last: number): number {
  while (i < end) {
    const x = h[i]!;
    if (x === last && verify(h, i, pat)) return i - pat.length + 1;
    if (verifies > MAX_VERIFY) return -2;
    i += shift[x]!;
  }
  return -1;
}

// Steps per block of the parked-lane search: long enough to amortise the
// checks after a block, short enough that a parked lane loses little.
const BLOCK = 16;

/**
 * First index of `n.pattern` in `h` at or after `from`, or -1: the same
 * result as `h.indexOf(n.pattern, from)`, two to three times as fast on
 * payload bytes. Boyer-Moore-Horspool in eight interleaved lanes, so the
 * CPU overlaps the dependent load → shift → load chains that bound a
 * single-lane search. The lanes run in blocks of steps that stay in bounds
 * by construction and compare nothing: the shift for the pattern's last
 * byte is 0 there (`n.park`), so a lane that meets it stays parked on it
 * until the block ends, when parked lanes are verified and moved on. Falls
 * back to `indexOf` on candidate-heavy input.
 */
export function findPattern(h: Buffer, from: number, n: Needles): number {
  const { pattern: pat, shift, park } = n;
  const m = pat.length;
  const len = h.length;
  const q = Math.floor((len - from) / 8);
  if (q < MIN_LANE + m) return h.indexOf(pat, from);
  const last = pat[m - 1]!;
  const lastShift = shift[last]!;
  verifies = 0;
  // Lane k reports matches starting in [from + k*q, from + (k+1)*q); the last lane runs to the end.
  let p0 = from + m - 1;
  let p1 = p0 + q;
  let p2 = p1 + q;
  let p3 = p2 + q;
  let p4 = p3 + q;
  let p5 = p4 + q;
  let p6 = p5 + q;
  let p7 = p6 + q;
  const e0 = p1;
  const e1 = p2;
  const e2 = p3;
  const e3 = p4;
  const e4 = p5;
  const e5 = p6;
  const e6 = p7;
  for (;;) {
    // A step moves a lane at most m bytes: this many keep every lane below its end.
    const room = Math.min(e0 - p0, e1 - p1, e2 - p2, e3 - p3, e4 - p4, e5 - p5, e6 - p6, len - p7);
    let k = Math.floor((room - 1) / m);
    if (k < 2) break;
    if (k > BLOCK) k = BLOCK;
    for (; k > 0; k--) {
      p0 += park[h[p0]!]!;
      p1 += park[h[p1]!]!;
      p2 += park[h[p2]!]!;
      p3 += park[h[p3]!]!;
      p4 += park[h[p4]!]!;
      p5 += park[h[p5]!]!;
      p6 += park[h[p6]!]!;
      p7 += park[h[p7]!]!;
    }
    // Parked lanes: a match ends the block loop (earlier lanes are finished
    // below, in order); otherwise move on as plain BMH would.
    if (h[p0] === last) {
      if (verify(h, p0, pat)) break;
      p0 += lastShift;
    }
    if (h[p1] === last) {
      if (verify(h, p1, pat)) break;
      p1 += lastShift;
    }
    if (h[p2] === last) {
      if (verify(h, p2, pat)) break;
      p2 += lastShift;
    }
    if (h[p3] === last) {
      if (verify(h, p3, pat)) break;
      p3 += lastShift;
    }
    if (h[p4] === last) {
      if (verify(h, p4, pat)) break;
      p4 += lastShift;
    }
    if (h[p5] === last) {
      if (verify(h, p5, pat)) break;
      p5 += lastShift;
    }
    if (h[p6] === last) {
      if (verify(h, p6, pat)) break;
      p6 += lastShift;
    }
    if (h[p7] === last) {
      if (verify(h, p7, pat)) break;
      p7 += lastShift;
    }
    if (verifies > MAX_VERIFY) return h.indexOf(pat, from);
  }
  // Finish the lanes in order: the first lane with a match has the first match.
  let r = lane(h, p0, e0, pat, shift, last);
  if (r === -1) r = lane(h, p1, e1, pat, shift, last);
  if (r === -1) r = lane(h, p2, e2, pat, shift, last);
  if (r === -1) r = lane(h, p3, e3, pat, shift, last);
  if (r === -1) r = lane(h, p4, e4, pat, shift, last);
  if (r === -1) r = lane(h, p5, e5, pat, shift, last);
  if (r === -1) r = lane(h, p6, e6, pat, shift, last);
  if (r === -1) r = lane(h, p7, len, pat, shift, last);
  return r === -2 ? h.indexOf(pat, from) : r;
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
 * Mutable outcome of {@link scanInto}, reused across calls so the per-chunk
 * hot path allocates nothing.
 */
export interface ScanOut {
  /** Whether a delimiter was found. */
  found: boolean;
  /** Found: where the payload ends (the delimiter's first byte). Not found: `safeEnd`, see {@link scanBody}. */
  end: number;
  /** Found: the delimiter's kind. */
  kind: DelimiterKind;
  /** Found: where parsing resumes after the delimiter. */
  next: number;
}

/** A fresh {@link ScanOut}. */
export function scanOut(): ScanOut {
  return { found: false, end: 0, kind: 'part', next: 0 };
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
  const out = scanOut();
  scanInto(buf, from, n, atStart, eof, out);
  return out.found
    ? { found: true, contentEnd: out.end, kind: out.kind, next: out.next }
    : { found: false, safeEnd: out.end };
}

function notFound(out: ScanOut, safeEnd: number): void {
  out.found = false;
  out.end = safeEnd;
}

function delimiter(out: ScanOut, contentEnd: number, next: number): void {
  out.found = true;
  out.end = contentEnd;
  out.kind = classifiedKind;
  out.next = next;
}

/** {@link scanBody} writing its outcome into `out` (no allocation). */
export function scanInto(buf: Buffer, from: number, n: Needles, atStart: boolean, eof: boolean, out: ScanOut): void {
  const len = buf.length;
  const { pattern, dashBoundary } = n;
  if (atStart) {
    const avail = len - from;
    if (avail < dashBoundary.length) {
      if (!eof && dashBoundary.compare(buf, from, len, 0, avail) === 0) return notFound(out, from);
    } else if (dashBoundary.compare(buf, from, from + dashBoundary.length, 0, dashBoundary.length) === 0) {
      const next = classify(buf, from + dashBoundary.length, eof);
      if (next === NEED_MORE) return notFound(out, from);
      if (next !== NOT_DELIMITER) return delimiter(out, from, next);
    }
  }
  let i = from;
  for (;;) {
    const j = findPattern(buf, i, n);
    if (j === -1) break;
    const start = j > from && buf[j - 1] === CR ? j - 1 : j;
    const next = classify(buf, j + pattern.length, eof);
    if (next === NEED_MORE) return notFound(out, start);
    if (next !== NOT_DELIMITER) return delimiter(out, start, next);
    i = j + 1;
  }
  if (eof) return notFound(out, len);
  // Hold back a tail only when it could be the start of the pattern (and
  // its CR): in payload bytes that is rare, so a chunk usually passes whole.
  let safeEnd = len;
  for (let k = Math.max(i, len - pattern.length + 1); k < len; k++) {
    if (buf[k] === LF && pattern.compare(buf, k, len, 0, len - k) === 0) {
      safeEnd = k;
      break;
    }
  }
  if (safeEnd > from && buf[safeEnd - 1] === CR) safeEnd--;
  notFound(out, safeEnd);
}
