/**
 * The HTTP edge of the server, end to end on 127.0.0.1: server names checked
 * before any lookup, stalled upload bodies cut, `X-Forwarded-For` believed only
 * from trusted proxies, `Expect: 100-continue` refused early when too large,
 * and application services acting as their bridged users.
 */
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TrustedProxies } from '../src/http-edge.js';
import { startServer, type StartedServer } from '../src/server.js';
import { homeserverKeyFile, LogSink, tempDir, testConfig } from './helpers.js';

const TOKENS = { alice_token: '@alice:localhost' };
const ALICE = { Authorization: 'Bearer alice_token' };

let dir: { path: string; cleanup(): Promise<void> };
const running: StartedServer[] = [];
const closers: (() => Promise<void>)[] = [];

beforeEach(async () => {
  dir = await tempDir('hsmedia-edge-');
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
  await Promise.all(closers.splice(0).map((close) => close()));
  await dir.cleanup();
});

async function start(document: Record<string, unknown> = {}, log: LogSink = new LogSink()): Promise<StartedServer> {
  const server = await startServer(testConfig(dir.path, { auth: { tokens: TOKENS }, ...document }), { logDestination: log });
  running.push(server);
  return server;
}

interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

/** A GET whose path goes out exactly as written (fetch would resolve `..` before sending). */
function rawGet(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, headers, agent: false }, (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function errcodeOf(answer: RawAnswer): string | undefined {
  return (JSON.parse(answer.body) as { errcode?: string }).errcode;
}

describe('server names in media paths (validated as Synapse does, before any lookup)', () => {
  const names = ['..', '%2E%2E', '%2e%2e', 'a..b', '.', 'bad_name', '1.2.3.999', '%5B1%3A%3A2%3A%3A3%5D'];
  const routes: [string, (name: string) => string, Record<string, string>][] = [
    ['client download', (name) => `/_matrix/client/v1/media/download/${name}/abcdef`, ALICE],
    ['client download with a file name', (name) => `/_matrix/client/v1/media/download/${name}/abcdef/x.png`, ALICE],
    ['client thumbnail', (name) => `/_matrix/client/v1/media/thumbnail/${name}/abcdef?width=32&height=32&method=scale`, ALICE],
    ['legacy download', (name) => `/_matrix/media/v3/download/${name}/abcdef`, {}],
    ['legacy thumbnail', (name) => `/_matrix/media/v3/thumbnail/${name}/abcdef?width=32&height=32`, {}],
  ];

  it.each(routes)('%s: 400 M_INVALID_PARAM, never a remote lookup (was 502 for "..")', async (_route, path, headers) => {
    const log = new LogSink();
    const server = await start({}, log);
    for (const name of names) {
      const answer = await rawGet(server.url, path(name), headers);
      expect([name, answer.status, errcodeOf(answer)]).toEqual([name, 400, 'M_INVALID_PARAM']);
    }
    // No remote fetch was even started: the federation client never logged a thing.
    expect(log.lines.filter((line) => line['component'] === 'federation')).toEqual([]);
  });

  it('still serves media of valid names, and refuses an anonymous client request with 401 first', async () => {
    const server = await start();
    const answer = await rawGet(server.url, '/_matrix/client/v1/media/download/../abcdef');
    expect([answer.status, errcodeOf(answer)]).toEqual([401, 'M_MISSING_TOKEN']);
    const unknown = await rawGet(server.url, '/_matrix/client/v1/media/download/localhost/abcdef', ALICE);
    expect([unknown.status, errcodeOf(unknown)]).toEqual([404, 'M_NOT_FOUND']);
  });
});

/** The request-log line of the first request to `path`, once it is written. */
function requestLogged(log: LogSink, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const write = log.write.bind(log);
    const check = (): boolean => {
      const line = log.requests().find((entry) => typeof entry['path'] === 'string' && (entry['path'] as string).startsWith(path));
      if (line !== undefined) resolve(line);
      return line !== undefined;
    };
    if (check()) return;
    log.write = (text: string): void => {
      write(text);
      check();
    };
  });
}

async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe('upload body idle timeout (limits.upload_idle_timeout)', () => {
  it('closes a connection whose upload body stalls, removes the staging file and stores nothing', async () => {
    const log = new LogSink();
    const server = await start({ limits: { upload_idle_timeout: '500ms' } }, log);
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    let answered = '';
    socket.on('data', (chunk: Buffer) => (answered += chunk.toString()));
    const closed = once(socket, 'close');
    socket.write(
      [
        'POST /_matrix/media/v3/upload?filename=stall.bin HTTP/1.1',
        'Host: 127.0.0.1',
        'Authorization: Bearer alice_token',
        'Content-Type: application/octet-stream',
        'Content-Length: 100000',
        '',
        'a little body',
      ].join('\r\n'),
    );
    // Then nothing more: the server must give up on its own and close the connection.
    await closed;
    expect(answered).toBe('');
    const line = await requestLogged(log, '/_matrix/media/v3/upload');
    expect(line).toMatchObject({ method: 'POST', aborted: true });
    expect(log.lines).toContainEqual(expect.objectContaining({ msg: 'request body stalled; connection closed', idle_ms: 500 }));
    // Closing drains: it resolves once every handler has unwound, so the upload's clean-up is done.
    await server.close();
    expect(await filesUnder(join(dir.path, 'data', 'media'))).toEqual([]);
    const again = await start({ admins: ['@alice:localhost'] });
    const owned = await fetch(`${again.url}/_synapse/admin/v1/users/${encodeURIComponent('@alice:localhost')}/media`, { headers: ALICE });
    expect(((await owned.json()) as { total: number }).total).toBe(0);
  });

  it('leaves a steady upload and the keep-alive connection after it alone', async () => {
    const server = await start({ limits: { upload_idle_timeout: '30s' } });
    const up = await fetch(`${server.url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { ...ALICE, 'Content-Type': 'text/plain' },
      body: 'steady',
    });
    expect(up.status).toBe(200);
  });

  it('is 60 s by default and configurable with units', () => {
    expect(testConfig(dir.path).limits.uploadIdleTimeoutMs).toBe(60_000);
    expect(testConfig(dir.path, { limits: { upload_idle_timeout: '2m' } }).limits.uploadIdleTimeoutMs).toBe(120_000);
  });
});

/** Raw HTTP/1.1 on a socket: writes `head`, collects what comes back until `until` matches or the socket closes. */
async function rawExchange(baseUrl: string, head: string, until: RegExp): Promise<{ socket: Socket; text: () => string }> {
  const socket = connect(Number(new URL(baseUrl).port), '127.0.0.1');
  await once(socket, 'connect');
  closersPush(socket);
  let text = '';
  const seen = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (until.test(text)) resolve();
    });
    socket.on('close', () => resolve());
  });
  socket.write(head);
  await seen;
  return { socket, text: () => text };
}

function closersPush(socket: Socket): void {
  closers.push(async () => {
    if (!socket.destroyed) socket.destroy();
  });
}

describe('Expect: 100-continue', () => {
  const head = (length: number): string =>
    [
      'POST /_matrix/media/v3/upload HTTP/1.1',
      'Host: 127.0.0.1',
      'Authorization: Bearer alice_token',
      'Content-Type: application/octet-stream',
      `Content-Length: ${length}`,
      'Expect: 100-continue',
      '',
      '',
    ].join('\r\n');

  it('answers 413 M_TOO_LARGE first (no 100 Continue) when the declared length is over max_upload_size', async () => {
    const server = await start({ max_upload_size: '1K' });
    const exchange = await rawExchange(server.url, head(2048), /\r\n\r\n[\s\S]*M_TOO_LARGE/);
    const text = exchange.text();
    expect(text).not.toMatch(/100 Continue/);
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    expect(text).toContain('"errcode":"M_TOO_LARGE"');
  });

  it('invites a body within the limit with 100 Continue, then stores it', async () => {
    const server = await start({ max_upload_size: '1K' });
    const exchange = await rawExchange(server.url, head(5), /100 Continue\r\n\r\n/);
    expect(exchange.text()).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    const answered = new Promise<void>((resolve) => exchange.socket.on('data', () => exchange.text().includes('content_uri') && resolve()));
    exchange.socket.write('hello');
    await answered;
    expect(exchange.text()).toMatch(/HTTP\/1\.1 200 OK/);
  });
});

describe('trusted proxies (listen.trusted_proxies)', () => {
  it('finds the client as nginx real_ip_recursive does', () => {
    const proxies = new TrustedProxies(['127.0.0.1/32', '10.0.0.0/8', '::1']);
    expect(proxies.clientAddress('127.0.0.1', undefined)).toBe('127.0.0.1');
    expect(proxies.clientAddress('127.0.0.1', '127.0.0.2')).toBe('127.0.0.2');
    expect(proxies.clientAddress('::ffff:127.0.0.1', '127.0.0.2')).toBe('127.0.0.2');
    // A forged element left of an untrusted hop is never believed.
    expect(proxies.clientAddress('127.0.0.1', '127.0.0.9, 127.0.0.2')).toBe('127.0.0.2');
    expect(proxies.clientAddress('127.0.0.1', '127.0.0.9, 127.0.0.2, 10.1.2.3')).toBe('127.0.0.2');
    expect(proxies.clientAddress('127.0.0.2', '127.0.0.9')).toBe('127.0.0.2');
    expect(proxies.clientAddress('::1', '[::2]:443')).toBe('::2');
    expect(proxies.clientAddress('127.0.0.1', '127.0.0.3:5678')).toBe('127.0.0.3');
    // Garbage from a trusted proxy: stop at the last trusted hop.
    expect(proxies.clientAddress('127.0.0.1', 'unknown')).toBe('127.0.0.1');
    expect(new TrustedProxies([]).clientAddress('127.0.0.1', '127.0.0.2')).toBe('127.0.0.1');
    expect(() => new TrustedProxies(['10.0.0.0/33'])).toThrow(TypeError);
  });

  it('is checked in the config: addresses and CIDRs only', () => {
    expect(testConfig(dir.path).listen.trustedProxies).toEqual([]);
    expect(() => testConfig(dir.path, { listen: { host: '127.0.0.1', port: 0, trusted_proxies: ['nginx'] } })).toThrow(
      /listen\.trusted_proxies\.0: Expected an IP address or CIDR/,
    );
  });

  const limits = { download: { per_second: 0.001, burst: 2 } };
  const legacy = (server: StartedServer, forwardedFor: string): Promise<RawAnswer> =>
    rawGet(server.url, '/_matrix/media/v3/download/localhost/abcdef', { 'X-Forwarded-For': forwardedFor });

  it('without the setting, X-Forwarded-For is ignored: every client of one address shares its per-IP bucket', async () => {
    const server = await start({ limits });
    expect((await legacy(server, '127.0.0.2')).status).toBe(404);
    expect((await legacy(server, '127.0.0.2')).status).toBe(404);
    const other = await legacy(server, '127.0.0.3');
    expect([other.status, errcodeOf(other)]).toEqual([429, 'M_LIMIT_EXCEEDED']);
  });

  it('with the proxy trusted, each forwarded client gets its own bucket', async () => {
    const server = await start({ limits, listen: { host: '127.0.0.1', port: 0, trusted_proxies: ['127.0.0.1/32'] } });
    expect((await legacy(server, '127.0.0.2')).status).toBe(404);
    expect((await legacy(server, '127.0.0.2')).status).toBe(404);
    expect((await legacy(server, '127.0.0.2')).status).toBe(429);
    expect((await legacy(server, '127.0.0.3')).status).toBe(404);
    // A client cannot pick a fresh bucket by prepending a forged hop: the proxy's hop is what counts.
    expect((await legacy(server, '127.0.0.77, 127.0.0.2')).status).toBe(429);
  });
});

/**
 * A homeserver with one application service (token `as_token`, sender `@bridge:localhost`,
 * users `@bridged_*:localhost`) and an admin; whoami answers per
 * https://spec.matrix.org/v1.12/application-service-api/#identity-assertion.
 */
async function appserviceHomeserver(): Promise<{ url: string; asked: string[] }> {
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    asked.push(url.search);
    res.setHeader('Content-Type', 'application/json');
    const token = req.headers.authorization;
    const asserted = url.searchParams.get('user_id');
    if (url.pathname !== '/_matrix/client/v3/account/whoami') {
      res.writeHead(404).end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' }));
    } else if (token === 'Bearer admin_token') {
      res.end(JSON.stringify({ user_id: '@admin:localhost' }));
    } else if (token !== 'Bearer as_token') {
      res.writeHead(401).end(JSON.stringify({ errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown token' }));
    } else if (asserted === null) {
      res.end(JSON.stringify({ user_id: '@bridge:localhost' }));
    } else if (/^@bridged_\w+:localhost$/.test(asserted)) {
      res.end(JSON.stringify({ user_id: asserted }));
    } else {
      res.writeHead(403).end(JSON.stringify({ errcode: 'M_FORBIDDEN', error: 'Application service cannot masquerade as this user' }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked };
}

describe('application services acting as bridged users (user_id)', () => {
  it('uploads as the bridged user: their quota, their ownership in the admin listing', async () => {
    const homeserver = await appserviceHomeserver();
    await homeserverKeyFile(dir.path);
    const server = await start({
      auth: { homeserver_url: homeserver.url, key_published_elsewhere: true },
      admins: ['@admin:localhost'],
      quotas: { default: { max_files: 1 } },
    });
    const AS = { Authorization: 'Bearer as_token', 'Content-Type': 'text/plain' };
    const uploadAs = (userId: string | undefined): Promise<Response> =>
      fetch(`${server.url}/_matrix/media/v3/upload${userId === undefined ? '' : `?user_id=${encodeURIComponent(userId)}`}`, {
        method: 'POST',
        headers: AS,
        body: `from ${userId ?? 'the bridge'}`,
      });
    expect((await uploadAs('@bridged_alice:localhost')).status).toBe(200);
    // Alice's one file is used up; Bob and the bridge's own sender each still have theirs.
    expect((await uploadAs('@bridged_alice:localhost')).status).toBe(403);
    expect((await uploadAs('@bridged_bob:localhost')).status).toBe(200);
    expect((await uploadAs(undefined)).status).toBe(200);
    const refused = await uploadAs('@alice:localhost');
    expect([refused.status, ((await refused.json()) as { errcode: string }).errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect(homeserver.asked).toContain(`?user_id=${encodeURIComponent('@bridged_alice:localhost')}`);

    const listing = async (userId: string): Promise<number> => {
      const res = await fetch(`${server.url}/_synapse/admin/v1/users/${encodeURIComponent(userId)}/media`, {
        headers: { Authorization: 'Bearer admin_token' },
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { total: number }).total;
    };
    expect(await listing('@bridged_alice:localhost')).toBe(1);
    expect(await listing('@bridged_bob:localhost')).toBe(1);
    expect(await listing('@bridge:localhost')).toBe(1);
  });
});

describe('legacy media freeze on by default (legacy_media.freeze)', () => {
  it('keeps media stored before the freeze on the legacy endpoint; new uploads are authenticated-only', async () => {
    const before = await start({ legacy_media: { freeze: false } });
    const upload = (url: string, body: string): Promise<string> =>
      fetch(`${url}/_matrix/media/v3/upload`, { method: 'POST', headers: { ...ALICE, 'Content-Type': 'text/plain' }, body })
        .then((res) => res.json() as Promise<{ content_uri: string }>)
        .then((body) => body.content_uri.split('/').pop()!);
    const old = await upload(before.url, 'from before the freeze');
    await before.close();

    // The same data directory restarted with the default config: the freeze is on.
    const after = await start();
    expect(after.config.legacyMedia.freeze).toBe(true);
    const legacyOld = await fetch(`${after.url}/_matrix/media/v3/download/localhost/${old}`);
    expect([legacyOld.status, await legacyOld.text()]).toEqual([200, 'from before the freeze']);
    const fresh = await upload(after.url, 'after');
    const legacyNew = await fetch(`${after.url}/_matrix/media/v3/download/localhost/${fresh}`);
    expect([legacyNew.status, ((await legacyNew.json()) as { errcode: string }).errcode]).toEqual([404, 'M_NOT_FOUND']);
    const client = await fetch(`${after.url}/_matrix/client/v1/media/download/localhost/${fresh}`, { headers: ALICE });
    expect([client.status, await client.text()]).toEqual([200, 'after']);
  });
});
