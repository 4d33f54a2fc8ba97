import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { startServer, type StartedServer } from '../src/server.js';
import { LogSink, tempDir, testConfig } from './helpers.js';

// media_store.s3.local_cache on a real Ceph RGW: hot media served from local disk, quarantined and
// deleted media evicted.

const TOKEN = 'cache_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let rgw: RgwCluster;
let s3: S3Client;
let bucket: string;
let dir: Awaited<ReturnType<typeof tempDir>>;
let server: StartedServer;
let cacheDir: string;

beforeAll(async () => {
  [rgw, dir] = await Promise.all([startRgw(), tempDir('hsmedia-s3-cache-')]);
  bucket = await rgw.createBucket();
  s3 = new S3Client({
    endpoint: rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  });
  cacheDir = join(dir.path, 'cache');
  server = await startServer(
    testConfig(dir.path, {
      log_level: 'silent',
      auth: { tokens: { [TOKEN]: '@alice:localhost' } },
      admins: ['@alice:localhost'],
      // The in-memory blob cache off: every read goes to the blob store (the tier under test).
      media_cache: { max_bytes: 0 },
      media_store: {
        s3: {
          endpoint: rgw.endpoint,
          bucket,
          prefix: 'cached/',
          force_path_style: true,
          access_key_id: rgw.accessKeyId,
          secret_access_key: rgw.secretAccessKey,
          local_cache: { path: cacheDir, max_size: '8M' },
        },
      },
    }),
  );
}, RGW_START_TIMEOUT_MS);

afterAll(async () => {
  await server?.close();
  s3?.destroy();
  await rgw?.stop();
  await dir?.cleanup();
}, 120_000);

async function cachedFiles(): Promise<string[]> {
  const entries = await readdir(join(cacheDir, 'blobs'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (await condition()) return;
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function upload(body: Uint8Array): Promise<string> {
  const response = await fetch(`${server.url}/_matrix/media/v3/upload?filename=c.bin`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/octet-stream' },
    body,
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { content_uri: string }).content_uri.split('/').pop()!;
}

const download = (mediaId: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${server.url}/_matrix/client/v1/media/download/localhost/${mediaId}`, { headers: { ...AUTH, ...headers } });

describe('media_store.s3.local_cache', () => {
  it('parses, and refuses a bad section under its key', () => {
    const ok = parseConfig({ media_store: { s3: { bucket: 'media', local_cache: { path: 'c', max_size: '1G' } } } }, '/srv');
    expect(ok.ok && ok.config.mediaStore.kind === 's3' && ok.config.mediaStore.localCache).toEqual({ path: '/srv/c', maxBytes: 1024 ** 3 });
    const bad = parseConfig({ media_store: { s3: { bucket: 'media', local_cache: { path: '', max_size: 'lots' } } } }, '/srv');
    expect(bad.ok ? [] : bad.errors.filter((m) => m.startsWith('media_store.s3.local_cache'))).toHaveLength(2);
  });

  it('keeps what was read and serves it from local disk (the bucket object is not needed any more)', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const mediaId = await upload(body);
    const first = await download(mediaId);
    expect(Buffer.from(await first.arrayBuffer()).equals(body)).toBe(true);
    await waitFor(async () => (await cachedFiles()).length === 1, 'the local copy');
    const [blobId] = await cachedFiles();
    // Removed from the bucket behind the server's back: only the local copy can answer now.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `cached/${blobId}` }));
    const hit = await download(mediaId);
    expect(hit.status).toBe(200);
    expect(Buffer.from(await hit.arrayBuffer()).equals(body)).toBe(true);
    const ranged = await download(mediaId, { range: 'bytes=5-9' });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(body.subarray(5, 10))).toBe(true);
  });

  it('evicts quarantined media and deleted media', async () => {
    const quarantinedId = await upload(randomBytes(100_000));
    const deletedId = await upload(randomBytes(100_000));
    const before = (await cachedFiles()).length;
    for (const id of [quarantinedId, deletedId]) await (await download(id)).arrayBuffer();
    await waitFor(async () => (await cachedFiles()).length === before + 2, 'two local copies');

    const quarantine = await fetch(`${server.url}/_synapse/admin/v1/media/quarantine/localhost/${quarantinedId}`, { method: 'POST', headers: AUTH });
    expect(quarantine.status).toBe(200);
    await waitFor(async () => (await cachedFiles()).length === before + 1, 'the quarantined copy to go');
    const deleted = await fetch(`${server.url}/_synapse/admin/v1/media/localhost/${deletedId}`, { method: 'DELETE', headers: AUTH });
    expect(deleted.status).toBe(200);
    await waitFor(async () => (await cachedFiles()).length === before, 'the deleted copy to go');
    expect((await download(deletedId)).status).toBe(404);
  });
});

describe('media_store.s3.local_cache fill failures', () => {
  it('are logged once per cause and all counted in hsmedia_local_cache_fill_failures_total', async () => {
    const log = new LogSink();
    const failingDir = join(dir.path, 'failing-cache');
    const failing = await startServer(
      testConfig(join(dir.path, 'failing'), {
        log_level: 'warn',
        auth: { tokens: { [TOKEN]: '@alice:localhost' } },
        media_cache: { max_bytes: 0 },
        metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
        media_store: {
          s3: {
            endpoint: rgw.endpoint,
            bucket,
            prefix: 'failing/',
            force_path_style: true,
            access_key_id: rgw.accessKeyId,
            secret_access_key: rgw.secretAccessKey,
            local_cache: { path: failingDir, max_size: '8M' },
          },
        },
      }),
      { logDestination: log },
    );
    try {
      const body = randomBytes(50_000);
      const response = await fetch(`${failing.url}/_matrix/media/v3/upload?filename=f.bin`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/octet-stream' },
        body,
      });
      const mediaId = ((await response.json()) as { content_uri: string }).content_uri.split('/').pop()!;
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'failing/' }));
      const blobId = listed.Contents!.map((object) => object.Key!.slice('failing/'.length)).find((key) => !key.startsWith('.'))!;
      // A file where the blob's shard directory belongs: every copy fails (a real filesystem error, EEXIST).
      await mkdir(join(failingDir, 'blobs'), { recursive: true });
      await writeFile(join(failingDir, 'blobs', blobId.slice(0, 2)), 'not a directory');
      const metric = async (): Promise<number> => {
        const text = await (await fetch(`${failing.operations.metricsUrl()}/metrics`)).text();
        return Number(/^hsmedia_local_cache_fill_failures_total\{cause="EEXIST"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      };
      for (let i = 1; i <= 3; i++) {
        const read = await fetch(`${failing.url}/_matrix/client/v1/media/download/localhost/${mediaId}`, { headers: AUTH });
        expect(Buffer.from(await read.arrayBuffer()).equals(body)).toBe(true);
        // One fill at a time: wait for this read's fill to fail before the next read.
        await waitFor(async () => (await metric()) === i, `fill failure ${i}`);
      }
      const logged = log.lines.filter((line) => line['msg'] === 'local cache fill failed; reads of this blob go to the bucket (logged once an hour per cause)');
      expect(logged.map((line) => [line['cause'], line['blob_id']])).toEqual([['EEXIST', blobId]]);
    } finally {
      await failing.close();
    }
  });
});
