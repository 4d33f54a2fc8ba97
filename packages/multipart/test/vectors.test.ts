import { describe, expect, it } from 'vitest';
import {
  decodeMultipart,
  encodeMultipart,
  MultipartError,
  MultipartParseError,
  MultipartTruncatedError,
} from '@hsmedia/multipart';
// A copy of shared/spec/multipart-vectors.mjs (kept in the repo for CI).
import { vectors } from './fixtures/multipart-vectors.mjs';
import { chunked, collect } from './helpers.js';

interface Vector {
  ct: string;
  body: Buffer;
  want?: string;
  wantRedirect?: string;
  wantError?: boolean;
}
const all = vectors as Record<string, Vector>;

// The fixture's `lf_only.want` is a note, not the payload: LF-only decodes to 'lf'.
function expected(name: string, v: Vector): string | undefined {
  return name === 'lf_only' ? 'lf' : v.want;
}

async function decodeAll(ct: string, body: ReadableStream<Uint8Array>) {
  const r = await decodeMultipart(ct, body, { maxContentBytes: 1 << 20 });
  if (r.kind === 'location') return { r, bytes: undefined };
  return { r, bytes: await collect(r.stream) };
}

describe('shared multipart vectors', () => {
  for (const [name, v] of Object.entries(all)) {
    for (const split of [[v.body.length], [1], [2, 3, 5], [7]]) {
      it(`${name} (chunks ${split.join(',')})`, async () => {
        const run = decodeAll(v.ct, chunked(v.body, split));
        if (v.wantError) {
          const err = await run.catch((e: unknown) => e);
          expect(err).toBeInstanceOf(MultipartError);
          return;
        }
        const { r, bytes } = await run;
        expect(r.metadata).toEqual({});
        if (v.wantRedirect !== undefined) {
          expect(r.kind).toBe('location');
          expect(r.kind === 'location' && r.location).toBe(v.wantRedirect);
        } else {
          expect(r.kind).toBe('content');
          expect(bytes?.toString('latin1')).toBe(expected(name, v));
        }
      });
    }
  }

  it('reports the right error kinds', async () => {
    await expect(decodeAll(all['truncated']!.ct, chunked(all['truncated']!.body))).rejects.toBeInstanceOf(
      MultipartTruncatedError,
    );
    await expect(
      decodeAll(all['missing_media_part']!.ct, chunked(all['missing_media_part']!.body)),
    ).rejects.toBeInstanceOf(MultipartParseError);
  });

  it('exposes part headers lower-cased', async () => {
    const v = all['cased_headers']!;
    const r = await decodeMultipart(v.ct, chunked(v.body), { maxContentBytes: 100 });
    expect(r.kind).toBe('content');
    if (r.kind !== 'content') return;
    expect(r.contentType).toBe('text/plain');
    expect(r.contentDisposition).toBe('inline; filename=test_upload');
    expect(r.headers).toEqual({ 'content-type': 'text/plain', 'content-disposition': 'inline; filename=test_upload' });
    await r.stream.cancel();
  });
});

// The two answers of https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediadownloadmediaid
// (after the MSC3916 examples), byte for byte, for a fixed boundary.
const B98 = '6f1b0e0c3c5e4a5b9d2f7a8e1c4b3d2a';
const INLINE_98 = `\r\n--${B98}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${B98}\r\nContent-Type: text/plain\r\nContent-Disposition: inline; filename=hello.txt\r\n\r\nHello, world!\n\r\n--${B98}--\r\n`;
const LOCATION_98 = `\r\n--${B98}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${B98}\r\nLocation: https://cdn.example.org/ab/c1/2345.txt\r\n\r\n\r\n--${B98}--\r\n`;
// The MSC3916 illustrative form: no leading CRLF, blank line after JSON, no closing `--`.
const MSC_FORM = `--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: application/json\r\n\r\n{}\r\n\r\n--gc0p4Jq0M2Yt08jU534c0p\r\nContent-Type: text/plain\r\n\r\nThis media is plain text. Maybe somebody used it as a paste bin.\r\n\r\n--gc0p4Jq0M2Yt08jU534c0p\r\n`;

describe('spec example format', () => {
  it('encodes the inline variant byte for byte (243 bytes)', async () => {
    const e = encodeMultipart({
      boundary: B98,
      content: {
        stream: chunked(Buffer.from('Hello, world!\n')),
        contentType: 'text/plain',
        contentDisposition: 'inline; filename=hello.txt',
        contentLength: 14,
      },
    });
    expect(e.contentType).toBe(`multipart/mixed; boundary=${B98}`);
    expect(e.contentLength).toBe(243);
    const body = await collect(e.body);
    expect(body.length).toBe(243);
    expect(body.toString('latin1')).toBe(INLINE_98);
  });

  it('encodes the Location variant byte for byte (204 bytes)', async () => {
    const e = encodeMultipart({ boundary: B98, content: { location: 'https://cdn.example.org/ab/c1/2345.txt' } });
    expect(e.contentLength).toBe(204);
    const body = await collect(e.body);
    expect(body.length).toBe(204);
    expect(body.toString('latin1')).toBe(LOCATION_98);
  });

  it('decodes both variants', async () => {
    const ct = `multipart/mixed; boundary=${B98}`;
    const a = await decodeAll(ct, chunked(Buffer.from(INLINE_98, 'latin1'), [3]));
    expect(a.r.kind === 'content' && a.r.contentDisposition).toBe('inline; filename=hello.txt');
    expect(a.bytes?.toString()).toBe('Hello, world!\n');
    const b = await decodeAll(ct, chunked(Buffer.from(LOCATION_98, 'latin1'), [1]));
    expect(b.r.kind === 'location' && b.r.location).toBe('https://cdn.example.org/ab/c1/2345.txt');
  });

  it('decodes the MSC3916 illustrative form', async () => {
    const r = await decodeAll('multipart/mixed; boundary=gc0p4Jq0M2Yt08jU534c0p', chunked(Buffer.from(MSC_FORM), [4]));
    expect(r.r.metadata).toEqual({});
    expect(r.bytes?.toString()).toBe('This media is plain text. Maybe somebody used it as a paste bin.\r\n');
  });
});
