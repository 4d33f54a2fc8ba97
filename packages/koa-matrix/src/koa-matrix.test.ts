import { request } from 'node:http';
import { MatrixError, errors } from '@hsmedia/errors';
import { Router } from '@koa/router';
import { listen, type Listening } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import {
  abortSignalFor,
  allowedMethodsOptions,
  matrixCors,
  matrixErrors,
  readJsonBody,
  toMatrixError,
  unrecognized,
  type ErrorLogger,
} from './index.js';

const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(app: Koa): Promise<string> {
  const server = await listen(app);
  servers.push(server);
  return server.url;
}

function recordingLogger(): ErrorLogger & { entries: { level: string; obj: object; msg?: string }[] } {
  const entries: { level: string; obj: object; msg?: string }[] = [];
  const push = (level: string) => (obj: object, msg?: string) => void entries.push({ level, obj, ...(msg ? { msg } : {}) });
  return { entries, error: push('error'), warn: push('warn'), debug: push('debug') };
}

function appWith(handler: Koa.Middleware, logger?: ErrorLogger): Koa {
  const app = new Koa();
  app.silent = true;
  app.use(matrixErrors(logger ? { logger } : {}));
  app.use(matrixCors());
  app.use(handler);
  return app;
}

describe('toMatrixError', () => {
  it('keeps MatrixError, maps exposed 4xx http errors and hides everything else', () => {
    const e = errors.notFound('nope');
    expect(toMatrixError(e)).toBe(e);
    const httpError = Object.assign(new Error('Gone fishing'), { status: 404, expose: true });
    expect(toMatrixError(httpError).toJSON()).toEqual({ errcode: 'M_NOT_FOUND', error: 'Gone fishing' });
    const hidden = Object.assign(new Error('secret path /var/x'), { status: 400, expose: false });
    expect(toMatrixError(hidden).toJSON()).toEqual({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
    expect(toMatrixError('string').httpStatus).toBe(500);
  });

  it('maps ContentTooLargeError by its brand (media-core is not a dependency)', () => {
    const tooLarge = Object.defineProperty(new Error('over'), Symbol.for('hsmedia.error.ContentTooLargeError'), {
      value: true,
    });
    const mapped = toMatrixError(tooLarge);
    expect(mapped.httpStatus).toBe(413);
    expect(mapped.errcode).toBe('M_TOO_LARGE');
  });
});

describe('matrixErrors', () => {
  it('renders a MatrixError as JSON with its status and headers', async () => {
    const url = await serve(
      appWith(() => {
        throw errors.limitExceeded(1500);
      }),
    );
    const res = await fetch(`${url}/x`);
    expect(res.status).toBe(429);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(await res.json()).toEqual({ errcode: 'M_LIMIT_EXCEEDED', error: 'Too many requests', retry_after_ms: 1500 });
  });

  it('answers 500 M_UNKNOWN for unexpected errors, logs them, and leaks nothing', async () => {
    const logger = recordingLogger();
    const url = await serve(
      appWith((ctx) => {
        ctx.set('Content-Disposition', 'attachment');
        ctx.set('ETag', '"abc"');
        throw new Error('ENOENT /srv/media/secret');
      }, logger),
    );
    const res = await fetch(`${url}/x?access_token=SECRET`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
    expect(text).not.toContain('secret');
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(logger.entries).toHaveLength(1);
    expect(logger.entries[0]!.level).toBe('error');
    expect(JSON.stringify(logger.entries[0]!.obj)).not.toContain('SECRET');
  });

  it('logs a gateway answer it was given (a remote failed) as one warn line without a stack', async () => {
    const logger = recordingLogger();
    const url = await serve(appWith(() => {
      throw errors.remoteTimeout();
    }, logger));
    const res = await fetch(`${url}/x`);
    expect(res.status).toBe(504);
    expect(logger.entries).toEqual([
      { level: 'warn', obj: { method: 'GET', path: '/x', status: 504, errcode: 'M_UNKNOWN', error: 'Timed out fetching remote media' }, msg: 'upstream failed' },
    ]);
  });

  it('maps ctx.throw statuses to Matrix errcodes', async () => {
    const url = await serve(appWith((ctx) => ctx.throw(413, 'Way too big')));
    const res = await fetch(`${url}/x`);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ errcode: 'M_TOO_LARGE', error: 'Way too big' });
  });
});

describe('matrixCors', () => {
  it('adds CORS headers and answers OPTIONS without running the endpoint', async () => {
    let ran = 0;
    const url = await serve(
      appWith((ctx) => {
        ran++;
        ctx.body = { ok: true };
      }),
    );
    const pre = await fetch(`${url}/_matrix/client/v1/media/config`, { method: 'OPTIONS' });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET, POST, PUT, DELETE, OPTIONS');
    expect(pre.headers.get('access-control-allow-headers')).toBe('X-Requested-With, Content-Type, Authorization');
    expect(ran).toBe(0);
    const res = await fetch(`${url}/anything`);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(ran).toBe(1);
  });
});

describe('unrecognized + allowedMethodsOptions', () => {
  async function routed(): Promise<string> {
    const app = new Koa();
    app.silent = true;
    app.use(matrixErrors());
    app.use(matrixCors());
    const a = new Router({ prefix: '/_matrix/a' });
    a.get('/thing', (ctx) => {
      ctx.body = { a: 1 };
    });
    a.put('/shared', (ctx) => {
      ctx.body = { put: 1 };
    });
    a.get('/shared', (ctx) => {
      ctx.body = { get: 1 };
    });
    const b = new Router({ prefix: '/_matrix/b' });
    b.post('/upload', (ctx) => {
      ctx.body = { b: 1 };
    });
    app.use(a.routes()).use(a.allowedMethods(allowedMethodsOptions));
    app.use(b.routes()).use(b.allowedMethods(allowedMethodsOptions));
    app.use(unrecognized());
    return serve(app);
  }

  it('404 M_UNRECOGNIZED for unknown paths, 405 M_UNRECOGNIZED for a wrong method', async () => {
    const url = await routed();
    expect(await (await fetch(`${url}/_matrix/a/thing`)).json()).toEqual({ a: 1 });
    const unknown = await fetch(`${url}/_matrix/a/other`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
    const wrongA = await fetch(`${url}/_matrix/a/thing`, { method: 'DELETE' });
    expect(wrongA.status).toBe(405);
    // RFC 9110 §15.5.6: a 405 carries Allow (GET routes answer HEAD too).
    expect(wrongA.headers.get('allow')).toBe('GET, HEAD');
    expect(((await wrongA.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
    const wrongB = await fetch(`${url}/_matrix/b/upload`);
    expect(wrongB.status).toBe(405);
    expect(wrongB.headers.get('allow')).toBe('POST');
    expect(((await wrongB.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
    // A method the router does not implement at all is a 405 with Allow too.
    const unknownMethod = await fetch(`${url}/_matrix/b/upload`, { method: 'PROPFIND' });
    expect([unknownMethod.status, unknownMethod.headers.get('allow')]).toEqual([405, 'POST']);
    // Two routes on one path: every method of both.
    const shared = await fetch(`${url}/_matrix/a/shared`, { method: 'PATCH' });
    expect([shared.status, shared.headers.get('allow')]).toEqual([405, 'GET, HEAD, PUT']);
    const root = await fetch(`${url}/`);
    expect(root.status).toBe(404);
    expect(((await root.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
  });

  it('exposes the throw options @koa/router expects', () => {
    expect(allowedMethodsOptions.throw).toBe(true);
    const e = allowedMethodsOptions.methodNotAllowed();
    expect(e).toBeInstanceOf(MatrixError);
    expect(e.httpStatus).toBe(405);
  });
});

describe('readJsonBody', () => {
  async function jsonServer(options: { maxBytes: number; allowEmpty?: boolean }): Promise<string> {
    return serve(
      appWith(async (ctx) => {
        ctx.body = { got: await readJsonBody(ctx, options) };
      }),
    );
  }

  it('reads a JSON object', async () => {
    const url = await jsonServer({ maxBytes: 100 });
    const res = await fetch(url, { method: 'POST', body: '{"a":[1,2]}', headers: { 'content-type': 'application/json' } });
    expect(await res.json()).toEqual({ got: { a: [1, 2] } });
  });

  it('empty body: M_NOT_JSON unless allowEmpty', async () => {
    const strict = await jsonServer({ maxBytes: 100 });
    const res = await fetch(strict, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_JSON');
    const lenient = await jsonServer({ maxBytes: 100, allowEmpty: true });
    expect(await (await fetch(lenient, { method: 'POST' })).json()).toEqual({ got: {} });
  });

  it.each([
    ['not json', '{nope', 'M_NOT_JSON'],
    ['an array', '[1]', 'M_BAD_JSON'],
    ['a string', '"x"', 'M_BAD_JSON'],
    ['null', 'null', 'M_BAD_JSON'],
  ])('400 for %s', async (_label, body, errcode) => {
    const url = await jsonServer({ maxBytes: 100 });
    const res = await fetch(url, { method: 'POST', body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errcode: string }).errcode).toBe(errcode);
  });

  it('400 M_NOT_JSON for invalid UTF-8', async () => {
    const url = await jsonServer({ maxBytes: 100 });
    const res = await fetch(url, { method: 'POST', body: Uint8Array.from([0x7b, 0xff, 0x7d]) });
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_JSON');
  });

  it('413 when Content-Length is over the limit, and when a chunked body grows past it', async () => {
    const url = await jsonServer({ maxBytes: 16 });
    const declared = await fetch(url, { method: 'POST', body: JSON.stringify({ a: 'x'.repeat(100) }) });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
    const chunks = [new TextEncoder().encode('{"a":"'), new TextEncoder().encode('y'.repeat(50)), new TextEncoder().encode('"}')];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const chunked = await fetch(url, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
  });
});

describe('abortSignalFor', () => {
  it('aborts when the client disconnects mid-request, not after a normal response', async () => {
    const seen: { aborted: boolean; reason: unknown }[] = [];
    let signalled!: () => void;
    const aborted = new Promise<void>((resolve) => (signalled = resolve));
    let listening!: () => void;
    const handlerListening = new Promise<void>((resolve) => (listening = resolve));
    const url = await serve(
      appWith(async (ctx) => {
        const signal = abortSignalFor(ctx);
        expect(abortSignalFor(ctx)).toBe(signal);
        if (ctx.path === '/ok') {
          ctx.body = 'fine';
          ctx.res.once('close', () => seen.push({ aborted: signal.aborted, reason: signal.reason }));
          return;
        }
        signal.addEventListener('abort', () => {
          seen.push({ aborted: true, reason: signal.reason });
          signalled();
        });
        listening();
        try {
          for await (const _chunk of ctx.req) {
            // keep reading until the client goes away
          }
        } catch {
          // the reset surfaces here too
        }
      }),
    );
    expect(await (await fetch(`${url}/ok`)).text()).toBe('fine');
    const { port } = new URL(url);
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'content-length': '1000000' } });
    req.on('error', () => {});
    req.write(Buffer.alloc(1000));
    // Disconnect only once the handler is reading (an event, not a delay: this must hold on a busy machine).
    await handlerListening;
    req.destroy();
    await aborted;
    expect(seen[0]).toEqual({ aborted: false, reason: undefined });
    expect(seen[1]!.aborted).toBe(true);
    expect((seen[1]!.reason as Error).name).toBe('ClientDisconnectedError');
  });
});
