import { generateSigningKey, KeyRing, MemoryServerKeyStore, signXMatrixRequest } from '@hsmedia/signing';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyServer, createXMatrixAuth, type XMatrixAuthState } from '../src/index.js';
import { listenFirst, renderErrors, type Listening } from './helpers.js';

const open: Listening[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

describe('two servers over HTTP on 127.0.0.1', () => {
  it('server B verifies a request signed by server A after fetching A’s key from A', async () => {
    // Server A: only publishes its key. Its server name is its own address.
    const keyA = generateSigningKey();
    const a = await listenFirst();
    open.push(a);
    const nameA = `127.0.0.1:${a.port}`;
    const appA = new Koa();
    const keyRequests: string[] = [];
    appA.use(async (ctx, next) => {
      keyRequests.push(ctx.url);
      await next();
    });
    appA.use(createKeyServer({ serverName: nameA, signingKey: keyA }));
    a.serve(appA);

    // Server B: X-Matrix protected media route; keys fetched over real HTTP.
    const store = new MemoryServerKeyStore();
    const keyRing = new KeyRing({ store, resolveServer: async (name) => `http://${name}` });
    const b = await listenFirst();
    open.push(b);
    const nameB = `127.0.0.1:${b.port}`;
    const appB = new Koa<XMatrixAuthState>();
    appB.use(renderErrors());
    appB.use(createXMatrixAuth({ serverName: nameB, keyRing }));
    appB.use((ctx) => {
      ctx.body = { origin: ctx.state.origin };
    });
    b.serve(appB);

    const uri = '/_matrix/federation/v1/media/download/ascERGshawAWawugaAcauga?timeout_ms=20000';
    const authorization = signXMatrixRequest({ method: 'GET', uri, origin: nameA, destination: nameB }, keyA);
    const ok = await fetch(`${b.baseUrl}${uri}`, { headers: { authorization } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ origin: nameA });
    expect(keyRequests).toEqual(['/_matrix/key/v2/server']);
    expect((await store.getServerKeys(nameA)).map((k) => k.publicKey)).toEqual([keyA.publicKey]);

    // Second request: cached key, no new fetch. A forged one: refused.
    expect((await fetch(`${b.baseUrl}${uri}`, { headers: { authorization } })).status).toBe(200);
    const forged = signXMatrixRequest({ method: 'GET', uri, origin: nameA, destination: nameB }, generateSigningKey(keyA.version));
    const refused = await fetch(`${b.baseUrl}${uri}`, { headers: { authorization: forged } });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ errcode: 'M_UNAUTHORIZED' });
    expect(keyRequests).toHaveLength(1);
  });
});
