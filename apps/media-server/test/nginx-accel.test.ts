import { randomBytes } from 'node:crypto';
import { chmod, readFile, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { startServer, type StartedServer } from '../src/server.js';
import { tempDir, testConfig } from './helpers.js';
import { ensureNginx, runNginx, type RunningNginx } from './nginx-binary.js';

// delivery: x_accel behind the sample nginx config (real nginx): the server checks, nginx sends the file.

const appDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLE = join(appDir, 'deploy', 'nginx.conf');
const TOKEN = { Authorization: 'Bearer alice_token' };

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolvePort(port));
    });
  });
}

/** The sample with the addresses changed, TLS dropped and the accel `alias` pointed at `mediaDir`. */
function adaptSample(sample: string, ports: { media: number; nginx: number }, mediaDir: string): string {
  const adapted = sample
    .replace(/server 127\.0\.0\.1:8009;/, `server 127.0.0.1:${ports.media};`)
    .replace(/server 127\.0\.0\.1:8008;/, `server 127.0.0.1:${ports.nginx + 1};`)
    .replace(/^\s*listen 443 ssl;.*$/m, `    listen 127.0.0.1:${ports.nginx};`)
    .replace(/^\s*listen 8448 ssl;.*$/m, '')
    .replace(/^\s*ssl_certificate(_key)? .*$/gm, '')
    .replace(/alias \/var\/lib\/hsmedia\/media\/;/, `alias ${mediaDir}/;`);
  expect(adapted).toContain(`alias ${mediaDir}/;`);
  return adapted;
}

let nginx: RunningNginx | undefined;
let nginxUrl = '';
let media: StartedServer | undefined;
let dir: { path: string; cleanup(): Promise<void> } | undefined;
let mediaDir = '';

beforeAll(async () => {
  const binary = ensureNginx();
  dir = await tempDir('hsmedia-nginx-accel-');
  // nginx's workers (user nobody when started by root) read the media files, as in a deployment.
  await chmod(dir.path, 0o755);
  mediaDir = join(dir.path, 'media');
  media = await startServer(
    testConfig(dir.path, {
      log_level: 'silent',
      auth: { tokens: { alice_token: '@alice:localhost' } },
      admins: ['@alice:localhost'],
      media_store: { filesystem: { path: mediaDir } },
      delivery: 'x_accel',
      listen: { host: '127.0.0.1', port: 0, trusted_proxies: ['127.0.0.1/32'] },
    }),
  );
  const ports = { media: Number(new URL(media.url).port), nginx: await freePort() };
  const site = adaptSample(await readFile(SAMPLE, 'utf8'), ports, mediaDir);
  nginx = await runNginx(binary, join(dir.path, 'nginx'), site);
  nginxUrl = `http://127.0.0.1:${ports.nginx}`;
  for (let attempt = 0; ; attempt++) {
    try {
      await (await fetch(`${nginxUrl}/_matrix/client/v1/media/config`)).arrayBuffer();
      break;
    } catch (err) {
      if (attempt > 200) throw new Error(`nginx did not start: ${nginx.log()} ${(err as Error).message}`);
      await new Promise((done) => setTimeout(done, 50));
    }
  }
}, 600_000);

afterAll(async () => {
  await nginx?.stop();
  await media?.close();
  await dir?.cleanup();
});

async function upload(body: Uint8Array, contentType: string, filename: string): Promise<string> {
  const up = await fetch(`${nginxUrl}/_matrix/media/v3/upload?filename=${filename}`, {
    method: 'POST',
    headers: { ...TOKEN, 'Content-Type': contentType },
    body,
  });
  expect(up.status).toBe(200);
  return ((await up.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

async function blobFiles(): Promise<string[]> {
  const entries = await readdir(join(mediaDir, 'blobs'), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

const download = (mediaId: string): string => `/_matrix/client/v1/media/download/localhost/${mediaId}`;

describe('delivery: x_accel behind the sample nginx config', () => {
  it('the server answers X-Accel-Redirect with the media headers and no body; nginx sends the file with them', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const mediaId = await upload(body, 'application/pdf', 'doc.pdf');

    const direct = await fetch(`${media!.url}${download(mediaId)}`, { headers: TOKEN });
    expect(direct.status).toBe(200);
    const accelPath = direct.headers.get('x-accel-redirect')!;
    expect(accelPath).toMatch(/^\/_hsmedia_accel\/blobs\/[A-Za-z0-9_-]{2}\/[A-Za-z0-9_-]{2}\/[A-Za-z0-9_-]+$/);
    expect((await direct.arrayBuffer()).byteLength).toBe(0);
    // The path names the stored file, and nothing else.
    expect(await blobFiles()).toContain(join(mediaDir, accelPath.slice('/_hsmedia_accel/'.length)));

    const res = await fetch(`${nginxUrl}${download(mediaId)}`, { headers: TOKEN });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-accel-redirect')).toBeNull();
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename=doc.pdf');
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toMatch(/^private, max-age=/);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('etag')).toBe(direct.headers.get('etag'));
    expect(res.headers.get('content-length')).toBe(String(body.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
  });

  it('nginx answers ranges; the server answers 304 and 416 itself', async () => {
    const body = randomBytes(100_000);
    const mediaId = await upload(body, 'image/png', 'r.png');
    const ranged = await fetch(`${nginxUrl}${download(mediaId)}`, { headers: { ...TOKEN, Range: 'bytes=1000-1999' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1000-1999/${body.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(body.subarray(1000, 2000))).toBe(true);

    const full = await fetch(`${nginxUrl}${download(mediaId)}`, { headers: TOKEN });
    const etag = full.headers.get('etag')!;
    await full.arrayBuffer();
    const notModified = await fetch(`${nginxUrl}${download(mediaId)}`, { headers: { ...TOKEN, 'If-None-Match': etag } });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get('etag')).toBe(etag);

    const unsatisfiable = await fetch(`${nginxUrl}${download(mediaId)}`, { headers: { ...TOKEN, Range: `bytes=${body.length + 5}-` } });
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers.get('content-range')).toBe(`bytes */${body.length}`);
    await unsatisfiable.arrayBuffer();
  });

  it('serves thumbnails through nginx the same way', async () => {
    const png = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
    const mediaId = await upload(png, 'image/png', 'p.png');
    const thumbnail = `/_matrix/client/v1/media/thumbnail/localhost/${mediaId}?width=64&height=64&method=scale`;
    const direct = await fetch(`${media!.url}${thumbnail}`, { headers: TOKEN });
    expect(direct.status).toBe(200);
    expect(direct.headers.get('x-accel-redirect')).toMatch(/^\/_hsmedia_accel\/blobs\//);
    await direct.arrayBuffer();
    const res = await fetch(`${nginxUrl}${thumbnail}`, { headers: TOKEN });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\//);
    expect(res.headers.get('content-disposition')).toMatch(/^inline; filename=thumbnail\./);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
    expect(bytes.equals(png)).toBe(false);
    // A configured size (the smallest that fits the request), smaller than the original.
    expect((await sharp(bytes).metadata()).width).toBeLessThan(400);
  });

  it('no X-Accel-Redirect without the checks: unauthenticated, unknown and quarantined media', async () => {
    const mediaId = await upload(randomBytes(2_000), 'image/png', 'q.png');
    const anonymous = await fetch(`${media!.url}${download(mediaId)}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('x-accel-redirect')).toBeNull();
    expect(((await anonymous.json()) as { errcode: string }).errcode).toBe('M_MISSING_TOKEN');
    const unknown = await fetch(`${media!.url}${download('NoSuchMedia1234')}`, { headers: TOKEN });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-accel-redirect')).toBeNull();
    await unknown.arrayBuffer();
    const quarantine = await fetch(`${media!.url}/_synapse/admin/v1/media/quarantine/localhost/${mediaId}`, { method: 'POST', headers: TOKEN });
    expect(quarantine.status).toBe(200);
    const quarantined = await fetch(`${media!.url}${download(mediaId)}`, { headers: TOKEN });
    expect(quarantined.status).toBe(404);
    expect(quarantined.headers.get('x-accel-redirect')).toBeNull();
    await quarantined.arrayBuffer();
  });

  it('clients cannot reach the internal location, and a file gone after the check is a Matrix 404', async () => {
    const body = randomBytes(50_000);
    const mediaId = await upload(body, 'application/octet-stream', 'gone.bin');
    const direct = await fetch(`${media!.url}${download(mediaId)}`, { headers: TOKEN });
    const accelPath = direct.headers.get('x-accel-redirect')!;
    await direct.arrayBuffer();
    const outside = await fetch(`${nginxUrl}${accelPath}`);
    expect(outside.status).toBe(404);
    expect(Buffer.from(await outside.arrayBuffer()).equals(body)).toBe(false);

    await rm(join(mediaDir, accelPath.slice('/_hsmedia_accel/'.length)));
    const gone = await fetch(`${nginxUrl}${download(mediaId)}`, { headers: TOKEN });
    expect(gone.status).toBe(404);
    expect(gone.headers.get('content-type')).toBe('application/json');
    expect(((await gone.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
  });
});

describe('delivery: x_accel config', () => {
  it('needs media_store.filesystem and a plain URI prefix, each error under its key', () => {
    const ok = parseConfig({ delivery: 'x_accel', x_accel_location: '/internal/media/' }, '/srv');
    expect(ok.ok && [ok.config.delivery, ok.config.xAccelLocation]).toEqual(['x_accel', '/internal/media/']);
    const s3 = parseConfig({ delivery: 'x_accel', media_store: { s3: { bucket: 'media' } } }, '/srv');
    expect(s3.ok).toBe(false);
    expect(s3.ok ? [] : s3.errors.filter((m) => m.startsWith('delivery'))).toHaveLength(1);
    for (const location of ['relative/', '/no-trailing-slash', '/../escape/', '/a b/']) {
      const bad = parseConfig({ delivery: 'x_accel', x_accel_location: location }, '/srv');
      expect(bad.ok ? [] : bad.errors.filter((m) => m.startsWith('x_accel_location'))).toHaveLength(1);
    }
  });
});
