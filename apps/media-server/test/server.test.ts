import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { SUPPORTED_SPEC_VERSIONS } from '../src/versions.js';
import { download, fakeHomeserver, homeserverKeyFile, LogSink, tempDir, testConfig, upload } from './helpers.js';

let dir: { path: string; cleanup(): Promise<void> };
const running: StartedServer[] = [];

beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
  await dir.cleanup();
});

async function start(document: Record<string, unknown> = {}, log = new LogSink()): Promise<StartedServer> {
  const server = await startServer(testConfig(dir.path, document), { logDestination: log });
  running.push(server);
  return server;
}

describe('standalone mode with a token table', () => {
  const auth = { tokens: { alice_token: '@alice:localhost' } };

  it('uploads and downloads with a static token', async () => {
    const server = await start({ auth });
    const uploaded = await upload(server.url, 'alice_token', 'hello, world');
    expect(uploaded.status).toBe(200);
    const { content_uri: contentUri } = (await uploaded.json()) as { content_uri: string };
    expect(contentUri).toMatch(/^mxc:\/\/localhost\/[A-Za-z0-9_-]+$/);
    const downloaded = await download(server.url, 'alice_token', contentUri);
    expect(downloaded.status).toBe(200);
    expect(downloaded.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await downloaded.text()).toBe('hello, world');
  });

  it('refuses missing and unknown tokens with Matrix errors', async () => {
    const server = await start({ auth });
    const missing = await upload(server.url, '', 'x');
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ errcode: 'M_MISSING_TOKEN' });
    const unknown = await upload(server.url, 'mallory', 'x');
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
  });

  it('refuses an upload over max_upload_size with 413 M_TOO_LARGE', async () => {
    const server = await start({ auth, max_upload_size: '1K' });
    const response = await upload(server.url, 'alice_token', 'x'.repeat(2048));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ errcode: 'M_TOO_LARGE' });
  });

  it('answers /_matrix/client/versions with v1.11 … v1.19, without a token', async () => {
    const server = await start({ auth });
    const response = await fetch(`${server.url}/_matrix/client/versions`);
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    const body = (await response.json()) as { versions: string[] };
    expect(body.versions).toEqual(['v1.11', 'v1.12', 'v1.13', 'v1.14', 'v1.15', 'v1.16', 'v1.17', 'v1.18', 'v1.19']);
    expect(SUPPORTED_SPEC_VERSIONS).toEqual(body.versions);
    const post = await fetch(`${server.url}/_matrix/client/versions`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(await post.json()).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
  });

  it('answers unknown endpoints with 404 M_UNRECOGNIZED', async () => {
    const server = await start({ auth });
    const response = await fetch(`${server.url}/_matrix/client/v3/sync`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
  });
});

describe('homeserver mode (whoami delegation)', () => {
  it('accepts tokens the homeserver knows and refuses the others', async () => {
    const key = await homeserverKeyFile(dir.path);
    const homeserver = await fakeHomeserver({ hs_token: '@bob:localhost' }, { serverName: 'localhost', key });
    try {
      const server = await start({ auth: { homeserver_url: homeserver.url } });
      const uploaded = await upload(server.url, 'hs_token', 'from bob');
      expect(uploaded.status).toBe(200);
      const { content_uri: contentUri } = (await uploaded.json()) as { content_uri: string };
      const downloaded = await download(server.url, 'hs_token', contentUri);
      expect(await downloaded.text()).toBe('from bob');
      expect(homeserver.calls()).toBeGreaterThanOrEqual(1);
      const refused = await download(server.url, 'not_a_token', contentUri);
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
    } finally {
      await homeserver.close();
    }
  });

  it('leaves /_matrix/client/versions to the homeserver', async () => {
    const key = await homeserverKeyFile(dir.path);
    const homeserver = await fakeHomeserver({}, { serverName: 'localhost', key });
    try {
      const server = await start({ auth: { homeserver_url: homeserver.url } });
      const response = await fetch(`${server.url}/_matrix/client/versions`);
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ errcode: 'M_UNRECOGNIZED' });
    } finally {
      await homeserver.close();
    }
  });
});

describe('generated admin token', () => {
  it('is created on first start, stored beside the signing key, usable, and reused after a restart', async () => {
    const first = await start();
    const admin = first.adminToken;
    expect(admin).toMatchObject({ userId: '@admin:localhost', created: true, tokenPath: join(dir.path, 'data', 'admin-token') });
    expect((await readFile(join(dir.path, 'data', 'admin-token'), 'utf8')).trim()).toBe(admin?.token);
    const uploaded = await upload(first.url, admin?.token ?? '', 'admin upload');
    expect(uploaded.status).toBe(200);
    const { content_uri: contentUri } = (await uploaded.json()) as { content_uri: string };
    await first.close();

    const second = await start();
    expect(second.adminToken).toMatchObject({ token: admin?.token, created: false });
    expect(second.signingKey.keyId).toBe(first.signingKey.keyId);
    expect(await (await download(second.url, admin?.token, contentUri)).text()).toBe('admin upload');
  });

  it('serves /versions in this standalone mode too', async () => {
    const server = await start();
    expect((await fetch(`${server.url}/_matrix/client/versions`)).status).toBe(200);
  });
});

describe('logging', () => {
  it('writes a startup line with the URL and one line per request without access tokens', async () => {
    const log = new LogSink();
    const server = await start({ auth: { tokens: { secret_token_value: '@alice:localhost' } } }, log);
    expect(log.lines).toContainEqual(expect.objectContaining({ msg: `listening on ${server.url}`, url: server.url, level: 'info' }));

    const uploaded = await fetch(`${server.url}/_matrix/media/v3/upload?filename=a.txt&access_token=secret_token_value`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: 'abc',
    });
    expect(uploaded.status).toBe(200);
    const body = await uploaded.text();
    await fetch(`${server.url}/nowhere`).then((response) => response.text());
    await server.close();

    const requests = log.requests();
    expect(requests).toHaveLength(2);
    expect(requests[0]).toMatchObject({
      method: 'POST',
      path: '/_matrix/media/v3/upload?filename=a.txt&access_token=[redacted]',
      status: 200,
      bytes: Buffer.byteLength(body),
      user_id: '@alice:localhost',
    });
    expect(typeof requests[0]?.['duration_ms']).toBe('number');
    expect(requests[1]).toMatchObject({ method: 'GET', path: '/nowhere', status: 404 });
    expect(JSON.stringify(log.lines)).not.toContain('secret_token_value');
    expect(log.lines.at(-1)).toMatchObject({ msg: 'stopped' });
  });
});
