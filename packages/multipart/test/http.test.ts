import { createHash, randomBytes } from 'node:crypto';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMultipart, encodeMultipart, MultipartTruncatedError } from '@hsmedia/multipart';
import { collect } from './helpers.js';

// Real HTTP over loopback: the encoder feeds a Node response, the decoder
// reads a `fetch` body (Web stream) and a Node IncomingMessage.
const payload = randomBytes(5 * 1024 * 1024 + 17);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
let server: Server;
let base: string;

function payloadStream(): Readable {
  // 60 000-byte pieces: never aligned with the body's framing.
  return Readable.from(
    (function* () {
      for (let off = 0; off < payload.length; off += 60_000) yield payload.subarray(off, off + 60_000);
    })(),
  );
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/truncated') {
      const e = encodeMultipart({ content: { stream: payloadStream(), contentType: 'application/octet-stream' } });
      res.writeHead(200, { 'Content-Type': e.contentType });
      const reader = e.body.getReader();
      void (async () => {
        let sent = 0;
        for (;;) {
          const r = await reader.read();
          if (r.done || sent > 1_000_000) break;
          res.write(r.value);
          sent += r.value.length;
        }
        await reader.cancel();
        res.end(); // a clean end of a chunked body, before the closing delimiter
      })();
      return;
    }
    const chunked = req.url === '/chunked';
    const e = encodeMultipart({
      content: {
        stream: payloadStream(),
        contentType: 'application/octet-stream',
        contentDisposition: 'attachment; filename="blob.bin"',
        ...(chunked ? {} : { contentLength: payload.length }),
      },
    });
    res.writeHead(200, {
      'Content-Type': e.contentType,
      ...(e.contentLength === undefined ? {} : { 'Content-Length': String(e.contentLength) }),
    });
    void pipeline(Readable.fromWeb(e.body as import('node:stream/web').ReadableStream<Uint8Array>), res).catch(() => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('over loopback HTTP', () => {
  for (const path of ['/length', '/chunked']) {
    it(`fetch body (${path})`, async () => {
      const res = await fetch(base + path);
      if (path === '/length') expect(res.headers.get('content-length')).not.toBeNull();
      const r = await decodeMultipart(res.headers.get('content-type')!, res.body!, { maxContentBytes: payload.length });
      if (r.kind !== 'content') throw new Error('expected content');
      expect(r.contentDisposition).toBe('attachment; filename="blob.bin"');
      expect(sha(await collect(r.stream))).toBe(sha(payload));
    });
  }

  it('Node IncomingMessage as the body', async () => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => get(`${base}/chunked`, resolve).on('error', reject));
    const r = await decodeMultipart(res.headers['content-type']!, res, { maxContentBytes: payload.length });
    if (r.kind !== 'content') throw new Error('expected content');
    expect(sha(await collect(r.stream))).toBe(sha(payload));
  });

  it('a body that ends before the closing delimiter is an error, not a short file', async () => {
    const res = await fetch(`${base}/truncated`);
    const r = await decodeMultipart(res.headers.get('content-type')!, res.body!, { maxContentBytes: payload.length });
    if (r.kind !== 'content') throw new Error('expected content');
    await expect(collect(r.stream)).rejects.toBeInstanceOf(MultipartTruncatedError);
  });
});
