import { MultipartParseError, MultipartTooLargeError, MultipartTruncatedError, type MultipartLimit } from '../errors.js';
import { toBuffer, type ChunkReader, type ReadResult } from './source.js';
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
 * Streaming multipart/mixed reader over a {@link ChunkReader}. Holds at most
 * one input chunk plus a bounded tail; every read is caller-driven.
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
  private readonly reader: ChunkReader;
  private readonly limits: ParserLimits;
  private readonly signal: AbortSignal | undefined;

  constructor(reader: ChunkReader, boundary: string, limits: ParserLimits, signal: AbortSignal | undefined) {
    this.reader = reader;
    this.limits = limits;
    this.signal = signal;
    this.n = needles(boundary);
    this.holdLimit = this.n.pattern.length + 1 + MAX_PADDING + 2;
  }

  /** Reads one more chunk, keeping unconsumed bytes. False at end of body. */
  async fill(): Promise<boolean> {
    const more = this.pending;
    if (more !== undefined) {
      this.pending = undefined;
      this.take(more, false);
      return true;
    }
    for (;;) {
      if (this.eof) return false;
      if (this.accept(await this.reader.read())) return true;
    }
  }

  /**
   * The source's next read, unwrapped: with {@link accept} it is
   * {@link fill} without an extra promise per chunk (the decoder's hot
   * path). Only call it when {@link step} returned `undefined`.
   */
  read(): Promise<ReadResult> {
    return this.reader.read();
  }

  /**
   * Takes one read result (see {@link read}) into the buffer, keeping
   * unconsumed bytes. False if it added nothing (end of body or an empty chunk).
   */
  accept(r: ReadResult): boolean {
    this.signal?.throwIfAborted();
    if (r.done) {
      this.eof = true;
      return false;
    }
    const chunk = toBuffer(r.value);
    if (chunk.length === 0) return false;
    this.take(chunk, true);
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

  /** {@link step}, reading from the source as needed. */
  async next(): Promise<Buffer | DelimiterKind> {
    for (;;) {
      const r = this.step();
      if (r !== undefined) return r;
      await this.fill();
    }
  }

  /** Consumes a body, counting it against `max`; returns the delimiter kind. */
  async skipBody(max: number, limit: MultipartLimit): Promise<DelimiterKind> {
    let total = 0;
    for (;;) {
      const r = await this.next();
      if (typeof r === 'string') return r;
      total += r.length;
      if (total > max) throw new MultipartTooLargeError(limit, max);
    }
  }

  /** Collects a (small) body, counting it against `max`. */
  async collectBody(max: number, limit: MultipartLimit): Promise<{ bytes: Buffer; kind: DelimiterKind }> {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      const r = await this.next();
      if (typeof r === 'string') return { bytes: Buffer.concat(parts, total), kind: r };
      total += r.length;
      if (total > max) throw new MultipartTooLargeError(limit, max);
      parts.push(r);
    }
  }

  /**
   * Reads a part's header block (RFC 2046 §5.1.1 / RFC 5322 fields). Names
   * are lower-cased; CRLF or bare LF line ends; obsolete folding is
   * unfolded. Enforces the header byte and line limits while reading.
   */
  async readHeaders(): Promise<Record<string, string>> {
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    let consumed = 0;
    let lines = 0;
    let last: string | undefined;
    const { maxHeaderBytes, maxHeaderLines } = this.limits;
    for (;;) {
      const lf = this.buf.indexOf(LF, this.pos);
      if (lf === -1) {
        if (consumed + (this.buf.length - this.pos) > maxHeaderBytes) {
          throw new MultipartTooLargeError('headerBytes', maxHeaderBytes);
        }
        if (!(await this.fill())) throw new MultipartTruncatedError('body ended inside part headers');
        continue;
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
    return headers;
  }

  /**
   * After the media part ended with a plain delimiter (no closing `--`),
   * accept only the end of the body (optionally after whitespace): that is
   * the MSC3916 example's form. Anything else is a third part.
   */
  async expectEnd(): Promise<void> {
    let seen = 0;
    for (;;) {
      for (let k = this.pos; k < this.buf.length; k++) {
        const c = this.buf[k];
        if (c !== 0x20 && c !== 0x09 && c !== CR && c !== LF) {
          throw new MultipartParseError('body has more than two parts');
        }
      }
      seen += this.buf.length - this.pos;
      this.pos = this.buf.length;
      if (seen > MAX_TRAILING_WHITESPACE) throw new MultipartParseError('body has more than two parts');
      if (!(await this.fill())) return;
    }
  }

  /** Stops reading the source (after the closing delimiter, on error, or on cancel). */
  release(reason?: unknown): Promise<void> {
    this.eof = true;
    this.pending = undefined;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return this.reader.cancel(reason);
  }
}
