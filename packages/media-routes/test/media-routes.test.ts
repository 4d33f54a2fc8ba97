import { request } from 'node:http';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { binaryBytes, TINY_PNG } from '@hsmedia/test-fixtures';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MEDIA_CONTENT_SECURITY_POLICY } from '../src/index.js';
import { ALICE, GUEST, SERVER_NAME, startHarness, upload, type Harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const dl = (mediaId: string, suffix = ''): string => `/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}${suffix}`;
const legacyDl = (mediaId: string, suffix = ''): string => `/_matrix/media/v3/download/${SERVER_NAME}/${mediaId}${suffix}`;

async function get(path: string, headers: Record<string, string> = ALICE, method = 'GET'): Promise<Response> {
  return fetch(`${h.url}${path}`, { headers, method });
}

async function expectError(res: Response, status: number, errcode: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { errcode: string; error: string };
  expect(body.errcode).toBe(errcode);
  expect(typeof body.error).toBe('string');
}

/**
 * Sends bytes exactly as given (fetch would normalise `..` segments away and
 * refuse odd header bytes) and parses the response status and JSON body.
 */
async function raw(requestHead: string, body = ''): Promise<{ status: number; json: Record<string, unknown> }> {
  const { port } = new URL(h.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.end(Buffer.from(`${requestHead}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n${body}`, 'latin1'));
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const payload = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { status, json: payload ? (JSON.parse(payload) as Record<string, unknown>) : {} };
}

describe('upload → download round trip', () => {
  it.each([
    ['binary data', binaryBytes(4096)],
    ['0 bytes', new Uint8Array(0)],
    ['1 MiB', binaryBytes(1024 * 1024, 7)],
    ['just over the small-blob cache size', binaryBytes(64 * 1024 + 1, 3)],
  ])('is byte-identical for %s', async (_label, bytes) => {
    const { mediaId, contentUri } = await upload(h, bytes, { contentType: 'application/x-test' });
    expect(contentUri).toMatch(new RegExp(`^mxc://${SERVER_NAME.replace('.', '\\.')}/[A-Za-z0-9_-]+$`));
    for (let i = 0; i < 2; i++) {
      // second time: served from the in-memory caches when small
      const res = await get(dl(mediaId));
      expect(res.status).toBe(200);
      const body = new Uint8Array(await res.arrayBuffer());
      expect(body.byteLength).toBe(bytes.byteLength);
      expect(Buffer.compare(body, bytes)).toBe(0);
      expect(res.headers.get('content-length')).toBe(String(bytes.byteLength));
    }
  });

  it('stores Content-Type verbatim and defaults to application/octet-stream', async () => {
    const odd = await upload(h, TINY_PNG, { contentType: 'img/png' });
    expect((await get(dl(odd.mediaId))).headers.get('content-type')).toBe('img/png');
    const params = await upload(h, 'hi', { contentType: 'text/plain; charset=ISO-8859-1' });
    expect((await get(dl(params.mediaId))).headers.get('content-type')).toBe('text/plain; charset=ISO-8859-1');
    const res = await fetch(`${h.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: ALICE,
      body: new Blob([new Uint8Array([1, 2, 3])]), // a Blob without type sends no Content-Type
    });
    const none = ((await res.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const served = await get(dl(none));
    expect(served.headers.get('content-type')).toBe('application/octet-stream');
    expect(served.headers.get('content-disposition')).toBe('attachment');
  });

  it('answers with the hardening and CORS headers', async () => {
    const { mediaId } = await upload(h, TINY_PNG, { contentType: 'image/png' });
    const res = await get(dl(mediaId));
    expect(res.headers.get('content-security-policy')).toBe(MEDIA_CONTENT_SECURITY_POLICY);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    const legacy = await get(legacyDl(mediaId), {});
    expect(legacy.headers.get('cache-control')).toMatch(/^public/);
    const err = await get(dl('nope'));
    expect(err.headers.get('content-security-policy')).toBe(MEDIA_CONTENT_SECURITY_POLICY);
    expect(err.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('Content-Disposition', () => {
  it.each([
    ['image/png', 'cat.png', 'inline; filename=cat.png'],
    ['text/plain; charset=utf-8', 'a b.txt', 'inline; filename="a b.txt"'],
    ['text/html', 'page.html', 'attachment; filename=page.html'],
    ['image/svg+xml', 'logo.svg', 'attachment; filename=logo.svg'],
    ['application/pdf', undefined, 'attachment'],
    ['video/mp4', 'Ünïcødé.mp4', "inline; filename*=utf-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9.mp4"],
    ['image/jpeg', 'say "hi".jpg', 'inline; filename="say \\"hi\\".jpg"'],
    ['image/jpeg', '猫 🐈.jpg', "inline; filename*=utf-8''%E7%8C%AB%20%F0%9F%90%88.jpg"],
  ])('%s named %s → %s', async (contentType, filename, expected) => {
    const { mediaId } = await upload(h, 'x', { contentType, ...(filename === undefined ? {} : { filename }) });
    const res = await get(dl(mediaId));
    expect(res.headers.get('content-disposition')).toBe(expected);
  });

  it('decodes the filename query as form data: + is a space, empty means none', async () => {
    const plus = await upload(h, 'x', { contentType: 'text/plain', query: '?filename=War+and%20Peace.txt' });
    expect((await get(dl(plus.mediaId))).headers.get('content-disposition')).toBe('inline; filename="War and Peace.txt"');
    const empty = await upload(h, 'x', { contentType: 'text/plain', query: '?filename=' });
    expect((await get(dl(empty.mediaId))).headers.get('content-disposition')).toBe('inline');
  });

  it('uses the /{fileName} path segment over the stored name', async () => {
    const { mediaId } = await upload(h, 'x', { contentType: 'image/jpeg', filename: 'cat.png' });
    const res = await get(dl(mediaId, '/other.jpg'));
    expect(res.headers.get('content-disposition')).toBe('inline; filename=other.jpg');
    const encoded = await get(dl(mediaId, `/${encodeURIComponent('my "file" ü.jpg')}`));
    expect(encoded.headers.get('content-disposition')).toBe("inline; filename*=utf-8''my%20%22file%22%20%C3%BC.jpg");
    const legacy = await get(legacyDl(mediaId, '/l.jpg'), {});
    expect(legacy.headers.get('content-disposition')).toBe('inline; filename=l.jpg');
  });

  it('refuses filenames with control characters at upload', async () => {
    const res = await fetch(`${h.url}/_matrix/media/v3/upload?filename=a%0Ab`, { method: 'POST', headers: ALICE, body: 'x' });
    await expectError(res, 400, 'M_INVALID_PARAM');
    expect(await h.blobFiles()).toEqual([]);
  });
});

describe('conditional and partial requests', () => {
  it('sends a strong ETag from the SHA-256 and answers 304 to If-None-Match', async () => {
    const bytes = binaryBytes(1000);
    const { mediaId } = await upload(h, bytes, { contentType: 'image/png' });
    const res = await get(dl(mediaId));
    const etag = res.headers.get('etag');
    expect(etag).toBe(`"${createHash('sha256').update(bytes).digest('hex')}"`);
    const again = await get(dl(mediaId), { ...ALICE, 'If-None-Match': `"other", ${etag}` });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect((await again.arrayBuffer()).byteLength).toBe(0);
    const weak = await get(dl(mediaId), { ...ALICE, 'If-None-Match': `W/${etag}` });
    expect(weak.status).toBe(304);
    const miss = await get(dl(mediaId), { ...ALICE, 'If-None-Match': '"nope"' });
    expect(miss.status).toBe(200);
  });

  it.each([
    ['small (memory)', 1000],
    ['large (stream)', 200_000],
  ])('serves single ranges with 206 for %s media', async (_label, size) => {
    const bytes = binaryBytes(size, 9);
    const { mediaId } = await upload(h, bytes, { contentType: 'video/mp4' });
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 9],
      ['bytes=10-', 10, size - 1],
      ['bytes=-5', size - 5, size - 1],
      [`bytes=5-${size * 10}`, 5, size - 1],
    ];
    for (const [range, start, end] of cases) {
      for (let pass = 0; pass < 2; pass++) {
        const res = await get(dl(mediaId), { ...ALICE, Range: range });
        expect(res.status).toBe(206);
        expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`);
        expect(res.headers.get('content-length')).toBe(String(end - start + 1));
        const body = new Uint8Array(await res.arrayBuffer());
        expect(Buffer.compare(body, bytes.subarray(start, end + 1))).toBe(0);
      }
    }
  });

  it('answers 416 with Content-Range: bytes */size for unsatisfiable ranges', async () => {
    const { mediaId } = await upload(h, binaryBytes(100), { contentType: 'video/mp4' });
    for (const range of ['bytes=100-', 'bytes=500-600', 'bytes=-0']) {
      const res = await get(dl(mediaId), { ...ALICE, Range: range });
      expect(res.status).toBe(416);
      expect(res.headers.get('content-range')).toBe('bytes */100');
      expect(res.headers.get('content-disposition')).toBeNull();
      await res.body?.cancel();
    }
  });

  it('serves the whole file (200) for multiple, malformed or stale-If-Range ranges', async () => {
    const bytes = binaryBytes(100);
    const { mediaId } = await upload(h, bytes, { contentType: 'video/mp4' });
    for (const headers of [
      { Range: 'bytes=0-1,5-6' },
      { Range: 'items=0-1' },
      { Range: 'bytes=5-2' },
      { Range: 'bytes=0-1', 'If-Range': '"stale"' },
    ]) {
      const res = await get(dl(mediaId), { ...ALICE, ...headers });
      expect(res.status).toBe(200);
      expect(Buffer.compare(new Uint8Array(await res.arrayBuffer()), bytes)).toBe(0);
    }
  });

  it('answers HEAD with headers and no body', async () => {
    const { mediaId } = await upload(h, binaryBytes(300_000), { contentType: 'image/png', filename: 'x.png' });
    const res = await get(dl(mediaId), ALICE, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('300000');
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-disposition')).toBe('inline; filename=x.png');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });
});

describe('authentication', () => {
  it('checks the token before anything else, even for malformed IDs', async () => {
    for (const path of [dl('valid_id'), dl('..'), dl('.'), dl('a%2Fb'), dl('%00'), dl('x'.repeat(300)), '/_matrix/client/v1/media/download/bad%2Fserver/x']) {
      const anonymous = await raw(`GET ${path} HTTP/1.1`);
      expect([anonymous.status, anonymous.json['errcode']]).toEqual([401, 'M_MISSING_TOKEN']);
      const wrong = await raw(`GET ${path} HTTP/1.1\r\nAuthorization: Bearer wrong`);
      expect([wrong.status, wrong.json['errcode']]).toEqual([401, 'M_UNKNOWN_TOKEN']);
    }
    await expectError(await get('/_matrix/client/v1/media/config', {}), 401, 'M_MISSING_TOKEN');
    const up = await fetch(`${h.url}/_matrix/media/v3/upload`, { method: 'POST', body: 'x' });
    await expectError(up, 401, 'M_MISSING_TOKEN');
    expect(await h.mediaRows()).toBe(0);
  });

  it('accepts the deprecated access_token query parameter', async () => {
    const { mediaId } = await upload(h, 'hello', { contentType: 'text/plain' });
    const res = await get(`${dl(mediaId)}?access_token=alice_token`, {});
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello');
  });

  it('lets guests download but not read the config or upload', async () => {
    const { mediaId } = await upload(h, 'hello', { contentType: 'text/plain' });
    expect((await get(dl(mediaId), GUEST)).status).toBe(200);
    await expectError(await get('/_matrix/client/v1/media/config', GUEST), 403, 'M_GUEST_ACCESS_FORBIDDEN');
    await expectError(await get('/_matrix/media/v3/config', GUEST), 403, 'M_GUEST_ACCESS_FORBIDDEN');
    const up = await fetch(`${h.url}/_matrix/media/v3/upload`, { method: 'POST', headers: GUEST, body: 'x' });
    await expectError(up, 403, 'M_GUEST_ACCESS_FORBIDDEN');
  });
});

describe('config', () => {
  it('advertises m.upload.size on the client and legacy paths', async () => {
    for (const path of ['/_matrix/client/v1/media/config', '/_matrix/media/v3/config', '/_matrix/media/r0/config']) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ 'm.upload.size': 2 * 1024 * 1024 });
    }
  });
});

describe('legacy endpoints and the freeze', () => {
  it('serves media without a token, and through the r0/v1 aliases', async () => {
    const { mediaId } = await upload(h, 'legacy', { contentType: 'text/plain' });
    for (const version of ['v3', 'r0', 'v1']) {
      const res = await get(`/_matrix/media/${version}/download/${SERVER_NAME}/${mediaId}`, {});
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('legacy');
    }
  });

  it('hides media stored while frozen, keeps serving media from before', async () => {
    const before = await upload(h, 'old', { contentType: 'text/plain' });
    const frozen = await startHarness({ freezeLegacy: true });
    try {
      // Same stores, new service with the freeze on: as after a config change and restart.
      const { MediaService } = await import('@hsmedia/media-core');
      const media = new MediaService({ serverName: SERVER_NAME, blobs: h.blobs, metadata: h.metadata, maxUploadBytes: 1024, freezeLegacy: true });
      const after = await media.upload({
        body: (async function* () {
          yield new TextEncoder().encode('new');
        })(),
        contentType: 'text/plain',
        requester: { userId: '@alice:media.test', isGuest: false },
      });
      await media.close();
      expect((await get(legacyDl(before.mediaId), {})).status).toBe(200);
      await expectError(await get(legacyDl(after.mediaId), {}), 404, 'M_NOT_FOUND');
      const auth = await get(dl(after.mediaId));
      expect(auth.status).toBe(200);
      expect(await auth.text()).toBe('new');
      // and through HTTP on a frozen server
      const viaHttp = await upload(frozen, 'fresh', { contentType: 'text/plain' });
      await expectError(await fetch(`${frozen.url}${legacyDl(viaHttp.mediaId)}`), 404, 'M_NOT_FOUND');
      expect((await fetch(`${frozen.url}${dl(viaHttp.mediaId)}`, { headers: ALICE })).status).toBe(200);
    } finally {
      await frozen.close();
    }
  });

  it('parses allow_remote and timeout_ms', async () => {
    const { mediaId } = await upload(h, 'x', { contentType: 'text/plain' });
    expect((await get(`${legacyDl(mediaId)}?allow_remote=false&allow_redirect=true`, {})).status).toBe(200);
    await expectError(await get(`${legacyDl(mediaId)}?allow_remote=maybe`, {}), 400, 'M_INVALID_PARAM');
    await expectError(await get(`${legacyDl(mediaId)}?timeout_ms=-1`, {}), 400, 'M_INVALID_PARAM');
    await expectError(await get(`${dl(mediaId)}?timeout_ms=soon`), 400, 'M_INVALID_PARAM');
    expect((await get(`${dl(mediaId)}?timeout_ms=5000`)).status).toBe(200);
    await expectError(await get('/_matrix/media/v3/download/other.example/abc?allow_remote=false', {}), 404, 'M_NOT_FOUND');
  });
});

describe('unknown endpoints and wrong methods', () => {
  it.each([
    '/_matrix/media/v3/unknown',
    '/_matrix/media/v3/thumbnail_x/a/b',
    '/_matrix/client/v1/media/nope',
    '/_matrix/client/v1/media/download/a',
    '/_matrix/federation/v1/media/download/abc',
    '/_matrix/media/v4/upload',
    '/',
  ])('404 M_UNRECOGNIZED for %s', async (path) => {
    await expectError(await get(path), 404, 'M_UNRECOGNIZED');
  });

  it.each([
    ['GET', '/_matrix/media/v3/upload', 'POST'],
    ['PUT', '/_matrix/media/v3/upload', 'POST'],
    ['POST', `/_matrix/client/v1/media/download/${SERVER_NAME}/abc`, 'GET, HEAD'],
    ['DELETE', '/_matrix/client/v1/media/config', 'GET, HEAD'],
    ['POST', '/_matrix/media/v3/config', 'GET, HEAD'],
    ['PATCH', `/_matrix/media/v3/download/${SERVER_NAME}/abc`, 'GET, HEAD'],
  ])('405 M_UNRECOGNIZED for %s %s, with Allow: %s', async (method, path, allow) => {
    const res = await get(path, ALICE, method);
    // RFC 9110 §15.5.6: a 405 names the methods the resource supports.
    expect(res.headers.get('allow')).toBe(allow);
    await expectError(res, 405, 'M_UNRECOGNIZED');
  });

  it('answers OPTIONS without running endpoint logic', async () => {
    const res = await fetch(`${h.url}/_matrix/media/v3/upload`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-headers')).toBe('X-Requested-With, Content-Type, Authorization');
    expect(await h.mediaRows()).toBe(0);
  });
});

describe('hostile identifiers never reach storage', () => {
  it.each([
    ['..', 404, 'M_NOT_FOUND'],
    ['.', 404, 'M_NOT_FOUND'],
    ['a%2Fb', 404, 'M_NOT_FOUND'],
    ['..%2F..%2Fetc%2Fpasswd', 404, 'M_NOT_FOUND'],
    ['%00', 404, 'M_NOT_FOUND'],
    ['a%00b', 404, 'M_NOT_FOUND'],
    ['x'.repeat(300), 404, 'M_NOT_FOUND'],
    ['%E2%80%AE', 404, 'M_NOT_FOUND'],
    ['%ZZ', 404, 'M_NOT_FOUND'],
  ])('media ID %s → %i %s', async (mediaId, status, errcode) => {
    let reads = 0;
    const original = h.metadata.getMedia.bind(h.metadata);
    h.metadata.getMedia = async (...args) => {
      reads++;
      return original(...args);
    };
    const authenticated = await raw(`GET ${dl(mediaId)} HTTP/1.1\r\nAuthorization: Bearer alice_token`);
    expect([authenticated.status, authenticated.json['errcode']]).toEqual([status, errcode]);
    const legacy = await raw(`GET ${legacyDl(mediaId)} HTTP/1.1`);
    expect([legacy.status, legacy.json['errcode']]).toEqual([status, errcode]);
    expect(reads).toBe(0);
  });

  it.each(['bad%2Fserver', 'a%00b', 'exa mple.org', 'x'.repeat(300), 'host:99999'])(
    'server name %s → 400 M_INVALID_PARAM',
    async (serverName) => {
      let reads = 0;
      const original = h.metadata.getMedia.bind(h.metadata);
      h.metadata.getMedia = async (...args) => {
        reads++;
        return original(...args);
      };
      await expectError(await get(`/_matrix/client/v1/media/download/${serverName}/abc`), 400, 'M_INVALID_PARAM');
      await expectError(await get(`/_matrix/media/v3/download/${serverName}/abc`, {}), 400, 'M_INVALID_PARAM');
      expect(reads).toBe(0);
    },
  );

  it('refuses an overlong /{fileName}', async () => {
    const { mediaId } = await upload(h, 'x', { contentType: 'text/plain' });
    await expectError(await get(dl(mediaId, `/${'n'.repeat(300)}`)), 400, 'M_INVALID_PARAM');
  });
});

describe('remote server names', () => {
  it('404 M_NOT_FOUND without a remote media source (never a crash)', async () => {
    await expectError(await get('/_matrix/client/v1/media/download/other.example/abc'), 404, 'M_NOT_FOUND');
    await expectError(await get('/_matrix/client/v1/media/download/other.example:8448/abc/f.png'), 404, 'M_NOT_FOUND');
    await expectError(await get('/_matrix/media/v3/download/[::1]:8448/abc', {}), 404, 'M_NOT_FOUND');
  });
});

describe('upload limits and crash safety', () => {
  async function nothingStored(): Promise<void> {
    expect(await h.mediaRows()).toBe(0);
    expect(await h.blobFiles()).toEqual([]);
  }

  /** POSTs with node:http so the test controls framing; resolves with the response, if any arrives. */
  function rawUpload(
    headers: Record<string, string>,
    write: (req: ReturnType<typeof request>) => void,
  ): Promise<{ status: number; body: string }> {
    const { port } = new URL(h.url);
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/_matrix/media/v3/upload', headers: { ...ALICE, ...headers } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('error', () => {
        // the server may close its side while we are still writing; the response (if any) wins
      });
      write(req);
    });
  }

  it('refuses at once when Content-Length exceeds the limit', async () => {
    const res = await rawUpload({ 'Content-Length': String(10 * 1024 * 1024) }, (req) => {
      req.write(Buffer.alloc(1024));
      // never finishes the body: the answer must not wait for it
    });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).errcode).toBe('M_TOO_LARGE');
    await nothingStored();
  });

  it('enforces the limit while streaming a chunked body', async () => {
    const chunk = Buffer.alloc(256 * 1024, 1);
    const res = await rawUpload({ 'Transfer-Encoding': 'chunked' }, (req) => {
      let sent = 0;
      const pump = (): void => {
        while (sent < 12) {
          sent++;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).errcode).toBe('M_TOO_LARGE');
    await nothingStored();
  });

  it('enforces the limit when Content-Length lies low', async () => {
    // Node's parser reads exactly Content-Length bytes, so a lie can only shorten the body:
    // the upload is what was declared, and the rest is never read as this request.
    const res = await rawUpload({ 'Content-Length': '10' }, (req) => req.end(Buffer.alloc(3 * 1024 * 1024)));
    expect([200, 400]).toContain(res.status);
    if (res.status === 200) {
      const id = (JSON.parse(res.body) as { content_uri: string }).content_uri.split('/').pop()!;
      const served = await get(dl(id));
      expect((await served.arrayBuffer()).byteLength).toBe(10);
    }
  });

  it('accepts exactly the limit and refuses one byte more (fetch, streamed body)', async () => {
    const limit = 2 * 1024 * 1024;
    const ok = await upload(h, binaryBytes(limit), { contentType: 'application/octet-stream' });
    expect(ok.mediaId).toMatch(/^[A-Za-z0-9_-]+$/);
    const over = binaryBytes(limit + 1);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < over.length; i += 65536) controller.enqueue(over.subarray(i, i + 65536));
        controller.close();
      },
    });
    const res = await fetch(`${h.url}/_matrix/media/v3/upload`, { method: 'POST', headers: ALICE, body, duplex: 'half' } as RequestInit).catch(
      () => null,
    );
    if (res) await expectError(res, 413, 'M_TOO_LARGE');
    expect(await h.mediaRows()).toBe(1);
    expect(await h.blobFiles()).toHaveLength(1);
  });

  it('leaves no row and no blob when the client disconnects mid-upload', async () => {
    const { port } = new URL(h.url);
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/_matrix/media/v3/upload?filename=partial.bin',
      headers: { ...ALICE, 'Content-Length': String(1024 * 1024) },
    });
    req.on('error', () => {});
    req.write(Buffer.alloc(300 * 1024, 2));
    // Wait until the server has started a staging file, then vanish.
    for (let i = 0; i < 200 && (await h.blobFiles()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await h.blobFiles()).length).toBeGreaterThan(0);
    req.destroy();
    for (let i = 0; i < 200 && (await h.blobFiles()).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await nothingStored();
    // and the server still works
    const { mediaId } = await upload(h, 'after', { contentType: 'text/plain' });
    expect(await (await get(dl(mediaId))).text()).toBe('after');
  });

  it('refuses a Content-Type with non-ASCII bytes', async () => {
    // Node's parser already refuses C0 controls; bytes ≥ 0x80 get through and must be refused by us.
    const res = await raw(
      'POST /_matrix/media/v3/upload HTTP/1.1\r\nAuthorization: Bearer alice_token\r\nContent-Type: text/pl\xe4in\r\nContent-Length: 1',
      'x',
    );
    expect([res.status, res.json['errcode']]).toEqual([400, 'M_INVALID_PARAM']);
    await nothingStored();
  });
});

describe('downloads that the client abandons', () => {
  it('keep the server healthy', async () => {
    const bytes = binaryBytes(1024 * 1024, 5);
    const { mediaId } = await upload(h, bytes, { contentType: 'video/mp4' });
    const { port } = new URL(h.url);
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: dl(mediaId), headers: ALICE }, (res) => {
          res.once('data', () => {
            res.destroy();
            resolve();
          });
        });
        req.on('error', () => {});
        req.end();
      });
    }
    const res = await get(dl(mediaId));
    expect(Buffer.compare(new Uint8Array(await res.arrayBuffer()), bytes)).toBe(0);
  });
});
