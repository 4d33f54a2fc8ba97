import { listen, type Listening } from '@hsmedia/test-fixtures';
import { Router } from '@koa/router';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { gatedRoutes, literalPrefixOf } from './router-gate.js';

const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('literalPrefixOf', () => {
  it('is the whole segments every route starts with, before any parameter', () => {
    const client = new Router({ prefix: '/_matrix/client/v1/media' });
    client.get('/download/:serverName/:mediaId', () => undefined);
    client.get('/config', () => undefined);
    expect(literalPrefixOf(client)).toBe('/_matrix/client/v1/media/');
    const legacy = new Router();
    legacy.get('/_matrix/media/v3/upload', () => undefined);
    legacy.get('/_matrix/media/r0/uploads', () => undefined);
    expect(literalPrefixOf(legacy)).toBe('/_matrix/media/');
    const params = new Router();
    params.get('/:anything', () => undefined);
    expect(literalPrefixOf(params)).toBe('/');
    expect(literalPrefixOf(new Router())).toBe('');
  });
});

describe('gatedRoutes', () => {
  it('serves every path the router serves (case-insensitively, like the router) and passes others on', async () => {
    const router = new Router({ prefix: '/_matrix/federation/v1/media' });
    router.get('/download/:mediaId', (ctx) => {
      ctx.body = `media ${ctx.params['mediaId']}`;
    });
    const app = new Koa();
    app.use(gatedRoutes(router));
    app.use(router.allowedMethods());
    app.use((ctx) => {
      ctx.status = 404;
      ctx.body = 'next';
    });
    const server = await listen(app);
    servers.push(server);
    const get = async (path: string, method = 'GET'): Promise<[number, string]> => {
      const res = await fetch(`${server.url}${path}`, { method });
      return [res.status, await res.text()];
    };
    expect(await get('/_matrix/federation/v1/media/download/abc')).toEqual([200, 'media abc']);
    expect(await get('/_MATRIX/Federation/v1/media/download/abc')).toEqual([200, 'media abc']);
    expect(await get('/_matrix/client/v1/media/download/abc')).toEqual([404, 'next']);
    // The wrong method on a routed path still gets the router's 405.
    expect((await get('/_matrix/federation/v1/media/download/abc', 'POST'))[0]).toBe(405);
  });
});
