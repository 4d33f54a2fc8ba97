import { generateSigningKey, KeyRing, MemoryServerKeyStore, signXMatrixRequest, type SigningKey } from '@hsmedia/signing';
import Koa from 'koa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listen, rawRequest, renderErrors, type Listening } from '../test/helpers.js';
import { createXMatrixAuth, type XMatrixAuthOptions, type XMatrixAuthState } from './x-matrix-auth.js';

const ME = 'media.example';
const URI = '/_matrix/federation/v1/media/download/abc?timeout_ms=20000';
const T0 = 1_800_000_000_000;

const key: SigningKey = generateSigningKey('1');
let keyRing: KeyRing;
let server: Listening | undefined;

/** A key ring that knows `origin.example`'s key from its store; the network is never reached. */
async function storedKeyRing(validUntilTs: number): Promise<KeyRing> {
  const store = new MemoryServerKeyStore();
  await store.putServerKeys([{ serverName: 'origin.example', keyId: key.keyId, publicKey: key.publicKey, validUntilTs, fetchedAt: T0 }]);
  return new KeyRing({ store, now: () => T0, resolveServer: () => Promise.reject(new Error('offline')) });
}

beforeEach(async () => {
  keyRing = await storedKeyRing(T0 + 3_600_000);
});

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(extra: Partial<XMatrixAuthOptions> = {}, before?: Koa.Middleware): Promise<Listening> {
  const app = new Koa<XMatrixAuthState>();
  app.use(renderErrors());
  if (before) app.use(before);
  app.use(createXMatrixAuth({ serverName: ME, keyRing, ...extra }));
  app.use((ctx) => {
    ctx.body = { origin: ctx.state.origin, path: ctx.path };
  });
  server = await listen(app);
  return server;
}

const sign = (over: Partial<Parameters<typeof signXMatrixRequest>[0]> = {}, k: SigningKey = key): string =>
  signXMatrixRequest({ method: 'GET', uri: URI, origin: 'origin.example', destination: ME, ...over }, k);

describe('createXMatrixAuth', () => {
  it('authenticates a signed GET and sets ctx.state.origin', async () => {
    const { port } = await start();
    const res = await rawRequest(port, { path: URI, headers: { authorization: sign() } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ origin: 'origin.example', path: '/_matrix/federation/v1/media/download/abc' });
  });

  it.each([
    ['no header', undefined, 401, 'Missing X-Matrix Authorization header'],
    ['a Bearer token', 'Bearer xyz', 401, undefined],
    ['a malformed header', 'X-Matrix origin="domain', 400, undefined],
    ['an invalid origin', 'X-Matrix origin="bad name",key="ed25519:1",sig="abc"', 400, undefined],
    ['a header missing sig', 'X-Matrix origin="origin.example",key="ed25519:1"', 400, undefined],
  ])('answers %s with %i M_UNAUTHORIZED', async (_name, authorization, status, message) => {
    const { port } = await start();
    const res = await rawRequest(port, { path: URI, headers: authorization === undefined ? {} : { authorization } });
    expect(res.status).toBe(status);
    expect(res.json).toMatchObject({ errcode: 'M_UNAUTHORIZED', ...(message === undefined ? {} : { error: message }) });
  });

  it.each([
    ['destination', { headers: { authorization: sign({ destination: 'other.example' }) } }],
    ['method', { method: 'DELETE', headers: { authorization: sign() } }],
    ['path', { path: URI.replace('abc', 'abd'), headers: { authorization: sign() } }],
    ['query', { path: URI.replace('20000', '1'), headers: { authorization: sign() } }],
    ['key (unknown key ID)', { headers: { authorization: sign({}, generateSigningKey('2')) } }],
    ['key (other key, same ID)', { headers: { authorization: sign({}, generateSigningKey('1')) } }],
    ['origin', { headers: { authorization: sign().replace('origin.example', 'evil.example') } }],
  ])('refuses a tampered %s with 401', async (_name, request) => {
    const { port } = await start();
    const res = await rawRequest(port, { path: URI, ...request });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ errcode: 'M_UNAUTHORIZED' });
  });

  it('verifies against the raw request target, not a normalised one', async () => {
    const { port } = await start();
    const raw = '/_matrix/federation/v1/media/download/a%62c?x=%7E&y=1';
    expect((await rawRequest(port, { path: raw, headers: { authorization: sign({ uri: raw }) } })).status).toBe(200);
    const decoded = '/_matrix/federation/v1/media/download/abc?x=~&y=1';
    expect((await rawRequest(port, { path: raw, headers: { authorization: sign({ uri: decoded }) } })).status).toBe(401);
  });

  it('is not fooled by middleware rewriting ctx.path before it', async () => {
    const { port } = await start({}, async (ctx, next) => {
      ctx.path = '/rewritten';
      await next();
    });
    const res = await rawRequest(port, { path: URI, headers: { authorization: sign() } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ path: '/rewritten' });
  });

  it('refuses denied origins with 403 M_FORBIDDEN before fetching any key', async () => {
    let lookups = 0;
    const counting = { getVerifyKey: (...args: Parameters<KeyRing['getVerifyKey']>) => (lookups++, keyRing.getVerifyKey(...args)) };
    const { port } = await start({ keyRing: counting, denyOrigins: ['origin.example'] });
    const res = await rawRequest(port, { path: URI, headers: { authorization: sign() } });
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ errcode: 'M_FORBIDDEN' });
    expect(lookups).toBe(0);
  });

  it('accepts a deny predicate', async () => {
    const { port } = await start({ denyOrigins: (origin) => origin.endsWith('.example') });
    expect((await rawRequest(port, { path: URI, headers: { authorization: sign() } })).status).toBe(403);
  });

  it('verifies the JSON body of a POST through getJsonBody', async () => {
    const content = { server_keys: { 'x.example': {} } };
    const { port } = await start({
      getJsonBody: async (ctx) => {
        const chunks: Buffer[] = [];
        for await (const c of ctx.req as AsyncIterable<Buffer>) chunks.push(c);
        return chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString());
      },
    });
    const post = (body: string, authorization: string): ReturnType<typeof rawRequest> =>
      rawRequest(port, { method: 'POST', path: '/_matrix/x', body, headers: { authorization, 'content-type': 'application/json' } });
    const authorization = sign({ method: 'POST', uri: '/_matrix/x', content });
    expect((await post(JSON.stringify(content), authorization)).status).toBe(200);
    expect((await post('{"server_keys":{}}', authorization)).status).toBe(401);
    expect((await post('', authorization)).status).toBe(401);
  });

  it('uses ctx.request.body by default for PUT/POST and never reads bodies of GETs', async () => {
    let called = 0;
    const parsed = { a: 1 };
    const { port } = await start({}, async (ctx, next) => {
      (ctx.request as { body?: unknown }).body = parsed;
      await next();
    });
    const authorization = sign({ method: 'PUT', uri: '/_matrix/y', content: parsed });
    expect((await rawRequest(port, { method: 'PUT', path: '/_matrix/y', headers: { authorization } })).status).toBe(200);
    await server?.close();
    server = undefined;
    const { port: port2 } = await start({ getJsonBody: () => (called++, undefined) });
    expect((await rawRequest(port2, { path: URI, headers: { authorization: sign() } })).status).toBe(200);
    expect(called).toBe(0);
  });

  it('accepts several Authorization headers (one per key)', async () => {
    const { port } = await start();
    const res = await rawRequest(port, { path: URI, headers: { authorization: ['Bearer abc', sign()] } });
    expect(res.status).toBe(200);
  });

  it('rejects an expired key', async () => {
    const expired = await storedKeyRing(T0 - 1);
    const { port } = await start({ keyRing: expired });
    expect((await rawRequest(port, { path: URI, headers: { authorization: sign() } })).status).toBe(401);
  });

  it('validates its options', () => {
    expect(() => createXMatrixAuth({ serverName: 'bad name', keyRing })).toThrow(TypeError);
    expect(() => createXMatrixAuth({ serverName: ME, keyRing: {} as never })).toThrow(TypeError);
  });
});
