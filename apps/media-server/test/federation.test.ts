import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseContentDisposition } from '@hsmedia/media-core';
import { decodeMultipart } from '@hsmedia/multipart';
import { generateSigningKey, parseSigningKeyFile, signXMatrixRequest } from '@hsmedia/signing';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess } from './cli-process.js';
import { startServer } from '../src/server.js';
import { freePort, tempDir, testConfig } from './helpers.js';

// Two real server processes, a.test and b.test on 127.0.0.1, wired to each
// other with federation.destinations. Federation requests are counted in the
// servers' own request log lines (JSON on stdout).

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

interface Peer {
  readonly name: string;
  readonly url: string;
  readonly token: string;
  readonly cli: CliProcess;
}

let dir: { path: string; cleanup(): Promise<void> };
let a: Peer;
let b: Peer;

async function startPeer(name: string, port: number, destinations: Record<string, string>): Promise<Peer> {
  const token = `${name}_token`;
  const base = join(dir.path, name);
  const config = {
    server_name: name,
    listen: { host: '127.0.0.1', port },
    database: { sqlite: { path: join(base, 'media.db') } },
    media_store: { filesystem: { path: join(base, 'media') } },
    signing_key_path: join(base, 'signing.key'),
    max_upload_size: '8M',
    log_level: 'info',
    // One process: single-flight is per process, and these tests count remote fetches.
    workers: 1,
    auth: { tokens: { [token]: `@alice:${name}` } },
    federation: { destinations, ip_range_allowlist: ['127.0.0.1/32'], max_download_size: '4M', failure_cache_ms: 0 },
    // Other servers may still use the legacy download endpoint (tested below): opt out of the default freeze.
    legacy_media: { freeze: false },
  };
  const path = join(dir.path, `${name}.yaml`);
  await writeFile(path, stringify(config));
  const cli = new CliProcess(['--config', path], dir.path);
  const url = await cli.listening();
  return { name, url, token, cli };
}

async function upload(peer: Peer, body: Uint8Array, contentType: string, filename?: string): Promise<string> {
  const query = filename === undefined ? '' : `?filename=${encodeURIComponent(filename)}`;
  const res = await fetch(`${peer.url}/_matrix/media/v3/upload${query}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${peer.token}`, 'Content-Type': contentType },
    body,
  });
  expect(res.status).toBe(200);
  const { content_uri } = (await res.json()) as { content_uri: string };
  return content_uri.slice(`mxc://${peer.name}/`.length);
}

function clientDownload(through: Peer, serverName: string, mediaId: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${through.url}/_matrix/client/v1/media/download/${serverName}/${mediaId}`, {
    ...init,
    headers: { Authorization: `Bearer ${through.token}`, ...(init.headers as Record<string, string> | undefined) },
  });
}

/** Request log lines of `peer` for federation media downloads of `mediaId`. */
function federationRequests(peer: Peer, mediaId: string): Record<string, unknown>[] {
  return peer.cli
    .logLines()
    .filter((line) => line['msg'] === 'request' && String(line['path']).startsWith(`/_matrix/federation/v1/media/download/${mediaId}`));
}

/** Waits until the request log shows `count` finished federation downloads (log lines are written on close). */
async function waitForFederationRequests(peer: Peer, mediaId: string, count: number): Promise<void> {
  await peer.cli.waitFor(() => federationRequests(peer, mediaId).length >= count, `${count} federation requests`);
}

beforeAll(async () => {
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
  dir = await tempDir('hsmedia-federation-');
  const [portA, portB] = [await freePort(), await freePort()];
  const destinations = { 'a.test': `http://127.0.0.1:${portA}`, 'b.test': `http://127.0.0.1:${portB}` };
  [a, b] = await Promise.all([startPeer('a.test', portA, destinations), startPeer('b.test', portB, destinations)]);
}, 120_000);

afterAll(async () => {
  for (const peer of [a, b]) {
    if (peer === undefined) continue;
    peer.cli.child.kill('SIGTERM');
    await peer.cli.exited;
  }
  await dir?.cleanup();
});

describe('two servers over federation', () => {
  it('each downloads the other\'s media byte-identical, type verbatim, Unicode name kept, then from cache', async () => {
    const fromA = randomBytes(300 * 1024);
    const fromB = randomBytes(5000);
    const nameA = 'ünïcødé 🐱 "quoted".png';
    const nameB = 'отчёт.pdf';
    const idA = await upload(a, fromA, 'img/png', nameA);
    const idB = await upload(b, fromB, 'application/pdf', nameB);

    for (const [through, owner, id, bytes, type, name] of [
      [b, a, idA, fromA, 'img/png', nameA],
      [a, b, idB, fromB, 'application/pdf', nameB],
    ] as const) {
      const first = await clientDownload(through, owner.name, id);
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toBe(type);
      expect(Buffer.from(await first.arrayBuffer()).equals(bytes)).toBe(true);
      expect(parseContentDisposition(first.headers.get('content-disposition') ?? '')?.filename).toBe(name);
      await waitForFederationRequests(owner, id, 1);
      const [line] = federationRequests(owner, id);
      expect(line?.['status']).toBe(200);

      const second = await clientDownload(through, owner.name, id);
      expect(second.status).toBe(200);
      expect(second.headers.get('content-type')).toBe(type);
      expect(second.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
      expect(Buffer.from(await second.arrayBuffer()).equals(bytes)).toBe(true);
      expect(parseContentDisposition(second.headers.get('content-disposition') ?? '')?.filename).toBe(name);
      // Served from the remote cache: still one federation request.
      expect(federationRequests(owner, id)).toHaveLength(1);
    }
  });

  it('serves local media over federation only with a valid X-Matrix signature, as multipart', async () => {
    const bytes = randomBytes(1000);
    const id = await upload(a, bytes, 'text/plain', 'note.txt');
    const path = `/_matrix/federation/v1/media/download/${id}`;

    const unsigned = await fetch(`${a.url}${path}`);
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { errcode: string }).errcode).toBe('M_UNAUTHORIZED');

    // Signed by a key b.test does not publish: refused.
    const stranger = signXMatrixRequest({ method: 'GET', uri: path, origin: 'b.test', destination: 'a.test' }, generateSigningKey('x1'));
    const forged = await fetch(`${a.url}${path}`, { headers: { Authorization: stranger } });
    expect(forged.status).toBe(401);

    // B fetched it for its client, so A saw a signed request from B succeed (X-Matrix both ways).
    const viaB = await clientDownload(b, 'a.test', id);
    expect(Buffer.from(await viaB.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('answers 404 M_NOT_FOUND for unknown remote media and remembers nothing wrong', async () => {
    const res = await clientDownload(b, 'a.test', 'doesNotExist123');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
  });

  it('does not serve media it merely cached to other servers over federation', async () => {
    const bytes = randomBytes(100);
    const id = await upload(a, bytes, 'application/octet-stream');
    expect((await clientDownload(b, 'a.test', id)).status).toBe(200);
    // B holds a.test's media in its remote cache; over federation an ID names B's own media only.
    const [keyA] = parseSigningKeyFile(await readFile(join(dir.path, 'a.test', 'signing.key'), 'utf8'));
    const uri = `/_matrix/federation/v1/media/download/${id}`;
    const signed = signXMatrixRequest({ method: 'GET', uri, origin: 'a.test', destination: 'b.test' }, keyA!);
    const res = await fetch(`${b.url}${uri}`, { headers: { Authorization: signed } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');

    // A key b.test does not know for a.test: refused before anything is looked up.
    const stranger = signXMatrixRequest({ method: 'GET', uri, origin: 'a.test', destination: 'b.test' }, generateSigningKey('x2'));
    expect((await fetch(`${b.url}${uri}`, { headers: { Authorization: stranger } })).status).toBe(401);
  });

  it('gives 502 M_TOO_LARGE for remote media over max_download_size and caches nothing', async () => {
    const big = randomBytes(5 * 1024 * 1024);
    const id = await upload(a, big, 'application/octet-stream');
    const res = await clientDownload(b, 'a.test', id);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
    const again = await clientDownload(b, 'a.test', id);
    expect(again.status).toBe(502);
    // failure_cache_ms is 0 here: both asked A, and neither was cached.
    await waitForFederationRequests(a, id, 2);
  });

  it('refuses to connect to a loopback destination that is not allowlisted (SSRF guard): 502, nothing cached', async () => {
    const id = await upload(a, randomBytes(100), 'text/plain');
    const cDir = join(dir.path, 'c.test');
    const c = await startServer(
      testConfig(cDir, {
        server_name: 'c.test',
        log_level: 'silent',
        auth: { tokens: { c_token: '@alice:c.test' } },
        federation: { destinations: { 'a.test': a.url } },
      }),
    );
    try {
      const res = await fetch(`${c.url}/_matrix/client/v1/media/download/a.test/${id}`, { headers: { Authorization: 'Bearer c_token' } });
      expect(await res.json()).toMatchObject({ errcode: 'M_UNKNOWN' });
      expect(res.status).toBe(502);
      expect(await c.media.deleteMedia('a.test', id)).toBe(false);
    } finally {
      await c.close();
    }
    expect(federationRequests(a, id)).toHaveLength(0);
  });

  it('keeps the legacy download endpoint working for other servers', async () => {
    const bytes = randomBytes(2000);
    const id = await upload(a, bytes, 'image/jpeg');
    const res = await fetch(`${a.url}/_matrix/media/v3/download/a.test/${id}?allow_remote=false`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('100 concurrent clients on one uncached remote media: one federation request, full bytes for all', async () => {
    const bytes = randomBytes(1024 * 1024 + 123);
    const id = await upload(a, bytes, 'video/mp4');
    const results = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await clientDownload(b, 'a.test', id);
        return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
      }),
    );
    for (const { status, body } of results) {
      expect(status).toBe(200);
      expect(body.equals(bytes)).toBe(true);
    }
    await waitForFederationRequests(a, id, 1);
    expect(federationRequests(a, id)).toHaveLength(1);
  });

  it('decodes what A sends over federation as the spec framing (signed with the shared file key)', async () => {
    // Sign as b.test with b.test's real key file, so A verifies it through the key server.
    const [key] = parseSigningKeyFile(await readFile(join(dir.path, 'b.test', 'signing.key'), 'utf8'));
    const bytes = randomBytes(777);
    const id = await upload(a, bytes, 'img/png', 'ü.png');
    const uri = `/_matrix/federation/v1/media/download/${id}`;
    const res = await fetch(`${a.url}${uri}`, {
      headers: { Authorization: signXMatrixRequest({ method: 'GET', uri, origin: 'b.test', destination: 'a.test' }, key!) },
    });
    expect(res.status).toBe(200);
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    const decoded = await decodeMultipart(res.headers.get('content-type') ?? '', res.body!, { maxContentBytes: 1 << 20 });
    if (decoded.kind !== 'content') throw new Error('expected inline content');
    expect(decoded.metadata).toEqual({});
    expect(decoded.contentType).toBe('img/png');
    expect(parseContentDisposition(decoded.contentDisposition ?? '')?.filename).toBe('ü.png');
    expect(Buffer.from(await new Response(decoded.stream).arrayBuffer()).equals(bytes)).toBe(true);

    const notModified = await fetch(`${a.url}${uri}`, {
      headers: {
        Authorization: signXMatrixRequest({ method: 'GET', uri, origin: 'b.test', destination: 'a.test' }, key!),
        'If-None-Match': etag!,
      },
    });
    expect(notModified.status).toBe(304);
  });
});
