import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isMatrixError, type MatrixError } from '@hsmedia/errors';
import { matrixErrors } from '@hsmedia/koa-matrix';
import { listen, type Listening } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { StaticTokenVerifier, WhoamiTokenVerifier, createClientAuth, requireNonGuest } from './index.js';

const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function authApp(options: Parameters<typeof createClientAuth>[0], extra?: Koa.Middleware): Promise<string> {
  const app = new Koa();
  app.silent = true;
  app.use(matrixErrors());
  app.use(createClientAuth(options));
  if (extra) app.use(extra);
  app.use((ctx) => {
    ctx.body = ctx.state.requester;
  });
  const server = await listen(app);
  servers.push(server);
  return server.url;
}

const verifier = new StaticTokenVerifier({
  alice_token: '@alice:example.org',
  guest_token: { userId: '@guest:example.org', isGuest: true, deviceId: 'GUESTDEV' },
});

describe('createClientAuth', () => {
  it('takes a known answer without calling verify, and calls verify when the verifier does not know', async () => {
    const calls: string[] = [];
    const table = new StaticTokenVerifier({ alice_token: '@alice:example.org' });
    const counting = {
      verify: (token: string) => {
        calls.push(`verify ${token}`);
        return table.verify(token);
      },
      known: (token: string) => (token === 'alice_token' ? table.known(token) : undefined),
    };
    const url = await authApp({ verifier: counting });
    expect((await fetch(url, { headers: { Authorization: 'Bearer alice_token' } })).status).toBe(200);
    expect(calls).toEqual([]);
    expect((await fetch(url, { headers: { Authorization: 'Bearer other' } })).status).toBe(401);
    expect(calls).toEqual(['verify other']);
    // A query that only looks like a token parameter once decoded is still read (access%5Ftoken).
    expect((await fetch(`${url}?access%5Ftoken=alice_token`)).status).toBe(200);
    expect((await fetch(`${url}?a=1&access_token=nope`)).status).toBe(401);
  });

  it('accepts a Bearer header and sets ctx.state.requester', async () => {
    const url = await authApp({ verifier });
    const res = await fetch(url, { headers: { Authorization: 'Bearer alice_token' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ userId: '@alice:example.org', isGuest: false });
    const lower = await fetch(url, { headers: { Authorization: 'bearer alice_token' } });
    expect(lower.status).toBe(200);
  });

  it('accepts the deprecated access_token query parameter unless disabled', async () => {
    const url = await authApp({ verifier });
    expect((await fetch(`${url}/?access_token=alice_token`)).status).toBe(200);
    const strict = await authApp({ verifier, allowQueryToken: false });
    const res = await fetch(`${strict}/?access_token=alice_token`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_MISSING_TOKEN');
  });

  it.each([
    ['no token at all', {}, '', 'M_MISSING_TOKEN'],
    ['a non-Bearer scheme', { Authorization: 'Basic YWxpY2U6cHc=' }, '', 'M_MISSING_TOKEN'],
    ['an empty Bearer', { Authorization: 'Bearer ' }, '', 'M_MISSING_TOKEN'],
    ['an empty query token', {}, '?access_token=', 'M_MISSING_TOKEN'],
    ['header and query together', { Authorization: 'Bearer alice_token' }, '?access_token=alice_token', 'M_MISSING_TOKEN'],
    ['the query token twice', {}, '?access_token=alice_token&access_token=alice_token', 'M_MISSING_TOKEN'],
    ['an unknown token', { Authorization: 'Bearer nope' }, '', 'M_UNKNOWN_TOKEN'],
    ['a prototype key as token', { Authorization: 'Bearer constructor' }, '', 'M_UNKNOWN_TOKEN'],
    ['__proto__ as token', {}, '?access_token=__proto__', 'M_UNKNOWN_TOKEN'],
  ])('401 for %s', async (_label, headers, query, errcode) => {
    const url = await authApp({ verifier });
    const res = await fetch(`${url}/${query}`, { headers });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { errcode: string }).errcode).toBe(errcode);
  });

  it('forbids guests with forbidGuests or requireNonGuest()', async () => {
    const headers = { Authorization: 'Bearer guest_token' };
    const open = await authApp({ verifier });
    expect(await (await fetch(open, { headers })).json()).toEqual({
      userId: '@guest:example.org',
      isGuest: true,
      deviceId: 'GUESTDEV',
    });
    for (const url of [await authApp({ verifier, forbidGuests: true }), await authApp({ verifier }, requireNonGuest())]) {
      const res = await fetch(url, { headers });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ errcode: 'M_GUEST_ACCESS_FORBIDDEN', error: 'Guest access not allowed' });
      expect((await fetch(url, { headers: { Authorization: 'Bearer alice_token' } })).status).toBe(200);
    }
  });
});

describe('StaticTokenVerifier', () => {
  it('refuses an empty token in the table', () => {
    expect(() => new StaticTokenVerifier({ '': '@x:y' })).toThrow(TypeError);
  });
});

/** A fake homeserver on 127.0.0.1 whose whoami answers as `handler` says, counting requests. */
async function fakeHomeserver(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening & { calls: string[] }> {
  const calls: string[] = [];
  const server = await listen((req, res) => {
    calls.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    handler(req, res);
  });
  servers.push(server);
  return Object.assign(server, { calls });
}

function whoamiHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url !== '/_matrix/client/v3/account/whoami') {
    res.writeHead(404).end();
    return;
  }
  const auth = req.headers.authorization;
  res.setHeader('Content-Type', 'application/json');
  if (auth === 'Bearer good') {
    res.end(JSON.stringify({ user_id: '@bob:hs.test', device_id: 'DEV1' }));
  } else if (auth === 'Bearer guest') {
    res.end(JSON.stringify({ user_id: '@g:hs.test', is_guest: true }));
  } else {
    res.writeHead(401).end(JSON.stringify({ errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' }));
  }
}

async function expectMatrixError(promise: Promise<unknown>, status: number): Promise<MatrixError> {
  try {
    await promise;
  } catch (err) {
    expect(isMatrixError(err)).toBe(true);
    const e = err as MatrixError;
    expect(e.httpStatus).toBe(status);
    expect(e.errcode).toBe('M_UNKNOWN');
    return e;
  }
  throw new Error('expected a MatrixError');
}

describe('WhoamiTokenVerifier', () => {
  it('asks the homeserver once per token and caches valid tokens for positiveTtlMs', async () => {
    const hs = await fakeHomeserver(whoamiHandler);
    let now = 1_000_000;
    const v = new WhoamiTokenVerifier({ homeserverUrl: hs.url, positiveTtlMs: 60_000, now: () => now });
    expect(await v.verify('good')).toEqual({ userId: '@bob:hs.test', deviceId: 'DEV1', isGuest: false });
    expect(await v.verify('good')).toEqual({ userId: '@bob:hs.test', deviceId: 'DEV1', isGuest: false });
    expect(hs.calls).toEqual(['GET /_matrix/client/v3/account/whoami Bearer good']);
    now += 60_001;
    await v.verify('good');
    expect(hs.calls).toHaveLength(2);
    expect(await v.verify('guest')).toEqual({ userId: '@g:hs.test', isGuest: true });
  });

  it('known() gives cached answers (positive, negative, per asserted user) without asking, and undefined otherwise', async () => {
    const hs = await fakeHomeserver(whoamiHandler);
    let now = 1_000_000;
    const v = new WhoamiTokenVerifier({ homeserverUrl: hs.url, positiveTtlMs: 60_000, negativeTtlMs: 5_000, now: () => now });
    expect(v.known('good')).toBeUndefined();
    await v.verify('good');
    await v.verify('bad');
    expect(v.known('good')).toEqual({ userId: '@bob:hs.test', deviceId: 'DEV1', isGuest: false });
    expect(v.known('bad')).toBeNull();
    // Another asserted user is another answer.
    expect(v.known('good', { userId: '@other:hs.test' })).toBeUndefined();
    now += 5_001;
    expect(v.known('bad')).toBeUndefined();
    now += 60_000;
    expect(v.known('good')).toBeUndefined();
    expect(hs.calls).toHaveLength(2);
  });

  it('caches unknown tokens for negativeTtlMs only', async () => {
    const hs = await fakeHomeserver(whoamiHandler);
    let now = 0;
    const v = new WhoamiTokenVerifier({ homeserverUrl: `${hs.url}/`, negativeTtlMs: 5_000, now: () => now });
    expect(await v.verify('bad')).toBeNull();
    expect(await v.verify('bad')).toBeNull();
    expect(hs.calls).toHaveLength(1);
    now += 5_001;
    expect(await v.verify('bad')).toBeNull();
    expect(hs.calls).toHaveLength(2);
  });

  it('shares one request among concurrent checks of a token', async () => {
    const hs = await fakeHomeserver(whoamiHandler);
    const v = new WhoamiTokenVerifier({ homeserverUrl: hs.url });
    const results = await Promise.all(Array.from({ length: 10 }, () => v.verify('good')));
    expect(results.every((r) => r?.userId === '@bob:hs.test')).toBe(true);
    expect(hs.calls).toHaveLength(1);
  });

  it('evicts the oldest entries beyond maxEntries', async () => {
    const hs = await fakeHomeserver(whoamiHandler);
    const v = new WhoamiTokenVerifier({ homeserverUrl: hs.url, maxEntries: 1 });
    await v.verify('good');
    await v.verify('guest');
    await v.verify('good');
    expect(hs.calls).toHaveLength(3);
  });

  it('502 M_UNKNOWN, not cached, when the homeserver fails', async () => {
    let fail = true;
    const hs = await fakeHomeserver((req, res) => {
      if (fail) res.writeHead(500).end('{"errcode":"M_UNKNOWN"}');
      else whoamiHandler(req, res);
    });
    const v = new WhoamiTokenVerifier({ homeserverUrl: hs.url });
    const e = await expectMatrixError(v.verify('good'), 502);
    expect(e.message).not.toContain('127.0.0.1');
    fail = false;
    expect((await v.verify('good'))?.userId).toBe('@bob:hs.test');
  });

  it('502 M_UNKNOWN for a nonsense whoami body', async () => {
    const hs = await fakeHomeserver((_req, res) => res.end('<html>not json</html>'));
    await expectMatrixError(new WhoamiTokenVerifier({ homeserverUrl: hs.url }).verify('good'), 502);
    const hs2 = await fakeHomeserver((_req, res) => res.end('{"user_id": 42}'));
    await expectMatrixError(new WhoamiTokenVerifier({ homeserverUrl: hs2.url }).verify('good'), 502);
  });

  it('502 M_UNKNOWN when the homeserver is down', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((r) => probe.close(() => r()));
    const v = new WhoamiTokenVerifier({ homeserverUrl: `http://127.0.0.1:${port}` });
    await expectMatrixError(v.verify('good'), 502);
  });

  it('504 M_UNKNOWN when the homeserver does not answer in time', async () => {
    const hs = await fakeHomeserver(() => {
      // never answers
    });
    const v = new WhoamiTokenVerifier({ homeserverUrl: hs.url, timeoutMs: 100 });
    await expectMatrixError(v.verify('good'), 504);
  });

  it('maps whoami results through the middleware', async () => {
    const hs = await fakeHomeserver(whoamiHandler);
    const url = await authApp({ verifier: new WhoamiTokenVerifier({ homeserverUrl: hs.url }) });
    expect((await fetch(url, { headers: { Authorization: 'Bearer good' } })).status).toBe(200);
    const bad = await fetch(url, { headers: { Authorization: 'Bearer bad' } });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { errcode: string }).errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('validates its options', () => {
    expect(() => new WhoamiTokenVerifier({ homeserverUrl: 'not a url' })).toThrow(TypeError);
    expect(() => new WhoamiTokenVerifier({ homeserverUrl: 'ftp://x' })).toThrow(TypeError);
    expect(() => new WhoamiTokenVerifier({ homeserverUrl: 'http://127.0.0.1', positiveTtlMs: -1 })).toThrow(TypeError);
  });
});

/**
 * A homeserver with one application service (`as_token`, namespace `@bridged_*`): whoami with
 * `user_id` answers as that user when the service may act as them, else 403 M_FORBIDDEN
 * (https://spec.matrix.org/v1.12/application-service-api/#identity-assertion).
 */
function appserviceWhoami(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://hs.test');
  res.setHeader('Content-Type', 'application/json');
  if (url.pathname !== '/_matrix/client/v3/account/whoami' || req.headers.authorization !== 'Bearer as_token') {
    res.writeHead(401).end(JSON.stringify({ errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' }));
    return;
  }
  const asserted = url.searchParams.get('user_id');
  if (asserted === null) {
    res.end(JSON.stringify({ user_id: '@bridge:hs.test' }));
  } else if (/^@bridged_[a-z]+:hs\.test$/.test(asserted)) {
    res.end(JSON.stringify({ user_id: asserted }));
  } else {
    res.writeHead(403).end(JSON.stringify({ errcode: 'M_FORBIDDEN', error: 'Application service cannot masquerade as this user' }));
  }
}

describe('application service identity assertion (user_id)', () => {
  it('passes user_id on to whoami and acts as the user the homeserver answers with, cached per user', async () => {
    const hs = await fakeHomeserver(appserviceWhoami);
    const url = await authApp({ verifier: new WhoamiTokenVerifier({ homeserverUrl: hs.url }) });
    const headers = { Authorization: 'Bearer as_token' };
    const asSender = await fetch(url, { headers });
    expect(await asSender.json()).toEqual({ userId: '@bridge:hs.test', isGuest: false });
    const bridged = await fetch(`${url}/?user_id=${encodeURIComponent('@bridged_alice:hs.test')}`, { headers });
    expect(await bridged.json()).toEqual({ userId: '@bridged_alice:hs.test', isGuest: false });
    const other = await fetch(`${url}/?user_id=${encodeURIComponent('@bridged_bob:hs.test')}`, { headers });
    expect(await other.json()).toEqual({ userId: '@bridged_bob:hs.test', isGuest: false });
    // Again, from the cache: one whoami per (token, user).
    await (await fetch(`${url}/?user_id=${encodeURIComponent('@bridged_alice:hs.test')}`, { headers })).arrayBuffer();
    expect(hs.calls).toEqual([
      'GET /_matrix/client/v3/account/whoami Bearer as_token',
      'GET /_matrix/client/v3/account/whoami?user_id=%40bridged_alice%3Ahs.test Bearer as_token',
      'GET /_matrix/client/v3/account/whoami?user_id=%40bridged_bob%3Ahs.test Bearer as_token',
    ]);
  });

  it('403 M_FORBIDDEN when the homeserver refuses the assertion; 400 M_INVALID_PARAM for user_id twice', async () => {
    const hs = await fakeHomeserver(appserviceWhoami);
    const url = await authApp({ verifier: new WhoamiTokenVerifier({ homeserverUrl: hs.url }) });
    const headers = { Authorization: 'Bearer as_token' };
    const refused = await fetch(`${url}/?user_id=${encodeURIComponent('@alice:hs.test')}`, { headers });
    expect([refused.status, ((await refused.json()) as { errcode: string }).errcode]).toEqual([403, 'M_FORBIDDEN']);
    const twice = await fetch(`${url}/?user_id=%40bridged_a%3Ahs.test&user_id=%40bridged_b%3Ahs.test`, { headers });
    expect([twice.status, ((await twice.json()) as { errcode: string }).errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it('a static token table ignores user_id, as a homeserver does for a user token', async () => {
    const url = await authApp({ verifier });
    const res = await fetch(`${url}/?user_id=${encodeURIComponent('@mallory:example.org')}`, { headers: { Authorization: 'Bearer alice_token' } });
    expect(await res.json()).toEqual({ userId: '@alice:example.org', isGuest: false });
  });
});
