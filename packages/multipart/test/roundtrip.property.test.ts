import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMultipart, encodeMultipart } from '@hsmedia/multipart';
import { collect, fromChunks, splitAt } from './helpers.js';

const B = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

// Payload fragments chosen to stress the delimiter search: CRLFs, CRLFCRLF,
// dashes, strict prefixes of the delimiter, and the whole boundary followed
// by a byte that makes it *not* a delimiter.
const fragment = (boundary: string): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    fc.constantFrom(
      ...['\r', '\n', '\r\n', '\r\n\r\n', '--', '\r\n--', '\n--', `--${boundary}X`, `\r\n--${boundary}-x`, `\n--${boundary}Z`].map(
        (s) => Buffer.from(s, 'latin1'),
      ),
    ),
    fc.integer({ min: 0, max: boundary.length - 1 }).map((k) => Buffer.from(`\r\n--${boundary.slice(0, k)}`, 'latin1')),
  );

const payload = (boundary: string): fc.Arbitrary<Buffer> =>
  fc.array(fragment(boundary), { maxLength: 40 }).map((fs) => Buffer.concat(fs));

const jsonValue = fc.jsonValue({ maxDepth: 2 });
const metadata = fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 4 });
const headerText = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\r\n\0]/.test(s) && s.trim() === s);

const cutsFor = (len: number): fc.Arbitrary<number[]> =>
  fc.oneof(
    fc.array(fc.integer({ min: 0, max: len }), { maxLength: 30 }),
    fc.constant(Array.from({ length: len }, (_, i) => i)), // one byte at a time
  );

/**
 * Whether `data`, as a part body followed by the encoder's closing
 * delimiter, contains a delimiter of its own: then it cannot round-trip
 * (RFC 2046 §5.1.1 requires a boundary that occurs in no part). Fixed `B`
 * never overlaps the planted fragments; a random boundary can (e.g. `-`,
 * where `LF---` + `--` closes the body early).
 */
function containsDelimiter(data: Uint8Array, boundary: string): boolean {
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const pattern = Buffer.concat([Buffer.from('\n'), dash]);
  const all = Buffer.concat([data, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')]);
  const endsDelimiter = (p: number): boolean => {
    if (all[p] === 0x2d) return all[p + 1] === 0x2d;
    while (all[p] === 0x20 || all[p] === 0x09) p++;
    return p >= all.length || all[p] === 0x0a || (all[p] === 0x0d && (p + 1 >= all.length || all[p + 1] === 0x0a));
  };
  if (all.subarray(0, dash.length).equals(dash) && endsDelimiter(dash.length)) return true;
  for (let i = all.indexOf(pattern); i !== -1 && i < data.length; i = all.indexOf(pattern, i + 1)) {
    if (endsDelimiter(i + pattern.length)) return true;
  }
  return false;
}

describe('decode(encode(x)) === x', () => {
  it('inline content, random payloads and random chunk splits', async () => {
    await fc.assert(
      fc.asyncProperty(
        payload(B),
        metadata,
        headerText,
        fc.option(headerText, { nil: undefined }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.nat(),
        async (data, meta, type, disposition, knownLength, inputCuts, seed) => {
          const e = encodeMultipart({
            boundary: B,
            metadata: meta,
            content: {
              stream: fromChunks(splitAt(data, inputCuts.map((c) => c % (data.length + 1)))),
              contentType: type,
              ...(disposition === undefined ? {} : { contentDisposition: disposition }),
              ...(knownLength ? { contentLength: data.length } : {}),
            },
          });
          const body = await collect(e.body);
          if (knownLength) expect(e.contentLength).toBe(body.length);
          else expect(e.contentLength).toBeUndefined();

          const cuts = fc.sample(cutsFor(body.length), { numRuns: 1, seed })[0]!;
          const r = await decodeMultipart(e.contentType, fromChunks(splitAt(body, cuts)), {
            maxContentBytes: data.length,
          });
          expect(r.kind).toBe('content');
          if (r.kind !== 'content') return;
          expect(r.metadata).toEqual(JSON.parse(JSON.stringify(meta)));
          expect(r.contentType).toBe(type);
          expect(r.contentDisposition).toBe(disposition);
          const out = await collect(r.stream);
          expect(out.equals(data)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('payloads holding their own delimiter are told apart (precondition of the next test)', () => {
    // found by the next property: boundary `-`, payload `\n--` + `---X`
    expect(containsDelimiter(Buffer.from('ab\n-----X', 'latin1'), '-')).toBe(true);
    expect(containsDelimiter(Buffer.from('---\r\nab', 'latin1'), '-')).toBe(true);
    expect(containsDelimiter(Buffer.from(`ab\n--${B}Z\r\n--${B}-x`, 'latin1'), B)).toBe(false);
  });

  it('random boundaries, Node stream input', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[0-9A-Za-z'+_.-]{1,70}$/),
        fc.nat(),
        async (boundary, seed) => {
          const data = fc.sample(payload(boundary), { numRuns: 1, seed })[0]!;
          fc.pre(!containsDelimiter(data, boundary));
          const e = encodeMultipart({
            boundary,
            content: { stream: Readable.from([data]), contentType: 'application/octet-stream', contentLength: data.length },
          });
          const body = await collect(e.body);
          expect(body.length).toBe(e.contentLength);
          const cuts = fc.sample(cutsFor(body.length), { numRuns: 1, seed })[0]!;
          const r = await decodeMultipart(e.contentType, Readable.from(splitAt(body, cuts)), {
            maxContentBytes: data.length,
          });
          if (r.kind !== 'content') throw new Error('expected content');
          expect((await collect(r.stream)).equals(data)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('Location parts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.webUrl({ withQueryParameters: true, withFragments: true }), metadata, fc.nat(), async (url, meta, seed) => {
        const e = encodeMultipart({ metadata: meta, content: { location: url } });
        const body = await collect(e.body);
        expect(body.length).toBe(e.contentLength);
        const cuts = fc.sample(cutsFor(body.length), { numRuns: 1, seed })[0]!;
        const r = await decodeMultipart(e.contentType, fromChunks(splitAt(body, cuts)), { maxContentBytes: 0 });
        expect(r.kind).toBe('location');
        if (r.kind === 'location') expect(r.location).toBe(url);
        expect(r.metadata).toEqual(JSON.parse(JSON.stringify(meta)));
      }),
      { numRuns: 200 },
    );
  });

  it('declared length equals bytes written for any content length', () => {
    fc.assert(
      fc.property(headerText, fc.option(headerText, { nil: undefined }), fc.nat({ max: 1 << 30 }), metadata, (type, disp, n, meta) => {
        const e = encodeMultipart({
          boundary: B,
          metadata: meta,
          content: {
            stream: fromChunks([]),
            contentType: type,
            contentLength: n,
            ...(disp === undefined ? {} : { contentDisposition: disp }),
          },
        });
        // Synapse's Content-Length formula for a 32-character boundary, with byte lengths.
        const bytes = (s: string): number => Buffer.byteLength(s);
        const synapse =
          n + bytes(JSON.stringify(meta)) + bytes(`Content-Type: ${type}`) +
          (disp === undefined ? -2 : bytes(`Content-Disposition: ${disp}`)) + 156;
        expect(e.contentLength).toBe(synapse);
        void e.body.cancel();
      }),
      { numRuns: 300 },
    );
  });
});
