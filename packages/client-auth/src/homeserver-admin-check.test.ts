import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMatrixError } from '@hsmedia/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { HomeserverAdminCheck } from './index.js';

/** A scripted homeserver admin API: alice_token is a server admin, bob_token is not. */
interface ScriptedHomeserver {
  readonly url: string;
  readonly seen: { url: string; authorization: string | undefined }[];
  answer: (req: IncomingMessage, res: ServerResponse) => void;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((done) => server.close(done))));
});

function synapseLike(req: IncomingMessage, res: ServerResponse): void {
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  const [status, body] =
    token === 'alice_token'
      ? [200, { name: '@alice:hs.test', admin: true }]
      : token === 'bob_token'
        ? [403, { errcode: 'M_FORBIDDEN', error: 'You are not a server admin' }]
        : [401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' }];
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

async function homeserver(): Promise<ScriptedHomeserver> {
  const scripted: ScriptedHomeserver = { url: '', seen: [], answer: synapseLike };
  const server = createServer((req, res) => {
    scripted.seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    scripted.answer(req, res);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(scripted, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

describe('HomeserverAdminCheck', () => {
  it("asks GET /_synapse/admin/v2/users/{user} with the caller's own token: 200 admin, 403 not", async () => {
    const hs = await homeserver();
    const check = new HomeserverAdminCheck({ homeserverUrl: hs.url });
    expect(await check.isAdmin('@alice:hs.test', 'alice_token')).toBe(true);
    expect(await check.isAdmin('@bob:hs.test', 'bob_token')).toBe(false);
    expect(await check.isAdmin('@eve:hs.test', 'stale_token')).toBe(false);
    expect(hs.seen).toEqual([
      { url: '/_synapse/admin/v2/users/%40alice%3Ahs.test', authorization: 'Bearer alice_token' },
      { url: '/_synapse/admin/v2/users/%40bob%3Ahs.test', authorization: 'Bearer bob_token' },
      { url: '/_synapse/admin/v2/users/%40eve%3Ahs.test', authorization: 'Bearer stale_token' },
    ]);
  });

  it('caches both answers for their TTL, per token and user, and asks again after', async () => {
    const hs = await homeserver();
    let now = 1_000;
    const check = new HomeserverAdminCheck({ homeserverUrl: hs.url, positiveTtlMs: 60_000, negativeTtlMs: 10_000, now: () => now });
    await check.isAdmin('@alice:hs.test', 'alice_token');
    await check.isAdmin('@bob:hs.test', 'bob_token');
    expect(await check.isAdmin('@alice:hs.test', 'alice_token')).toBe(true);
    expect(await check.isAdmin('@bob:hs.test', 'bob_token')).toBe(false);
    expect(hs.seen).toHaveLength(2);
    now += 10_001; // the negative answer expires first
    expect(await check.isAdmin('@bob:hs.test', 'bob_token')).toBe(false);
    expect(await check.isAdmin('@alice:hs.test', 'alice_token')).toBe(true);
    expect(hs.seen).toHaveLength(3);
    now += 50_000;
    expect(await check.isAdmin('@alice:hs.test', 'alice_token')).toBe(true);
    expect(hs.seen).toHaveLength(4);
  });

  it('shares one request between concurrent checks', async () => {
    const hs = await homeserver();
    const check = new HomeserverAdminCheck({ homeserverUrl: hs.url });
    const answers = await Promise.all([1, 2, 3].map(() => check.isAdmin('@alice:hs.test', 'alice_token')));
    expect(answers).toEqual([true, true, true]);
    expect(hs.seen).toHaveLength(1);
  });

  it('fails closed on a homeserver error (502, not cached) and an unreachable homeserver', async () => {
    const hs = await homeserver();
    hs.answer = (_req, res) => void res.writeHead(500).end('boom');
    const check = new HomeserverAdminCheck({ homeserverUrl: hs.url });
    const error = await check.isAdmin('@alice:hs.test', 'alice_token').catch((err: unknown) => err);
    expect(isMatrixError(error) && error.httpStatus === 502 && error.errcode === 'M_UNKNOWN').toBe(true);
    hs.answer = synapseLike;
    expect(await check.isAdmin('@alice:hs.test', 'alice_token')).toBe(true);

    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));
    const down = new HomeserverAdminCheck({ homeserverUrl: `http://127.0.0.1:${port}` });
    const unreachable = await down.isAdmin('@alice:hs.test', 'alice_token').catch((err: unknown) => err);
    expect(isMatrixError(unreachable) && unreachable.httpStatus === 502).toBe(true);
  });

  it('times out a homeserver that never answers (504)', async () => {
    const hs = await homeserver();
    hs.answer = () => undefined;
    const check = new HomeserverAdminCheck({ homeserverUrl: hs.url, timeoutMs: 200 });
    const error = await check.isAdmin('@alice:hs.test', 'alice_token').catch((err: unknown) => err);
    expect(isMatrixError(error) && error.httpStatus === 504).toBe(true);
  });

  it('refuses a homeserver URL that is not http(s)', () => {
    expect(() => new HomeserverAdminCheck({ homeserverUrl: 'ftp://hs.test' })).toThrow(TypeError);
    expect(() => new HomeserverAdminCheck({ homeserverUrl: 'not a url' })).toThrow(TypeError);
  });
});
