/**
 * Behaviours that matter beside Synapse: the legacy path keeps a server name's `:` as is, a
 * `504 M_NOT_YET_UPLOADED` is an answer about one media ID (the next fetch from that peer goes out
 * at once), and a 401 to a signed request is logged as a warning naming our key ID.
 */
import type { Logger } from '@hsmedia/runtime';
import { createAddressPolicy } from '@hsmedia/net-guard';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FederationClient, type FederationClientOptions } from '../src/index.js';
import { INLINE_BODY, json, loopbackLookup, MULTIPART_TYPE, ORIGIN, readText, remoteFailure, signingKey, startRemote, type ScriptedRemote } from './helpers.js';

let remote: ScriptedRemote;
let client: FederationClient | undefined;

interface Call {
  readonly level: string;
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

function captureLogger(): Logger & { calls: Call[] } {
  const calls: Call[] = [];
  const log = (level: string) => (obj: object, msg?: string): void => void calls.push({ level, obj: obj as Record<string, unknown>, msg });
  return { calls, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

function makeClient(serverName: string, overrides: Partial<FederationClientOptions> = {}): FederationClient {
  return new FederationClient({
    serverName: ORIGIN,
    signingKey,
    addressPolicy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
    destinations: { [serverName]: remote.base },
    lookup: loopbackLookup(),
    ...overrides,
  });
}

beforeAll(async () => {
  remote = await startRemote();
});
afterAll(async () => {
  await remote.close();
});
afterEach(() => {
  client?.close();
  client = undefined;
  remote.routes.clear();
  remote.seen.length = 0;
});

describe('legacy paths', () => {
  it('keep the colon of a server name with a port unencoded (downloads and thumbnails)', async () => {
    const legacy = '/_matrix/media/v3/download/remote.test:8448/abc';
    remote.routes.set(legacy, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
      res.end('hi');
    });
    client = makeClient('remote.test:8448');
    const media = await client.fetchMedia({ serverName: 'remote.test:8448', mediaId: 'abc', maxBytes: 1024, timeoutMs: 20_000, legacyOnly: true });
    expect(await readText(media.body)).toBe('hi');
    expect(remote.seen[0]!.url.startsWith(`${legacy}?`)).toBe(true);

    await remoteFailure(
      client.fetchThumbnail({
        serverName: 'remote.test:8448',
        mediaId: 'abc',
        width: 32,
        height: 32,
        method: 'scale',
        animated: false,
        maxBytes: 1024,
        timeoutMs: 20_000,
        legacyOnly: true,
      }),
    );
    expect(remote.seen[1]!.url).toMatch(/^\/_matrix\/media\/v3\/thumbnail\/remote\.test:8448\/abc\?/);
    expect(remote.seen.some((seen) => /%3A/i.test(seen.url))).toBe(false);
  });
});

describe('504 M_NOT_YET_UPLOADED', () => {
  it('does not mark the peer down: the next fetches (same and other media) go out at once', async () => {
    let pending = true;
    remote.routes.set('/_matrix/federation/v1/media/download/pending', (_req, res) => {
      if (pending) return json(res, 504, { errcode: 'M_NOT_YET_UPLOADED', error: 'not yet' });
      res.writeHead(200, { 'Content-Type': MULTIPART_TYPE, 'Content-Length': Buffer.byteLength(INLINE_BODY) });
      res.end(INLINE_BODY);
    });
    remote.routes.set('/_matrix/federation/v1/media/download/other', (_req, res) => json(res, 404, { errcode: 'M_NOT_FOUND', error: 'no' }));
    client = makeClient('remote.test');
    const request = { serverName: 'remote.test', maxBytes: 1024, timeoutMs: 20_000 } as const;

    const first = await remoteFailure(client.fetchMedia({ ...request, mediaId: 'pending' }));
    expect(first).toMatchObject({ code: 'timeout', remoteStatus: 504, remoteErrcode: 'M_NOT_YET_UPLOADED' });
    const other = await remoteFailure(client.fetchMedia({ ...request, mediaId: 'other' }));
    expect(other).toMatchObject({ code: 'not_found' });
    pending = false;
    const media = await client.fetchMedia({ ...request, mediaId: 'pending' });
    expect(await readText(media.body)).toBe('Hello, world!\n');
    expect(remote.seen.map((seen) => seen.url.split('?')[0])).toEqual([
      '/_matrix/federation/v1/media/download/pending',
      '/_matrix/federation/v1/media/download/other',
      '/_matrix/federation/v1/media/download/pending',
    ]);
  });
});

describe('a remote refusing our signature', () => {
  it('logs a warning with our key ID and how to fix it', async () => {
    remote.routes.set('/_matrix/federation/v1/media/download/abc', (_req, res) =>
      json(res, 401, { errcode: 'M_UNAUTHORIZED', error: 'Failed to find any key to satisfy' }),
    );
    const logger = captureLogger();
    client = makeClient('remote.test', { logger });
    await expect(remoteFailure(client.fetchMedia({ serverName: 'remote.test', mediaId: 'abc', maxBytes: 1024, timeoutMs: 20_000 }))).resolves.toMatchObject({
      code: 'forbidden',
      remoteStatus: 401,
    });
    const warning = logger.calls.find((call) => call.msg === 'remote refused our request signature (401)');
    expect(warning?.level).toBe('warn');
    expect(warning?.obj).toMatchObject({ serverName: 'remote.test', key_id: signingKey.keyId });
    expect(String(warning?.obj['hint'])).toContain('/_matrix/key/v2/server');
  });

  it('does not warn about signatures on a 403', async () => {
    remote.routes.set('/_matrix/federation/v1/media/download/abc', (_req, res) => json(res, 403, { errcode: 'M_FORBIDDEN', error: 'no' }));
    const logger = captureLogger();
    client = makeClient('remote.test', { logger });
    await remoteFailure(client.fetchMedia({ serverName: 'remote.test', mediaId: 'abc', maxBytes: 1024, timeoutMs: 20_000 }));
    expect(logger.calls.some((call) => call.msg === 'remote refused our request signature (401)')).toBe(false);
  });
});
