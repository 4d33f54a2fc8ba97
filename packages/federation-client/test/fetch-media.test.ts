import { RemoteMediaError } from '@hsmedia/media-core';
import { BlockedAddressError, createAddressPolicy } from '@hsmedia/net-guard';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FederationClient, FederationError, type FederationClientOptions } from '../src/index.js';
import {
  closedPort,
  failureOf,
  INLINE_BODY,
  INLINE_TAIL,
  inlineHead,
  json,
  locationBody,
  loopbackLookup,
  MULTIPART_TYPE,
  ORIGIN,
  readText,
  signingKey,
  startRemote,
  verifySignature,
  type ScriptedRemote,
  remoteFailure,
} from './helpers.js';

const V1 = '/_matrix/federation/v1/media/download/abc';
const LEGACY = '/_matrix/media/v3/download/remote.test/abc';
const REQUEST = { serverName: 'remote.test', mediaId: 'abc', maxBytes: 1024, timeoutMs: 20_000 } as const;

let remote: ScriptedRemote;
let client: FederationClient;

function makeClient(overrides: Partial<FederationClientOptions> = {}): FederationClient {
  return new FederationClient({
    serverName: ORIGIN,
    signingKey,
    addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
    destinations: { 'remote.test': remote.base },
    lookup: loopbackLookup(),
    ...overrides,
  });
}

function paths(): string[] {
  return remote.seen.map((r) => r.url);
}

beforeAll(async () => {
  remote = await startRemote();
});
afterAll(async () => {
  await remote.close();
});
afterEach(() => {
  client?.close();
  remote.routes.clear();
  remote.seen.length = 0;
});

describe('fetchMedia over /_matrix/federation/v1/media/download', () => {
  it('decodes the inline format and signs the request', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE, 'Content-Length': Buffer.byteLength(INLINE_BODY) });
      res.end(INLINE_BODY);
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(media.contentType).toBe('text/plain');
    expect(media.contentDisposition).toBe('inline; filename=hello.txt');
    expect(await readText(media.body)).toBe('Hello, world!\n');

    expect(paths()).toEqual([`${V1}?timeout_ms=20000`]);
    const [seen] = remote.seen;
    expect(seen!.headers.authorization).toMatch(
      /^X-Matrix origin="origin\.test",destination="remote\.test",key="ed25519:test",sig="[A-Za-z0-9+/]+"$/,
    );
    expect(verifySignature(seen!, 'remote.test')).toBe(true);
    expect(seen!.headers.host).toBe(`127.0.0.1:${remote.port}`);
  });

  it('follows a Location part with an unsigned GET', async () => {
    remote.routes.set(V1, (_req, res) => {
      const body = locationBody(`${remote.base}/cdn/hello.txt?sig=1`);
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(body);
    });
    remote.routes.set('/cdn/hello.txt', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Disposition': 'inline; filename="cdn.txt"', 'Content-Length': 3 });
      res.end('cdn');
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(media).toMatchObject({ contentType: 'text/plain', contentDisposition: 'inline; filename="cdn.txt"', contentLength: 3 });
    expect(await readText(media.body)).toBe('cdn');
    expect(paths()).toEqual([`${V1}?timeout_ms=20000`, '/cdn/hello.txt?sig=1']);
    expect(remote.seen[1]!.headers.authorization).toBeUndefined();
  });

  it('follows a few redirects from the Location target, then gives up', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(locationBody(`${remote.base}/hop/0`));
    });
    for (let i = 0; i < 10; i++) {
      remote.routes.set(`/hop/${i}`, (_req, res) => {
        res.writeHead(302, { Location: `/hop/${i + 1}` });
        res.end();
      });
    }
    remote.routes.set('/hop/3', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.end('png');
    });
    client = makeClient();
    expect(await readText((await client.fetchMedia(REQUEST)).body)).toBe('png');

    client.close();
    client = makeClient({ maxRedirects: 2 });
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error.code).toBe('bad_response');
    expect(error.message).toMatch(/too many redirects/);
  });

  it('refuses a Location pointing at a loopback address that is not allow-listed', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(locationBody(`http://127.0.0.2:${remote.port}/cdn/secret`));
    });
    client = makeClient();
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error.code).toBe('unreachable');
    expect((error.cause as FederationError).cause).toBeInstanceOf(BlockedAddressError);
    expect(paths()).toEqual([`${V1}?timeout_ms=20000`]);
  });

  it('refuses a Location whose host name resolves to a refused address (checked at connect time)', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(locationBody(`http://cdn.remote.test:${remote.port}/cdn/secret`));
    });
    client = makeClient({ lookup: loopbackLookup('127.0.0.2') });
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error.code).toBe('unreachable');
    expect(error.message).toMatch(/cdn\.remote\.test \(127\.0\.0\.2\).*loopback/);
  });

  it('refuses the remote itself when its address is not allowed', async () => {
    client = makeClient({ addressPolicy: createAddressPolicy() });
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error.code).toBe('unreachable');
    expect(remote.seen).toHaveLength(0);
  });
});

describe('fallback to the legacy endpoint', () => {
  function serveLegacy(): void {
    remote.routes.set(LEGACY, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/gif', 'Content-Disposition': 'inline; filename="a.gif"', 'Content-Length': 6 });
      res.end('GIF89a');
    });
  }

  it('falls back on 404 M_UNRECOGNIZED and reads the bytes from /_matrix/media/v3/download', async () => {
    serveLegacy(); // v1 is not routed: the scripted remote answers 404 M_UNRECOGNIZED
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(media).toMatchObject({ contentType: 'image/gif', contentDisposition: 'inline; filename="a.gif"', contentLength: 6 });
    expect(await readText(media.body)).toBe('GIF89a');
    expect(paths()).toEqual([
      `${V1}?timeout_ms=20000`,
      `${LEGACY}?allow_remote=false&timeout_ms=20000&allow_redirect=true`,
    ]);
    expect(verifySignature(remote.seen[1]!, 'remote.test')).toBe(true);
  });

  it.each([
    ['405 M_UNRECOGNIZED', 405, JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'x' })],
    ['404 with a non-JSON body', 404, '<html>Not Found</html>'],
    ['404 with an empty body', 404, ''],
    ['405 with a non-JSON body', 405, 'Method Not Allowed'],
    ['400 M_UNRECOGNIZED', 400, JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'x' })],
  ])('falls back on %s', async (_name, status, body) => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(status, { 'Content-Type': body.startsWith('{') ? 'application/json' : 'text/html' });
      res.end(body);
    });
    serveLegacy();
    client = makeClient();
    expect(await readText((await client.fetchMedia(REQUEST)).body)).toBe('GIF89a');
    expect(remote.seen).toHaveLength(2);
  });

  it('reads no more than 64 KiB of an error body (a huge 404 page counts as non-JSON)', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(`{"errcode":"M_NOT_FOUND","pad":"${'p'.repeat(200_000)}"}`);
    });
    serveLegacy();
    client = makeClient();
    expect(await readText((await client.fetchMedia({ ...REQUEST, maxBytes: 10_000_000 })).body)).toBe('GIF89a');
  });

  it('does not fall back on 400 plain text: bad_response', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end('Bad Request');
    });
    serveLegacy();
    client = makeClient();
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error).toMatchObject({ code: 'bad_response', remoteStatus: 400, remoteErrcode: undefined });
    expect(paths()).toEqual([`${V1}?timeout_ms=20000`]);
  });

  it('does not fall back on 404 M_NOT_FOUND: not_found', async () => {
    remote.routes.set(V1, (_req, res) => json(res, 404, { errcode: 'M_NOT_FOUND', error: 'Not found' }));
    serveLegacy();
    client = makeClient();
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error).toMatchObject({ code: 'not_found', remoteStatus: 404, remoteErrcode: 'M_NOT_FOUND' });
    expect(paths()).toEqual([`${V1}?timeout_ms=20000`]);
  });

  it('maps a legacy 404 to not_found', async () => {
    remote.routes.set(LEGACY, (_req, res) => json(res, 404, { errcode: 'M_NOT_FOUND', error: 'Not found' }));
    client = makeClient();
    expect(await remoteFailure(client.fetchMedia(REQUEST))).toMatchObject({ code: 'not_found', remoteStatus: 404 });
  });

  it('follows a legacy 307 with an unsigned GET', async () => {
    remote.routes.set(LEGACY, (_req, res) => {
      res.writeHead(307, { Location: `${remote.base}/cdn/x` });
      res.end();
    });
    remote.routes.set('/cdn/x', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('redirected');
    });
    client = makeClient();
    expect(await readText((await client.fetchMedia(REQUEST)).body)).toBe('redirected');
    expect(remote.seen[2]!.headers.authorization).toBeUndefined();
  });

  it('goes straight to the legacy endpoint with legacyOnly', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(INLINE_BODY);
    });
    serveLegacy();
    client = makeClient();
    expect(await readText((await client.fetchMedia({ ...REQUEST, legacyOnly: true })).body)).toBe('GIF89a');
    expect(paths()).toEqual([`${LEGACY}?allow_remote=false&timeout_ms=20000&allow_redirect=true`]);
  });
});

describe('bodies cut short, too large, malformed', () => {
  it('errors the body stream when the remote dies mid-body (Content-Length)', async () => {
    remote.routes.set(V1, (req, res) => {
      const head = inlineHead();
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE, 'Content-Length': head.length + 500 + INLINE_TAIL.length });
      res.write(head + 'x'.repeat(100), () => setImmediate(() => req.socket.destroy()));
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    const error = await failureOf(readText(media.body));
    expect(error).toBeInstanceOf(RemoteMediaError);
    expect((error as RemoteMediaError).code).toBe('bad_response');
  });

  it('errors the body stream when a chunked multipart body ends before its closing delimiter', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(inlineHead() + 'partial');
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    const error = await failureOf(readText(media.body));
    expect(error).toMatchObject({ code: 'bad_response' });
  });

  it('errors a legacy body cut short', async () => {
    remote.routes.set(LEGACY, (req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': 900 });
      res.write('x'.repeat(100), () => setImmediate(() => req.socket.destroy()));
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(await failureOf(readText(media.body))).toMatchObject({ code: 'bad_response' });
  });

  it('refuses a v1 body whose Content-Length exceeds the limit before reading it', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE, 'Content-Length': 10 * 1024 * 1024 });
      res.write(inlineHead());
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchMedia(REQUEST))).toMatchObject({ code: 'too_large' });
  });

  it('errors the stream once a chunked multipart body passes the limit', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(inlineHead() + 'y'.repeat(5000) + INLINE_TAIL);
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(await failureOf(readText(media.body))).toMatchObject({ code: 'too_large' });
  });

  it('refuses an oversized legacy body by Content-Length and while streaming', async () => {
    remote.routes.set(LEGACY, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': 5000 });
      res.end('z'.repeat(5000));
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchMedia(REQUEST))).toMatchObject({ code: 'too_large' });

    remote.routes.set(LEGACY, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.end('z'.repeat(5000));
    });
    const media = await client.fetchMedia(REQUEST);
    expect(await failureOf(readText(media.body))).toMatchObject({ code: 'too_large' });
  });

  it('errors the stream once a Location target passes the limit', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(locationBody(`${remote.base}/cdn/big`));
    });
    remote.routes.set('/cdn/big', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'video/mp4' });
      res.end('v'.repeat(4096));
    });
    client = makeClient();
    const media = await client.fetchMedia(REQUEST);
    expect(await failureOf(readText(media.body))).toMatchObject({ code: 'too_large' });
  });

  it('refuses a 200 that is not multipart/mixed', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.end('png');
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchMedia(REQUEST))).toMatchObject({ code: 'bad_response' });
  });

  it('refuses a malformed multipart body', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(`--6f1b0e0c3c5e4a5b9d2f7a8e1c4b3d2a\r\nContent-Type: application/json\r\n\r\n[1]\r\n--6f1b0e0c3c5e4a5b9d2f7a8e1c4b3d2a--\r\n`);
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchMedia(REQUEST))).toMatchObject({ code: 'bad_response' });
  });
});

describe('remote errors and slow remotes', () => {
  it.each([
    [500, { errcode: 'M_UNKNOWN', error: 'boom' }, 'bad_response'],
    [502, { errcode: 'M_TOO_LARGE', error: 'too big' }, 'too_large'],
    [504, { errcode: 'M_NOT_YET_UPLOADED', error: 'later' }, 'timeout'],
    [403, { errcode: 'M_FORBIDDEN', error: 'no' }, 'forbidden'],
    [429, { errcode: 'M_LIMIT_EXCEEDED', error: 'slow down' }, 'bad_response'],
  ] as const)('maps a remote %i to %s (never passed through)', async (status, body, failure) => {
    remote.routes.set(V1, (_req, res) => json(res, status, body));
    client = makeClient();
    const error = await remoteFailure(client.fetchMedia(REQUEST));
    expect(error).toMatchObject({ code: failure, remoteStatus: status, remoteErrcode: body.errcode });
  });

  it('times out when the remote never answers', async () => {
    remote.routes.set(V1, () => {
      // never respond
    });
    client = makeClient({ timeouts: { idleMs: 150 } });
    const error = await remoteFailure(client.fetchMedia({ ...REQUEST, timeoutMs: 0 }));
    expect(error.code).toBe('timeout');
    expect(paths()).toEqual([`${V1}?timeout_ms=0`]);
  });

  it('errors the stream with timeout when the remote stalls mid-body', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.write(inlineHead() + 'first bytes');
    });
    client = makeClient({ timeouts: { idleMs: 150 } });
    const media = await client.fetchMedia({ ...REQUEST, timeoutMs: 0 });
    expect(await failureOf(readText(media.body))).toMatchObject({ code: 'timeout' });
  });

  it('reports a closed port as unreachable', async () => {
    client = makeClient({ destinations: { 'remote.test': `http://127.0.0.1:${await closedPort()}` } });
    expect(await remoteFailure(client.fetchMedia(REQUEST))).toMatchObject({ code: 'unreachable' });
  });

  it('rejects an invalid media ID without any request', async () => {
    client = makeClient();
    expect(await remoteFailure(client.fetchMedia({ ...REQUEST, mediaId: '../etc' }))).toMatchObject({ code: 'not_found' });
    expect(remote.seen).toHaveLength(0);
  });

  it('rejects with the abort reason when the caller aborts', async () => {
    remote.routes.set(V1, () => {
      // never respond
    });
    client = makeClient();
    const controller = new AbortController();
    const pending = client.fetchMedia({ ...REQUEST, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('client went away')), 20);
    expect(await failureOf(pending)).toMatchObject({ message: 'client went away' });
  });
});

describe('getJson', () => {
  it('sends a signed GET and parses the JSON answer', async () => {
    remote.routes.set('/_matrix/federation/v1/version', (_req, res) => json(res, 200, { server: { name: 'x' } }));
    client = makeClient();
    expect(await client.getJson('remote.test', '/_matrix/federation/v1/version')).toEqual({ server: { name: 'x' } });
    expect(verifySignature(remote.seen[0]!, 'remote.test')).toBe(true);
  });

  it('throws FederationError with the remote status and errcode', async () => {
    client = makeClient();
    const error = await failureOf(client.getJson('remote.test', '/_matrix/federation/v1/nope'));
    expect(error).toBeInstanceOf(FederationError);
    expect(error).toMatchObject({ code: 'remote_error', remoteStatus: 404, remoteErrcode: 'M_UNRECOGNIZED' });
  });

  it('refuses a response over maxBytes', async () => {
    remote.routes.set('/big', (_req, res) => json(res, 200, { pad: 'p'.repeat(5000) }));
    client = makeClient();
    expect(await failureOf(client.getJson('remote.test', '/big', { maxBytes: 100 }))).toMatchObject({ code: 'too_large' });
  });
});
