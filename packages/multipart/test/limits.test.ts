import { describe, expect, it } from 'vitest';
import {
  decodeMultipart,
  encodeMultipart,
  isMultipartError,
  MultipartError,
  MultipartParseError,
  MultipartTooLargeError,
  MultipartTruncatedError,
  type DecodeOptions,
} from '@hsmedia/multipart';
import { chunked, collect, fromChunks } from './helpers.js';

const B = 'b0b0b0b0b0b0b0b0';
const CT = `multipart/mixed; boundary=${B}`;
const HEAD = `\r\n--${B}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${B}\r\n`;
const enc = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A counting source: `prefix`, then `fill` repeated forever (or `count` times), then `suffix`. */
function endless(prefix: string, fill: string, count = Number.POSITIVE_INFINITY, suffix = '') {
  const stats = { reads: 0, bytes: 0, cancelled: false };
  let sent = 0;
  const fillBuf = enc(fill);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        stats.reads++;
        let chunk: Buffer;
        if (sent === 0 && prefix.length > 0) chunk = enc(prefix);
        else if (sent - (prefix.length > 0 ? 1 : 0) < count) chunk = fillBuf;
        else if (suffix !== '' && sent - (prefix.length > 0 ? 1 : 0) === count) chunk = enc(suffix);
        else {
          c.close();
          return;
        }
        sent++;
        stats.bytes += chunk.length;
        c.enqueue(chunk);
      },
      cancel() {
        stats.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, stats };
}

async function decodeFully(ct: string, body: ReadableStream<Uint8Array>, opts: Partial<DecodeOptions> = {}) {
  const r = await decodeMultipart(ct, body, { maxContentBytes: 1 << 20, ...opts });
  if (r.kind === 'content') return { ...r, bytes: await collect(r.stream) };
  return r;
}

async function failure(p: Promise<unknown>): Promise<MultipartError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a MultipartError').toBeInstanceOf(MultipartError);
  return err as MultipartError;
}

describe('limits are enforced while streaming', () => {
  it('endless preamble', async () => {
    const { stream, stats } = endless('', 'x'.repeat(1000));
    const err = await failure(decodeFully(CT, stream, { maxPreambleBytes: 10_000 }));
    expect(err).toBeInstanceOf(MultipartTooLargeError);
    expect((err as MultipartTooLargeError).limit).toBe('preambleBytes');
    expect(stats.bytes).toBeLessThanOrEqual(12_000);
    expect(stats.cancelled).toBe(true);
  });

  it('huge header line', async () => {
    const { stream, stats } = endless(`--${B}\r\nX-Junk: `, 'a'.repeat(4096));
    const err = await failure(decodeFully(CT, stream, { maxHeaderBytes: 8192 }));
    expect(err).toMatchObject({ code: 'TOO_LARGE', limit: 'headerBytes', max: 8192 });
    expect(stats.bytes).toBeLessThanOrEqual(8192 + 4096 + 100);
  });

  it('too many header lines', async () => {
    const { stream } = endless(`--${B}\r\n`, 'X-A: b\r\n');
    const err = await failure(decodeFully(CT, stream, { maxHeaderLines: 10 }));
    expect(err).toMatchObject({ code: 'TOO_LARGE', limit: 'headerLines' });
  });

  it('endless metadata', async () => {
    const { stream, stats } = endless(`--${B}\r\nContent-Type: application/json\r\n\r\n[`, '1,'.repeat(512));
    const err = await failure(decodeFully(CT, stream, { maxMetadataBytes: 4096 }));
    expect(err).toMatchObject({ code: 'TOO_LARGE', limit: 'metadataBytes' });
    expect(stats.bytes).toBeLessThanOrEqual(4096 + 2048);
  });

  it('content over maxContentBytes errors the stream without reading on', async () => {
    const { stream, stats } = endless(`${HEAD}Content-Type: text/plain\r\n\r\n`, 'z'.repeat(1000));
    const r = await decodeMultipart(CT, stream, { maxContentBytes: 10_000 });
    expect(r.kind).toBe('content');
    if (r.kind !== 'content') return;
    const err = await failure(collect(r.stream));
    expect(err).toMatchObject({ code: 'TOO_LARGE', limit: 'contentBytes', max: 10_000 });
    expect(stats.bytes).toBeLessThan(12_200);
    expect(stats.cancelled).toBe(true);
  });

  it('content exactly at maxContentBytes is accepted', async () => {
    const body = enc(`${HEAD}Content-Type: text/plain\r\n\r\n${'q'.repeat(100)}\r\n--${B}--\r\n`);
    const r = await decodeFully(CT, chunked(body, [7]), { maxContentBytes: 100 });
    expect(r.kind === 'content' && r.bytes.length).toBe(100);
    await failure(decodeFully(CT, chunked(body, [7]), { maxContentBytes: 99 }));
  });

  it('a part Content-Length over the limit fails before any content is read', async () => {
    const body = enc(`${HEAD}Content-Type: text/plain\r\nContent-Length: 5000\r\n\r\n`);
    const err = await failure(decodeFully(CT, chunked(body), { maxContentBytes: 4999 }));
    expect(err).toMatchObject({ code: 'TOO_LARGE', limit: 'contentBytes' });
  });

  it('endless transport padding', async () => {
    const { stream } = endless(`--${B}`, ' '.repeat(512));
    const err = await failure(decodeFully(CT, stream));
    expect(err).toBeInstanceOf(MultipartParseError);
  });

  it('endless epilogue is never read', async () => {
    const { stream, stats } = endless(`${HEAD}Content-Type: text/plain\r\n\r\nok\r\n--${B}--\r\n`, 'e'.repeat(1000));
    const r = await decodeFully(CT, stream);
    expect(r.kind === 'content' && r.bytes.toString()).toBe('ok');
    expect(stats.reads).toBe(1);
    expect(stats.cancelled).toBe(true);
  });

  it('rejects bad limit options', async () => {
    await expect(decodeMultipart(CT, chunked(enc('x')), { maxContentBytes: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(decodeMultipart(CT, chunked(enc('x')), {} as DecodeOptions)).rejects.toBeInstanceOf(RangeError);
  });
});

describe('strictness', () => {
  const cases: Array<[string, string, string, 'MALFORMED' | 'TRUNCATED' | 'TOO_LARGE']> = [
    ['not multipart', 'application/json', HEAD, 'MALFORMED'],
    ['no boundary', 'multipart/mixed', HEAD, 'MALFORMED'],
    ['empty body', CT, '', 'TRUNCATED'],
    ['preamble only', CT, 'hello\r\n', 'TRUNCATED'],
    ['close delimiter first', CT, `--${B}--\r\n`, 'MALFORMED'],
    ['non-JSON metadata', CT, `--${B}\r\nContent-Type: application/json\r\n\r\nnope\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['JSON array metadata', CT, `--${B}\r\nContent-Type: application/json\r\n\r\n[]\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['JSON null metadata', CT, `--${B}\r\nContent-Type: application/json\r\n\r\nnull\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['empty metadata', CT, `--${B}\r\nContent-Type: application/json\r\n\r\n\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['invalid UTF-8 metadata', CT, `--${B}\r\nContent-Type: application/json\r\n\r\n{"a":"\xff"}\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['first part not JSON', CT, `--${B}\r\nContent-Type: text/plain\r\n\r\n{}\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['three parts', CT, `${HEAD}Content-Type: text/plain\r\n\r\nx\r\n--${B}\r\nContent-Type: text/plain\r\n\r\ny\r\n--${B}--\r\n`, 'MALFORMED'],
    ['truncated in content', CT, `${HEAD}Content-Type: text/plain\r\n\r\nabc`, 'TRUNCATED'],
    ['truncated in delimiter', CT, `${HEAD}Content-Type: text/plain\r\n\r\nabc\r\n--${B.slice(0, 5)}`, 'TRUNCATED'],
    ['truncated after "-"', CT, `${HEAD}Content-Type: text/plain\r\n\r\nabc\r\n--${B}-`, 'TRUNCATED'],
    ['truncated in headers', CT, `${HEAD}Content-Type: text/pl`, 'TRUNCATED'],
    ['truncated in metadata', CT, `--${B}\r\nContent-Type: application/json\r\n\r\n{}`, 'TRUNCATED'],
    ['header without colon', CT, `${HEAD}Content-Type text/plain\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['bad header name', CT, `${HEAD}Content Type: text/plain\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['continuation first', CT, `--${B}\r\n  folded\r\n\r\n{}\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['duplicate Content-Type', CT, `${HEAD}Content-Type: text/plain\r\ncontent-type: image/png\r\n\r\nx\r\n--${B}--`, 'MALFORMED'],
    ['relative Location', CT, `${HEAD}Location: /a/b\r\n\r\n--${B}--`, 'MALFORMED'],
    ['javascript: Location', CT, `${HEAD}Location: javascript:alert(1)\r\n\r\n--${B}--`, 'MALFORMED'],
    ['Location without closing delimiter', CT, `${HEAD}Location: https://cdn.example.org/x\r\n\r\n`, 'TRUNCATED'],
    ['Location then third part', CT, `${HEAD}Location: https://cdn.example.org/x\r\n\r\n--${B}\r\n\r\nz\r\n--${B}--`, 'MALFORMED'],
  ];
  for (const [name, ct, body, code] of cases) {
    it(`${name} → ${code}`, async () => {
      for (const split of [[body.length || 1], [1], [3]]) {
        const err = await failure(decodeFully(ct, chunked(enc(body), split)));
        expect(err.code).toBe(code);
      }
    });
  }

  it('the content stream delivers the bytes, then fails, when a third part follows', async () => {
    const r = await decodeMultipart(CT, chunked(enc(`${HEAD}\r\nxyz\r\n--${B}\r\n\r\nmore\r\n--${B}--`)), { maxContentBytes: 10 });
    if (r.kind !== 'content') throw new Error('expected content');
    const reader = r.stream.getReader();
    expect(Buffer.from((await reader.read()).value!).toString()).toBe('xyz');
    await expect(reader.read()).rejects.toBeInstanceOf(MultipartParseError);
  });
});

describe('tolerance', () => {
  const ok: Array<[string, string, string, string]> = [
    ['unquoted boundary among other parameters', `multipart/mixed; charset=x; boundary=${B}; foo="a;b"`, `${HEAD}\r\nx\r\n--${B}--`, 'x'],
    ['upper-case type and parameter', `Multipart/Mixed; BOUNDARY="${B}"`, `${HEAD}\r\nx\r\n--${B}--`, 'x'],
    ['textual preamble', CT, `This is a multi-part message in MIME format.\r\n--${B}\r\n\r\n{}\r\n--${B}\r\n\r\nx\r\n--${B}--\r\n`, 'x'],
    ['epilogue', CT, `${HEAD}\r\nx\r\n--${B}--\r\nbye\r\n`, 'x'],
    ['untyped JSON part', CT, `--${B}\r\n\r\n{"k":1}\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'x'],
    ['folded header', CT, `--${B}\r\nContent-Type:\r\n application/json\r\n\r\n{}\r\n--${B}\r\n\r\nx\r\n--${B}--`, 'x'],
    ['no final CRLF', CT, `${HEAD}\r\nx\r\n--${B}--`, 'x'],
    ['final delimiter without --', CT, `${HEAD}\r\nx\r\n--${B}`, 'x'],
    ['final delimiter without -- and with CRLFs', CT, `${HEAD}\r\nx\r\n--${B}\r\n\r\n`, 'x'],
    ['empty content', CT, `${HEAD}Content-Type: text/plain\r\n\r\n\r\n--${B}--\r\n`, ''],
    ['empty content, no CRLF before delimiter', CT, `${HEAD}Content-Type: text/plain\r\n\r\n--${B}--\r\n`, ''],
    ['boundary text inside content without line start', CT, `${HEAD}\r\nx--${B}--y\r\n--${B}--`, `x--${B}--y`],
    ['mixed line ends', CT, `--${B}\nContent-Type: application/json\r\n\n{}\r\n--${B}\n\r\nx\n--${B}--`, 'x'],
  ];
  for (const [name, ct, body, want] of ok) {
    it(name, async () => {
      for (const split of [[body.length], [1], [4]]) {
        const r = await decodeFully(ct, chunked(enc(body), split));
        expect(r.kind).toBe('content');
        expect(r.kind === 'content' && r.bytes.toString('latin1')).toBe(want);
      }
    });
  }

  it('keeps unknown metadata keys', async () => {
    const r = await decodeFully(CT, chunked(enc(`--${B}\r\nContent-Type: application/json\r\n\r\n {"restrictions":{"a":1}} \r\n--${B}\r\n\r\nx\r\n--${B}--`)));
    expect(r.metadata).toEqual({ restrictions: { a: 1 } });
  });

  it('Location wins over other headers and its body is ignored', async () => {
    const r = await decodeFully(
      CT,
      chunked(enc(`${HEAD}Content-Type: text/plain\r\nLOCATION: https://cdn.example.org/f\r\n\r\nignored\r\n--${B}--\r\n`), [2]),
    );
    expect(r).toMatchObject({ kind: 'location', location: 'https://cdn.example.org/f' });
  });
});

describe('streams, backpressure, cancellation', () => {
  it('reads the body only as fast as the content is consumed', async () => {
    const { stream, stats } = endless(`${HEAD}Content-Type: text/plain\r\n\r\n`, 'c'.repeat(1024), 100, `\r\n--${B}--\r\n`);
    const r = await decodeMultipart(CT, stream, { maxContentBytes: 1 << 20 });
    if (r.kind !== 'content') throw new Error('expected content');
    const afterHeaders = stats.reads;
    await new Promise((res) => setTimeout(res, 20));
    expect(stats.reads).toBe(afterHeaders);
    const reader = r.stream.getReader();
    for (let i = 0; i < 5; i++) await reader.read();
    expect(stats.reads).toBeLessThanOrEqual(afterHeaders + 6);
    await reader.cancel('enough');
    expect(stats.cancelled).toBe(true);
  });

  it('abort signal fails a pending decode and the content stream with its reason', async () => {
    const ac = new AbortController();
    const { stream, stats } = endless(`${HEAD}Content-Type: text/plain\r\n\r\n`, 'c'.repeat(64));
    const r = await decodeMultipart(CT, stream, { maxContentBytes: 1 << 30, signal: ac.signal });
    if (r.kind !== 'content') throw new Error('expected content');
    const reader = r.stream.getReader();
    await reader.read();
    ac.abort(new Error('stop'));
    await expect(reader.read()).rejects.toThrow('stop');
    expect(stats.cancelled).toBe(true);

    const aborted = AbortSignal.abort(new Error('early'));
    await expect(decodeMultipart(CT, chunked(enc(HEAD)), { maxContentBytes: 1, signal: aborted })).rejects.toThrow('early');
  });

  it('abort while waiting for a slow body', async () => {
    const ac = new AbortController();
    let cancelled = false;
    const never = new ReadableStream<Uint8Array>({
      cancel() {
        cancelled = true;
      },
    });
    const p = decodeMultipart(CT, never, { maxContentBytes: 1, signal: ac.signal });
    ac.abort(new Error('timeout'));
    await expect(p).rejects.toThrow('timeout');
    expect(cancelled).toBe(true);
  });

  it('encoder reads its content only when the body is read, and cancels it', async () => {
    const { stream, stats } = endless('', 'p'.repeat(100), 50);
    const e = encodeMultipart({ content: { stream, contentType: 'text/plain' } });
    await new Promise((res) => setTimeout(res, 20));
    expect(stats.reads).toBe(0);
    const reader = e.body.getReader();
    await reader.read(); // head
    await reader.read();
    await reader.read();
    expect(stats.reads).toBeLessThanOrEqual(2);
    await reader.cancel();
    expect(stats.cancelled).toBe(true);
  });

  it('encoder refuses to write a body that disagrees with contentLength', async () => {
    const short = encodeMultipart({ content: { stream: chunked(enc('abc')), contentType: 'x/y', contentLength: 4 } });
    expect((await failure(collect(short.body))).code).toBe('TRUNCATED');
    const long = encodeMultipart({ content: { stream: chunked(enc('abcde')), contentType: 'x/y', contentLength: 4 } });
    expect((await failure(collect(long.body))).code).toBe('TOO_LARGE');
  });

  it('encoder validates its inputs', () => {
    const s = fromChunks([]);
    expect(() => encodeMultipart({ boundary: 'has space', content: { location: 'https://a' } })).toThrow(TypeError);
    expect(() => encodeMultipart({ boundary: 'x'.repeat(71), content: { location: 'https://a' } })).toThrow(TypeError);
    expect(() => encodeMultipart({ content: { location: 'https://a\r\nX: y' } })).toThrow(TypeError);
    expect(() => encodeMultipart({ content: { stream: s, contentType: 'a/b\nc' } })).toThrow(TypeError);
    expect(() => encodeMultipart({ content: { stream: s, contentType: 'a/b', contentDisposition: 'x\r' } })).toThrow(TypeError);
    expect(() => encodeMultipart({ content: { stream: s, contentType: 'a/b', contentLength: -1 } })).toThrow(RangeError);
    expect(() => encodeMultipart({ metadata: [] as never, content: { location: 'https://a' } })).toThrow(TypeError);
  });

  it('encoder uses a fresh 32-hex boundary each time', () => {
    const a = encodeMultipart({ content: { location: 'https://a' } });
    const b = encodeMultipart({ content: { location: 'https://a' } });
    expect(a.boundary).toMatch(/^[0-9a-f]{32}$/);
    expect(a.boundary).not.toBe(b.boundary);
    expect(a.contentType).toBe(`multipart/mixed; boundary=${a.boundary}`);
  });
});

describe('errors', () => {
  it('instanceof works by brand, per subclass, and across copies', () => {
    const e = new MultipartTooLargeError('contentBytes', 5);
    expect(e).toBeInstanceOf(MultipartError);
    expect(e).toBeInstanceOf(MultipartTooLargeError);
    expect(e).not.toBeInstanceOf(MultipartParseError);
    expect(e).toBeInstanceOf(Error);
    expect(new MultipartTruncatedError('t')).not.toBeInstanceOf(MultipartTooLargeError);
    // An error made by another installed copy carries the same Symbol.for brand.
    const foreign = new Error('x');
    Object.defineProperty(foreign, Symbol.for('hsmedia.error.MultipartError'), { value: 'MALFORMED' });
    Object.assign(foreign, { code: 'MALFORMED' });
    expect(foreign).toBeInstanceOf(MultipartParseError);
    expect(isMultipartError(foreign)).toBe(true);
    expect(isMultipartError(new Error('plain'))).toBe(false);
    expect({ code: 'MALFORMED' }).not.toBeInstanceOf(MultipartError);
  });
});
