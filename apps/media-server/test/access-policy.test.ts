import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config.js';
import { startServer, type StartedServer } from '../src/server.js';
import { freePort, LogSink, tempDir, testConfig } from './helpers.js';

// a.test asks a real policy endpoint on 127.0.0.1 (cache 1 minute, timeout 300 ms) and refuses to
// serve c.test; b.test and c.test fetch a.test's media over federation. d.test refuses to fetch from
// a.test: its destination for a.test is a tripwire that records any request.

const TOKEN = 'access_policy_token';

/** What the policy endpoint does for a media ID (the last path segment of the mxc URI). */
type Behaviour = 'allow' | 'deny' | 'hide' | 'hang' | 'reset' | 'nonsense';

let dir: { path: string; cleanup(): Promise<void> };
let a: StartedServer;
let b: StartedServer;
let c: StartedServer;
let d: StartedServer;
let policy: Server;
let tripwire: Server;
const logA = new LogSink();
const asked: Record<string, unknown>[] = [];
const behaviours = new Map<string, Behaviour>();
const tripped: string[] = [];

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function answerPolicy(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    asked.push({ ...body, authorization: req.headers.authorization });
    const behaviour = behaviours.get(String(body['mxc']).split('/').pop()!) ?? 'allow';
    const send = (text: string): void => void res.writeHead(200, { 'Content-Type': 'application/json' }).end(text);
    if (behaviour === 'allow') send('{"allow":true}');
    else if (behaviour === 'deny') send(JSON.stringify({ allow: false, errcode: 'M_FORBIDDEN', error: 'You are not in a room with this media' }));
    else if (behaviour === 'hide') send(JSON.stringify({ allow: false, errcode: 'M_NOT_FOUND', error: 'No such media' }));
    else if (behaviour === 'nonsense') send('{"allow":"maybe"');
    else if (behaviour === 'reset') req.socket.destroy();
    // 'hang': never answered; only the policy's timeout ends the wait.
  });
}

function peerConfig(name: string, port: number, destinations: Record<string, string>, extra: Record<string, unknown> = {}) {
  return testConfig(join(dir.path, name), {
    server_name: name,
    listen: { host: '127.0.0.1', port },
    log_level: 'silent',
    auth: { tokens: { [TOKEN]: `@alice:${name}` } },
    federation: { destinations, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
    ...extra,
  });
}

beforeAll(async () => {
  dir = await tempDir('hsmedia-access-policy-');
  policy = createHttpServer(answerPolicy);
  const policyPort = await listen(policy);
  tripwire = createHttpServer((req, res) => {
    tripped.push(req.url ?? '');
    res.writeHead(500).end();
  });
  const tripwirePort = await listen(tripwire);
  const [portA, portB, portC, portD] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const destinations = {
    'a.test': `http://127.0.0.1:${portA}`,
    'b.test': `http://127.0.0.1:${portB}`,
    'c.test': `http://127.0.0.1:${portC}`,
    'd.test': `http://127.0.0.1:${portD}`,
  };
  a = await startServer(
    peerConfig('a.test', portA, destinations, {
      log_level: 'info',
      access_policy: {
        deny_serving_to: ['c.test'],
        http: { url: `http://127.0.0.1:${policyPort}/media-policy`, cache_ttl: '1m', timeout: 300, token: 'policy-secret' },
      },
    }),
    { logDestination: logA },
  );
  b = await startServer(peerConfig('b.test', portB, destinations));
  c = await startServer(peerConfig('c.test', portC, destinations));
  d = await startServer(
    peerConfig('d.test', portD, { ...destinations, 'a.test': `http://127.0.0.1:${tripwirePort}` }, { access_policy: { prevent_downloads_from: ['a.test'] } }),
  );
}, 60_000);

afterAll(async () => {
  for (const server of [a, b, c, d]) await server?.close();
  for (const server of [policy, tripwire]) {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  }
  await dir?.cleanup();
});

async function uploadPng(): Promise<string> {
  const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } } }).png().toBuffer();
  const res = await fetch(`${a.url}/_matrix/media/v3/upload?filename=p.png`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'image/png' },
    body: png,
  });
  expect(res.status).toBe(200);
  const { content_uri } = (await res.json()) as { content_uri: string };
  return content_uri.slice('mxc://a.test/'.length);
}

function download(through: StartedServer, serverName: string, mediaId: string): Promise<Response> {
  return fetch(`${through.url}/_matrix/client/v1/media/download/${serverName}/${mediaId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
}

function thumbnail(through: StartedServer, serverName: string, mediaId: string): Promise<Response> {
  return fetch(`${through.url}/_matrix/client/v1/media/thumbnail/${serverName}/${mediaId}?width=32&height=32&method=scale`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
}

const askedAbout = (mediaId: string): Record<string, unknown>[] => asked.filter((body) => body['mxc'] === `mxc://a.test/${mediaId}`);

describe('access_policy.http', () => {
  it('allows: asks once with the user, mxc, purpose and token, then answers from its cache', async () => {
    const id = await uploadPng();
    expect((await download(a, 'a.test', id)).status).toBe(200);
    expect((await download(a, 'a.test', id)).status).toBe(200);
    expect((await thumbnail(a, 'a.test', id)).status).toBe(200);
    expect(askedAbout(id)).toEqual([
      { user_id: '@alice:a.test', legacy: false, mxc: `mxc://a.test/${id}`, purpose: 'download', authorization: 'Bearer policy-secret' },
      { user_id: '@alice:a.test', legacy: false, mxc: `mxc://a.test/${id}`, purpose: 'thumbnail', authorization: 'Bearer policy-secret' },
    ]);
  });

  it('denies with the endpoint errcode and message (403), or hides as 404 M_NOT_FOUND; downloads and thumbnails alike', async () => {
    const denied = await uploadPng();
    const hidden = await uploadPng();
    behaviours.set(denied, 'deny');
    behaviours.set(hidden, 'hide');
    for (const res of [await download(a, 'a.test', denied), await thumbnail(a, 'a.test', denied)]) {
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ errcode: 'M_FORBIDDEN', error: 'You are not in a room with this media' });
    }
    const res = await download(a, 'a.test', hidden);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ errcode: 'M_NOT_FOUND', error: 'No such media' });
  });

  it.each([
    ['down (connection reset)', 'reset', 502, 'The media access policy could not be reached'],
    ['slower than the timeout', 'hang', 504, 'The media access policy did not answer in time'],
    ['answering nonsense', 'nonsense', 502, 'The media access policy gave no usable answer'],
  ] as const)('refuses when the endpoint is %s (%s): %i M_UNKNOWN, and asks again next time', async (_name, behaviour, status, message) => {
    const id = await uploadPng();
    behaviours.set(id, behaviour);
    for (const res of [await download(a, 'a.test', id), await thumbnail(a, 'a.test', id)]) {
      expect(res.status).toBe(status);
      expect(await res.json()).toEqual({ errcode: 'M_UNKNOWN', error: message });
    }
    // Failures are not cached: once the endpoint answers, the media is served.
    behaviours.set(id, 'allow');
    expect((await download(a, 'a.test', id)).status).toBe(200);
  });
});

describe('federation', () => {
  it('asks the policy with the origin of a federation request and serves an allowed one', async () => {
    const id = await uploadPng();
    const res = await download(b, 'a.test', id);
    expect(res.status).toBe(200);
    expect(askedAbout(id)).toEqual([{ origin: 'b.test', legacy: false, mxc: `mxc://a.test/${id}`, purpose: 'download', authorization: 'Bearer policy-secret' }]);
  });

  it('refuses a server on deny_serving_to with 403 M_FORBIDDEN, without asking the endpoint', async () => {
    const id = await uploadPng();
    const res = await download(c, 'a.test', id);
    expect(res.status).not.toBe(200);
    await res.body?.cancel();
    await vi.waitFor(
      () => {
        const line = logA.requests().find((entry) => String(entry['path']).startsWith(`/_matrix/federation/v1/media/download/${id}`));
        expect(line?.['status']).toBe(403);
      },
      { timeout: 10_000 },
    );
    expect(askedAbout(id)).toEqual([]);
  });

  it('never contacts a server on prevent_downloads_from: 404 M_NOT_FOUND for downloads and thumbnails', async () => {
    const id = await uploadPng();
    for (const res of [await download(d, 'a.test', id), await thumbnail(d, 'a.test', id)]) {
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ errcode: 'M_NOT_FOUND' });
    }
    expect(tripped).toEqual([]);
  });
});

describe('access_policy config', () => {
  it('resolves durations and defaults', () => {
    const config = testConfig(dir.path, { access_policy: { prevent_downloads_from: ['x.example'], http: { url: 'https://policy.example/check' } } });
    expect(config.accessPolicy).toEqual({
      denyServingTo: [],
      preventDownloadsFrom: ['x.example'],
      http: { url: 'https://policy.example/check', cacheTtlMs: 60_000, timeoutMs: 5_000, token: undefined },
    });
    expect(testConfig(dir.path).accessPolicy).toEqual({ denyServingTo: [], preventDownloadsFrom: [], http: undefined });
  });

  it('reports every bad key by path', () => {
    const result = parseConfig(
      {
        access_policy: {
          deny_serving_to: ['not a server'],
          prevent_downloads_from: 'x.example',
          http: { url: 'ftp://policy.example/', cache_ttl: '-1s', timeout: 0, tokn: 'x' },
        },
      },
      dir.path,
    );
    expect(result.ok).toBe(false);
    const errors = result.ok ? '' : result.errors.join('\n');
    expect(errors).toContain('access_policy.deny_serving_to.0: Expected a server name');
    expect(errors).toContain('access_policy.prevent_downloads_from:');
    expect(errors).toContain('access_policy.http.url: Expected an http:// or https:// URL');
    expect(errors).toContain('access_policy.http.cache_ttl:');
    expect(errors).toContain('access_policy.http.timeout:');
    expect(errors).toContain('access_policy.http.tokn');
  });
});
