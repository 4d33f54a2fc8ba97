import { createAddressPolicy } from '@hsmedia/net-guard';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FederationClient, type FederationClientOptions, type FederationThumbnailRequest } from '../src/index.js';
import {
  BOUNDARY,
  failureOf,
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

const V1 = '/_matrix/federation/v1/media/thumbnail/abc';
const LEGACY = '/_matrix/media/v3/thumbnail/remote.test/abc';
const REQUEST: FederationThumbnailRequest = {
  serverName: 'remote.test',
  mediaId: 'abc',
  width: 96,
  height: 64,
  method: 'crop',
  animated: false,
  maxBytes: 1024,
  timeoutMs: 20_000,
};
const V1_URL = `${V1}?width=96&height=64&method=crop&animated=false&timeout_ms=20000`;
const LEGACY_URL = `${LEGACY}?width=96&height=64&method=crop&animated=false&allow_remote=false&timeout_ms=20000&allow_redirect=true`;
/** Not a real PNG: the client checks the declared type only; the caller probes the bytes. */
const PNG_BYTES = '\x89PNG-thumbnail';

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

function inlineThumbnail(type: string, bytes: string): string {
  return (
    `\r\n--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\n` +
    `Content-Type: ${type}\r\nContent-Disposition: inline; filename="thumbnail.png"\r\n\r\n${bytes}${INLINE_TAIL}`
  );
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

describe('fetchThumbnail over /_matrix/federation/v1/media/thumbnail', () => {
  it('asks for the size in a fixed query order, signs the exact URI and decodes the inline part', async () => {
    remote.routes.set(V1, (_req, res) => {
      const body = inlineThumbnail('image/png', PNG_BYTES);
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE, 'Content-Length': Buffer.byteLength(body, 'latin1') });
      res.end(body, 'latin1');
    });
    client = makeClient();
    const media = await client.fetchThumbnail(REQUEST);
    expect(media.contentType).toBe('image/png');
    expect(media.contentDisposition).toBe('inline; filename="thumbnail.png"');
    expect(Buffer.from(await new Response(media.body).arrayBuffer()).toString('latin1')).toBe(PNG_BYTES);
    expect(paths()).toEqual([V1_URL]);
    expect(verifySignature(remote.seen[0]!, 'remote.test')).toBe(true);
  });

  it('sends animated=true and scale as asked', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(inlineThumbnail('image/webp', 'RIFF....WEBP'));
    });
    client = makeClient();
    const media = await client.fetchThumbnail({ ...REQUEST, width: 800, height: 600, method: 'scale', animated: true, timeoutMs: 1234.9 });
    expect(await readText(media.body)).toBe('RIFF....WEBP');
    expect(paths()).toEqual([`${V1}?width=800&height=600&method=scale&animated=true&timeout_ms=1234`]);
    expect(verifySignature(remote.seen[0]!, 'remote.test')).toBe(true);
  });

  it('follows a Location part with an unsigned GET; the type comes from that response', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(locationBody(`${remote.base}/cdn/thumb?sig=1`));
    });
    remote.routes.set('/cdn/thumb', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': 4 });
      res.end('jpeg');
    });
    client = makeClient();
    const media = await client.fetchThumbnail(REQUEST);
    expect(media).toMatchObject({ contentType: 'image/jpeg', contentLength: 4 });
    expect(await readText(media.body)).toBe('jpeg');
    expect(paths()).toEqual([V1_URL, '/cdn/thumb?sig=1']);
    expect(remote.seen[1]!.headers.authorization).toBeUndefined();
  });

  it('refuses a Location target on a loopback address that is not allow-listed (SSRF guard)', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(locationBody(`http://127.0.0.2:${remote.port}/cdn/thumb`));
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({ code: 'unreachable' });
    expect(paths()).toEqual([V1_URL]);
  });

  it('falls back to /_matrix/media/v3/thumbnail on an unknown-endpoint answer', async () => {
    // v1 is not routed: the scripted remote answers 404 M_UNRECOGNIZED.
    remote.routes.set(LEGACY, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/gif', 'Content-Length': 6 });
      res.end('GIF89a');
    });
    client = makeClient();
    const media = await client.fetchThumbnail(REQUEST);
    expect(media).toMatchObject({ contentType: 'image/gif', contentLength: 6 });
    expect(await readText(media.body)).toBe('GIF89a');
    expect(paths()).toEqual([V1_URL, LEGACY_URL]);
    expect(verifySignature(remote.seen[1]!, 'remote.test')).toBe(true);
  });

  it('follows a legacy 307 and checks the type of what it finds', async () => {
    remote.routes.set(LEGACY, (_req, res) => {
      res.writeHead(307, { Location: `${remote.base}/cdn/x` });
      res.end();
    });
    remote.routes.set('/cdn/x', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<script>');
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({ code: 'bad_response' });
    expect(paths()).toEqual([V1_URL, LEGACY_URL, '/cdn/x']);
  });

  it('goes straight to the legacy endpoint with legacyOnly', async () => {
    remote.routes.set(LEGACY, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.end('png');
    });
    client = makeClient();
    expect(await readText((await client.fetchThumbnail({ ...REQUEST, legacyOnly: true })).body)).toBe('png');
    expect(paths()).toEqual([LEGACY_URL]);
  });

  it('maps 404 M_NOT_FOUND to not_found without falling back', async () => {
    remote.routes.set(V1, (_req, res) => json(res, 404, { errcode: 'M_NOT_FOUND', error: 'Not found' }));
    client = makeClient();
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({
      code: 'not_found',
      remoteStatus: 404,
      remoteErrcode: 'M_NOT_FOUND',
    });
    expect(paths()).toEqual([V1_URL]);
  });

  it('maps a remote 400 (cannot thumbnail) and 5xx to bad_response, 413 to too_large', async () => {
    client = makeClient();
    remote.routes.set(V1, (_req, res) => json(res, 400, { errcode: 'M_UNKNOWN', error: 'Cannot generate thumbnails' }));
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({ code: 'bad_response', remoteStatus: 400 });
    remote.routes.set(V1, (_req, res) => json(res, 500, { errcode: 'M_UNKNOWN', error: 'boom' }));
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({ code: 'bad_response', remoteStatus: 500 });
    remote.routes.set(V1, (_req, res) => json(res, 413, { errcode: 'M_TOO_LARGE', error: 'too big' }));
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({ code: 'too_large' });
  });

  it('refuses an oversized thumbnail by Content-Length and while streaming', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE, 'Content-Length': 10 * 1024 * 1024 });
      res.write(inlineHead('image/png'));
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({ code: 'too_large' });

    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(inlineHead('image/png') + 'y'.repeat(5000) + INLINE_TAIL);
    });
    const media = await client.fetchThumbnail(REQUEST);
    expect(await failureOf(readText(media.body))).toMatchObject({ code: 'too_large' });
  });

  it.each([
    ['text/html', 'text/html'],
    ['image/svg+xml', 'image/svg+xml'],
    ['application/octet-stream', 'application/octet-stream'],
  ])('refuses a %s answer as bad_response', async (_name, type) => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(inlineThumbnail(type, '<svg onload=alert(1)>'));
    });
    client = makeClient();
    const error = await remoteFailure(client.fetchThumbnail(REQUEST));
    expect(error.code).toBe('bad_response');
    expect(error.message).toMatch(/not a thumbnail type/);
  });

  it('refuses a part without a Content-Type', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(`\r\n--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\n\r\nbytes${INLINE_TAIL}`);
    });
    client = makeClient();
    expect(await remoteFailure(client.fetchThumbnail(REQUEST))).toMatchObject({ code: 'bad_response' });
  });

  it('accepts a type with parameters and upper case', async () => {
    remote.routes.set(V1, (_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE });
      res.end(inlineThumbnail('Image/JPEG; foo=bar', 'jpeg'));
    });
    client = makeClient();
    expect(await readText((await client.fetchThumbnail(REQUEST)).body)).toBe('jpeg');
  });

  it('refuses bad sizes and methods before any request', async () => {
    client = makeClient();
    await expect(client.fetchThumbnail({ ...REQUEST, width: 0 })).rejects.toThrow(TypeError);
    await expect(client.fetchThumbnail({ ...REQUEST, height: 1.5 })).rejects.toThrow(TypeError);
    await expect(client.fetchThumbnail({ ...REQUEST, method: 'zoom' as 'crop' })).rejects.toThrow(TypeError);
    expect(await remoteFailure(client.fetchThumbnail({ ...REQUEST, mediaId: '../etc' }))).toMatchObject({ code: 'not_found' });
    expect(remote.seen).toEqual([]);
  });
});
