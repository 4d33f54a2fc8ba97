import { MultipartParseError, MultipartTooLargeError, MultipartTruncatedError } from '../errors.js';
import { CR, LF, needles, scanInto, scanOut, type DelimiterKind, type Needles, type ScanOut } from './scan.js';

/** Limits the parser enforces, all resolved to numbers. */
export interface ParserLimits {
  readonly maxHeaderBytes: number;
  readonly maxHeaderLines: number;
}

// Transport padding after a delimiter is unbounded in RFC 2046; we allow this
// much before calling the body malformed, so a held-back tail stays small.
const MAX_PADDING = 1024;
// Whitespace tolerated after a final delimiter that lacks its closing `--`.
const MAX_TRAILING_WHITESPACE = 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeHeaderValue(bytes: Buffer): string {
  // Header bytes are usually ASCII; some peers put raw UTF-8 in filenames.
  try {
    return utf8.decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

// Headers whose repetition would make the part ambiguous (Content-Type, Content-Disposition, Location).
const SINGLETON = new Set(['content-type', 'content-disposition', 'location', 'content-length']);

/**
 * The synchronous core of the multipart/mixed reader: chunks are pushed in
 * ({@link push}, {@link endOfInput}) and each method answers from what is
 * buffered, or `undefined` when it needs more input. Holds at most one
 * input chunk plus a bounded tail.
 */
export class MultipartParser {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** The rest of a chunk whose head was spliced behind a held-back tail (see {@link take}). */
  private pending: Buffer | undefined;
  private eof = false;
  private atStart = true;
  private readonly n: Needles;
  private readonly out: ScanOut = scanOut();
  private readonly holdLimit: number;
  private readonly limits: ParserLimits;
  // readHeaders state, kept across calls that run out of input.
  private headers: Record<string, string> | undefined;
  private headerBytes = 0;
  private headerLines = 0;
  private lastHeader: string | undefined;
  private trailerBytes = 0;

  constructor(boundary: string, limits: ParserLimits) {
    this.limits = limits;
    this.n = needles(boundary);
    this.holdLimit = this.n.pattern.length + 1 + MAX_PADDING + 2;
  }

  /** Whether the end of input was signalled. */
  get ended(): boolean {
    return this.eof;
  }

  /** Adds one input chunk (a view, not copied unless a tail is held back). */
  push(chunk: Buffer): void {
    if (chunk.length > 0) this.take(chunk, true);
  }

  /** No more input will come. */
  endOfInput(): void {
    this.eof = true;
  }

  /** Moves a kept-aside chunk rest into the buffer; false when there is none (more input is needed). */
  private more(): boolean {
    const rest = this.pending;
    if (rest === undefined) return false;
    this.pending = undefined;
    this.take(rest, false);
    return true;
  }

  /**
   * Appends `chunk` to the unconsumed bytes. Without a held-back tail (the
   * usual case) the chunk becomes the buffer as it is. With one, copying
   * the whole chunk behind it would cost a full-chunk copy for a few bytes
   * of tail; when `splice` is set only the first `holdLimit` bytes (enough
   * to settle any delimiter that starts in the tail) are copied and the
   * rest is kept aside as {@link pending}, taken as it is once reached.
   */
  private take(chunk: Buffer, splice: boolean): void {
    const rest = this.buf.length - this.pos;
    if (rest === 0) {
      this.buf = chunk;
    } else if (splice && chunk.length > 2 * this.holdLimit) {
      const head = chunk.subarray(0, this.holdLimit);
      this.pending = chunk.subarray(this.holdLimit);
      this.buf = Buffer.concat([this.buf.subarray(this.pos), head], rest + head.length);
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk], rest + chunk.length);
    }
    this.pos = 0;
  }

  /**
   * Next piece of the current part body (or preamble) from the bytes
   * already buffered: a non-empty Buffer view, the kind of delimiter that
   * ends the body, or `undefined` when {@link fill} must run first. Throws
   * {@link MultipartTruncatedError} when the body ends before a delimiter.
   */
  step(): Buffer | DelimiterKind | undefined {
    for (;;) {
      const { buf, pos, eof } = this;
      if (pos === buf.length && !eof) {
        // Everything buffered is consumed: nothing to scan until more arrives.
        const more = this.pending;
        if (more === undefined) return undefined;
        this.pending = undefined;
        this.buf = more;
        this.pos = 0;
        continue;
      }
      const r = this.out;
      scanInto(buf, pos, this.n, this.atStart, eof, r);
      if (r.found) {
        if (r.end > pos) {
          this.pos = r.end;
          this.atStart = false;
          return buf.subarray(pos, r.end);
        }
        this.pos = r.next;
        this.atStart = true;
        return r.kind;
      }
      if (eof) throw new MultipartTruncatedError('body ended before the closing boundary delimiter');
      if (r.end > pos) {
        this.pos = r.end;
        this.atStart = false;
        // The common case: the whole chunk is payload; pass it on as it is.
        return pos === 0 && r.end === buf.length ? buf : buf.subarray(pos, r.end);
      }
      const more = this.pending;
      if (more !== undefined) {
        // The spliced head did not settle the tail: join the whole chunk, as
        // if it had not been spliced, before judging the padding length.
        this.pending = undefined;
        this.take(more, false);
        continue;
      }
      if (buf.length - pos > this.holdLimit) {
        throw new MultipartParseError('transport padding after a boundary delimiter is too long');
      }
      return undefined;
    }
  }

  /**
   * Reads a part's header block (RFC 2046 §5.1.1 / RFC 5322 fields). Names
   * are lower-cased; CRLF or bare LF line ends; obsolete folding is
   * unfolded. Enforces the header byte and line limits while reading.
   */
  readHeaders(): Record<string, string> | undefined {
    const headers: Record<string, string> = (this.headers ??= Object.create(null) as Record<string, string>);
    let consumed = this.headerBytes;
    let lines = this.headerLines;
    let last = this.lastHeader;
    const { maxHeaderBytes, maxHeaderLines } = this.limits;
    for (;;) {
      const lf = this.buf.indexOf(LF, this.pos);
      if (lf === -1) {
        if (consumed + (this.buf.length - this.pos) > maxHeaderBytes) {
          throw new MultipartTooLargeError('headerBytes', maxHeaderBytes);
        }
        if (this.more()) continue;
        if (this.eof) throw new MultipartTruncatedError('body ended inside part headers');
        this.headerBytes = consumed;
        this.headerLines = lines;
        this.lastHeader = last;
        return undefined;
      }
      consumed += lf + 1 - this.pos;
      if (consumed > maxHeaderBytes) throw new MultipartTooLargeError('headerBytes', maxHeaderBytes);
      let end = lf;
      if (end > this.pos && this.buf[end - 1] === CR) end--;
      const line = this.buf.subarray(this.pos, end);
      this.pos = lf + 1;
      if (line.length === 0) break;
      if (++lines > maxHeaderLines) throw new MultipartTooLargeError('headerLines', maxHeaderLines);
      const first = line[0];
      if (first === 0x20 || first === 0x09) {
        // obs-fold continuation (RFC 5322 §3.2.2)
        if (last === undefined) throw new MultipartParseError('part header block starts with a continuation line');
        headers[last] = `${headers[last]} ${decodeHeaderValue(line).trim()}`.trim();
        continue;
      }
      const colon = line.indexOf(0x3a);
      if (colon <= 0) throw new MultipartParseError('malformed part header line');
      const name = line.toString('latin1', 0, colon).trimEnd().toLowerCase();
      if (!TOKEN.test(name)) throw new MultipartParseError('malformed part header name');
      const value = decodeHeaderValue(line.subarray(colon + 1)).trim();
      const prev = headers[name];
      if (prev !== undefined) {
        if (SINGLETON.has(name)) throw new MultipartParseError(`duplicate ${name} header in a part`);
        headers[name] = `${prev}, ${value}`;
      } else {
        headers[name] = value;
      }
      last = name;
    }
    this.atStart = true;
    this.headers = undefined;
    this.headerBytes = 0;
    this.headerLines = 0;
    this.lastHeader = undefined;
    return headers;
  }

  /**
   * After the media part ended with a plain delimiter (no closing `--`),
   * accept only the end of the body (optionally after whitespace): that is
   * the MSC3916 example's form. Anything else is a third part. True once the
   * input ended; false while more input is needed.
   */
  skipTrailer(): boolean {
    for (;;) {
      for (let k = this.pos; k < this.buf.length; k++) {
        const c = this.buf[k];
        if (c !== 0x20 && c !== 0x09 && c !== CR && c !== LF) {
          throw new MultipartParseError('body has more than two parts');
        }
      }
      this.trailerBytes += this.buf.length - this.pos;
      this.pos = this.buf.length;
      if (this.trailerBytes > MAX_TRAILING_WHITESPACE) throw new MultipartParseError('body has more than two parts');
      if (!this.more()) return this.eof;
    }
  }

  /** Drops everything buffered (after the end, on error, or on cancel). */
  clear(): void {
    this.eof = true;
    this.pending = undefined;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }
}
