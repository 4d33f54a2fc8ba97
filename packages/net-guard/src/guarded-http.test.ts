import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlockedAddressError, GuardedRequestError, isGuardedRequestError } from './errors.js';
import { GuardedHttpClient, type GuardedHttpClientOptions } from './guarded-http.js';
import { createAddressPolicy } from './policy.js';

// A real HTTP server on 127.0.0.1 (the only address these tests ever name as a target).
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const routes = new Map<string, Handler>();
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
let server: Server;
let base: string;
let port: number;
let connections = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const route = routes.get((req.url ?? '').split('?')[0]!);
      if (route === undefined) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('no such route');
        return;
      }
      route(req, res);
    });
  });
  server.on('connection', () => (connections += 1));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
});

let client: GuardedHttpClient | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
  routes.clear();
  seen.length = 0;
});

/** Resolves every name to `address` without DNS. */
function fixedLookup(address: string): LookupFunction {
  return ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (options.all === true) cb(null, [{ address, family: 4 }]);
    else cb(null, address, 4);
  }) as unknown as LookupFunction;
}

function makeClient(options: Partial<GuardedHttpClientOptions> = {}): GuardedHttpClient {
  client = new GuardedHttpClient({
    policy: createAddressPolicy({ allow: ['127.0.0.1/32'] }),
    lookup: fixedLookup('127.0.0.1'),
    ...options,
  });
  return client;
}

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );
}

describe('GuardedHttpClient: requests that pass the guard', () => {
  it('GETs a URL and streams its body', async () => {
    routes.set('/hello', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 5, 'X-Two': ['a', 'b'] });
      res.end('hello');
    });
    const res = await makeClient().request(`${base}/hello?x=1`, { maxBodyBytes: 100 });
    expect(res.status).toBe(200);
    expect(res.contentLength).toBe(5);
    expect(res.header('content-type')).toBe('text/plain');
    expect(res.header('x-two')).toBe('a, b');
    expect(res.url.href).toBe(`${base}/hello?x=1`);
    expect(await text(res.body)).toBe('hello');
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/hello?x=1' });
    expect(seen[0]!.headers.host).toBe(`127.0.0.1:${port}`);
  });

  it('resolves names through the guarded lookup and sends the URL host as Host', async () => {
    routes.set('/named', (_req, res) => res.end('named'));
    const res = await makeClient().request(`http://service.test:${port}/named`, { maxBodyBytes: 100 });
    expect(await text(res.body)).toBe('named');
    expect(seen[0]!.headers.host).toBe(`service.test:${port}`);
  });

  it('connects to connectTo while the URL (and Host) name another host', async () => {
    routes.set('/delegated', (_req, res) => res.end('ok'));
    const res = await makeClient().request('http://matrix.example:8448/delegated', {
      connectTo: { host: '127.0.0.1', port },
      headers: { Host: 'example.org' },
      maxBodyBytes: 100,
    });
    expect(await text(res.body)).toBe('ok');
    expect(seen[0]!.headers.host).toBe('example.org');
  });

  it('sends a method, headers and a body with its Content-Length', async () => {
    routes.set('/post', (req, res) => res.end(`${req.method} ${req.headers['content-length']}`));
    const res = await makeClient().request(`${base}/post`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'tests' },
      body: new TextEncoder().encode('{"a":1}'),
      maxBodyBytes: 100,
    });
    expect(await text(res.body)).toBe('POST 7');
    expect(seen[0]).toMatchObject({ body: '{"a":1}' });
    expect(seen[0]!.headers['user-agent']).toBe('tests');
  });

  it('answers a redirect as a response (callers decide whether to follow it)', async () => {
    routes.set('/moved', (_req, res) => {
      res.writeHead(302, { Location: '/elsewhere' });
      res.end();
    });
    const res = await makeClient().request(`${base}/moved`, { maxBodyBytes: 100 });
    expect(res.status).toBe(302);
    expect(res.header('location')).toBe('/elsewhere');
    res.close();
    expect(seen).toHaveLength(1);
  });

  it('reuses connections with keepAlive, and opens one per request without', async () => {
    routes.set('/again', (_req, res) => res.end('again'));
    const pooled = makeClient({ keepAlive: true });
    let before = connections;
    for (let i = 0; i < 3; i++) expect(await text((await pooled.request(`${base}/again`, { maxBodyBytes: 100 })).body)).toBe('again');
    expect(connections - before).toBe(1);
    pooled.close();

    const fresh = makeClient();
    before = connections;
    for (let i = 0; i < 3; i++) expect(await text((await fresh.request(`${base}/again`, { maxBodyBytes: 100 })).body)).toBe('again');
    expect(connections - before).toBe(3);
  });
});

describe('GuardedHttpClient: the SSRF guard', () => {
  it('refuses a loopback IP literal under the default policy without connecting', async () => {
    routes.set('/secret', (_req, res) => res.end('secret'));
    const before = connections;
    const error = await failureOf(makeClient({ policy: createAddressPolicy() }).request(`${base}/secret`, { maxBodyBytes: 100 }));
    expect(error).toBeInstanceOf(BlockedAddressError);
    expect(error).toMatchObject({ address: '127.0.0.1', range: 'loopback' });
    expect(connections).toBe(before);
  });

  it('refuses a name that resolves to a refused address, at connect time', async () => {
    const before = connections;
    const refusing = makeClient({ lookup: fixedLookup('127.0.0.2') });
    const error = await failureOf(refusing.request(`http://rebind.test:${port}/`, { maxBodyBytes: 100 }));
    expect(error).toBeInstanceOf(BlockedAddressError);
    expect((error as Error).message).toMatch(/rebind\.test \(127\.0\.0\.2\).*loopback/);
    expect(connections).toBe(before);
  });

  it('checks connectTo like the URL host', async () => {
    const before = connections;
    const error = await failureOf(
      makeClient().request(`${base}/`, { connectTo: { host: '127.0.0.2', port }, maxBodyBytes: 100 }),
    );
    expect(error).toBeInstanceOf(BlockedAddressError);
    expect(connections).toBe(before);
  });

  it('refuses other schemes', async () => {
    const error = await failureOf(makeClient().request('file:///etc/passwd', { maxBodyBytes: 100 }));
    expect(isGuardedRequestError(error) && error.code).toBe('invalid_url');
    expect(await failureOf(makeClient().request('not a url', { maxBodyBytes: 100 }))).toMatchObject({ code: 'invalid_url' });
  });
});

describe('GuardedHttpClient: limits, cut-short bodies, timeouts and aborts', () => {
  it('errors the body once it passes maxBodyBytes, delivering nothing past the limit', async () => {
    routes.set('/big', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write('a'.repeat(50));
      setImmediate(() => res.end('b'.repeat(100)));
    });
    const res = await makeClient().request(`${base}/big`, { maxBodyBytes: 120 });
    const reader = res.body.getReader();
    let delivered = 0;
    const error = await (async () => {
      for (;;) {
        const next = await reader.read();
        if (next.done) return undefined;
        delivered += next.value.byteLength;
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GuardedRequestError);
    expect(error).toMatchObject({ code: 'too_large' });
    expect(delivered).toBeLessThanOrEqual(120);
  });

  it('reports a body shorter than its Content-Length as truncated', async () => {
    routes.set('/short', (req, res) => {
      res.writeHead(200, { 'Content-Length': 900 });
      res.write('x'.repeat(100), () => setImmediate(() => req.socket.destroy()));
    });
    const res = await makeClient().request(`${base}/short`, { maxBodyBytes: 1000 });
    expect(await failureOf(text(res.body))).toMatchObject({ code: 'truncated' });
  });

  it('reports a chunked body cut off before its last chunk as truncated', async () => {
    routes.set('/chunked', (req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('part', () => setImmediate(() => req.socket.destroy()));
    });
    const res = await makeClient().request(`${base}/chunked`, { maxBodyBytes: 1000 });
    expect(await failureOf(text(res.body))).toMatchObject({ code: 'truncated' });
  });

  it('times out when no response headers come', async () => {
    routes.set('/silent', () => {});
    const error = await failureOf(makeClient({ idleTimeoutMs: 100 }).request(`${base}/silent`, { maxBodyBytes: 100 }));
    expect(error).toBeInstanceOf(GuardedRequestError);
    expect(error).toMatchObject({ code: 'timeout' });
    expect((error as Error).message).toMatch(/no response within 100 ms/);
  });

  it('lets one request wait longer for its headers than the idle timeout', async () => {
    routes.set('/slow-headers', (_req, res) => setTimeout(() => res.end('late'), 150));
    const res = await makeClient({ idleTimeoutMs: 50 }).request(`${base}/slow-headers`, { maxBodyBytes: 100, headersTimeoutMs: 5000 });
    expect(await text(res.body)).toBe('late');
  });

  it('errors the body with timeout when the response stalls', async () => {
    routes.set('/stall', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first bytes');
    });
    const res = await makeClient({ idleTimeoutMs: 100 }).request(`${base}/stall`, { maxBodyBytes: 100 });
    const error = await failureOf(text(res.body));
    expect(error).toMatchObject({ code: 'timeout' });
    expect((error as Error).message).toMatch(/stalled/);
  });

  it('rejects with the abort reason, before and while waiting for the response', async () => {
    routes.set('/never', () => {});
    const aborted = AbortSignal.abort(new Error('gone already'));
    expect(await failureOf(makeClient().request(`${base}/never`, { maxBodyBytes: 100, signal: aborted }))).toMatchObject({
      message: 'gone already',
    });

    const controller = new AbortController();
    const pending = makeClient().request(`${base}/never`, { maxBodyBytes: 100, signal: controller.signal });
    await new Promise<void>((resolve) => setImmediate(resolve));
    controller.abort(new Error('client went away'));
    expect(await failureOf(pending)).toMatchObject({ message: 'client went away' });
  });

  it('errors the body with the abort reason when aborted mid-body', async () => {
    routes.set('/endless', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('start');
    });
    const controller = new AbortController();
    const res = await makeClient().request(`${base}/endless`, { maxBodyBytes: 100, signal: controller.signal });
    const reader = res.body.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('start');
    const next = reader.read();
    controller.abort(new Error('stop reading'));
    expect(await failureOf(next)).toMatchObject({ message: 'stop reading' });
  });

  it('drops the connection when the body is cancelled or the response closed', async () => {
    const serverSockets: Promise<unknown>[] = [];
    routes.set('/endless', (req, res) => {
      serverSockets.push(once(req.socket, 'close'));
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('start');
    });
    const c = makeClient();
    const first = await c.request(`${base}/endless`, { maxBodyBytes: 100 });
    await first.body.cancel();
    const second = await c.request(`${base}/endless`, { maxBodyBytes: 100 });
    second.close();
    second.close();
    await Promise.all(serverSockets);
    expect(serverSockets).toHaveLength(2);
    expect(await failureOf(text(second.body))).toMatchObject({ name: 'AbortError' });
  });
});
