import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { decodeMultipart } from '@hsmedia/multipart';
import { buildServerKeysResponse, generateSigningKey, signXMatrixRequest } from '@hsmedia/signing';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { tempDir } from './helpers.js';

// Scale-out without a shared filesystem: two `hsmedia-server` processes (build first:
// npx tsc -b apps/media-server), one PostgreSQL schema, one S3 bucket (a real Ceph RGW), and each
// instance its own private directory. Whatever one instance stores, the other serves and deletes.

const SERVER_NAME = 'media.test';
const REMOTE = 'remote.test';
const TOKEN = 'scale_out_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of media-server on S3');

interface Instance {
  readonly url: string;
  readonly cli: CliProcess;
  readonly dir: string;
}

describe.skipIf(env.unavailable !== undefined)('two instances on one PostgreSQL and one S3 bucket, no shared directory', () => {
  let rgw: RgwCluster;
  let s3: S3Client;
  let bucket: string;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let schema: string;
  let keyServer: Server;
  const remoteKey = generateSigningKey();
  let a: Instance;
  let b: Instance;

  async function startInstance(name: string, keyServerUrl: string): Promise<Instance> {
    const own = join(dir.path, name);
    await mkdir(own);
    const config = {
      server_name: SERVER_NAME,
      listen: { host: '127.0.0.1', port: 0 },
      database: { postgres: { url: PG_URL, schema, application_name: `hsm-s3-${name}`, pool: { max: 4 } } },
      media_store: {
        s3: { endpoint: rgw.endpoint, bucket, prefix: 'media/', force_path_style: true, access_key_id: rgw.accessKeyId, secret_access_key: rgw.secretAccessKey },
      },
      signing_key_path: join(own, 'signing.key'),
      log_level: 'info',
      auth: { tokens: { [TOKEN]: `@alice:${SERVER_NAME}` } },
      admins: [`@alice:${SERVER_NAME}`],
      federation: { destinations: { [REMOTE]: keyServerUrl }, ip_range_allowlist: ['127.0.0.1/32'] },
    };
    const path = join(own, 'config.yaml');
    await writeFile(path, stringify(config));
    const cli = new CliProcess(['--config', path], own);
    return { url: await cli.listening(), cli, dir: own };
  }

  async function objectKeys(): Promise<string[]> {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'media/' }));
    return (out.Contents ?? []).map((object) => object.Key!).sort();
  }

  beforeAll(async () => {
    [rgw, dir, schema] = await Promise.all([startRgw(), tempDir('hsmedia-s3-scale-'), env.createSchema()]);
    s3 = new S3Client({
      endpoint: rgw.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    });
    bucket = await rgw.createBucket();
    // The remote server's key server, so that B can verify a signed federation request.
    keyServer = createServer((req, res) => {
      const keys = buildServerKeysResponse({ serverName: REMOTE, signingKeys: remoteKey, validUntilTs: Date.now() + 3_600_000 });
      res.writeHead(req.url === '/_matrix/key/v2/server' ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(keys));
    });
    await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
    const keyServerUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`;
    [a, b] = await Promise.all([startInstance('a', keyServerUrl), startInstance('b', keyServerUrl)]);
  }, RGW_START_TIMEOUT_MS);

  afterAll(async () => {
    for (const instance of [a, b]) {
      if (instance === undefined) continue;
      instance.cli.child.kill('SIGTERM');
      await instance.cli.exited;
    }
    keyServer?.close();
    s3?.destroy();
    await rgw?.stop();
    await env.dispose();
    await dir?.cleanup();
  }, 120_000);

  it('upload on A; download, thumbnail and federation-serve on B; delete on B; gone on A', async () => {
    const png = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
    const uploaded = await fetch(`${a.url}/_matrix/media/v3/upload?filename=pic.png`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'image/png' },
      body: png,
    });
    expect(uploaded.status).toBe(200);
    const mediaId = ((await uploaded.json()) as { content_uri: string }).content_uri.slice(`mxc://${SERVER_NAME}/`.length);
    const keysAfterUpload = await objectKeys();
    expect(keysAfterUpload.length).toBeGreaterThanOrEqual(1);

    const download = await fetch(`${b.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { headers: AUTH });
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(png)).toBe(true);

    const ranged = await fetch(`${b.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { headers: { ...AUTH, range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(png.subarray(10, 20))).toBe(true);

    const thumbnail = await fetch(`${b.url}/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${mediaId}?width=64&height=64&method=scale`, { headers: AUTH });
    expect(thumbnail.status).toBe(200);
    const thumbnailMeta = await sharp(Buffer.from(await thumbnail.arrayBuffer())).metadata();
    expect(thumbnailMeta.width).toBeLessThan(640); // a generated thumbnail, not the original

    const uri = `/_matrix/federation/v1/media/download/${mediaId}`;
    const authorization = signXMatrixRequest({ method: 'GET', uri, origin: REMOTE, destination: SERVER_NAME }, remoteKey);
    const federated = await fetch(`${b.url}${uri}`, { headers: { authorization } });
    expect(federated.status).toBe(200);
    const parts = await decodeMultipart(federated.headers.get('content-type')!, federated.body!, { maxContentBytes: 1 << 20 });
    if (parts.kind !== 'content') throw new Error('expected inline content');
    expect(Buffer.from(await new Response(parts.stream).arrayBuffer()).equals(png)).toBe(true);

    const deleted = await fetch(`${b.url}/_synapse/admin/v1/media/${SERVER_NAME}/${mediaId}?reason=scale-out+test`, { method: 'DELETE', headers: AUTH });
    expect(deleted.status).toBe(200);
    const gone = await fetch(`${a.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { headers: AUTH });
    expect(gone.status).toBe(404);
    const goneThumbnail = await fetch(`${a.url}/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${mediaId}?width=64&height=64&method=scale`, { headers: AUTH });
    expect(goneThumbnail.status).toBe(404);
    // The media's objects are gone from the bucket too (the thumbnail's with it).
    const remaining = await objectKeys();
    for (const key of keysAfterUpload) expect(remaining).not.toContain(key);

    // And no instance wrote media bytes to its own directory.
    for (const instance of [a, b]) {
      const files = await readdir(instance.dir, { recursive: true });
      expect(files.filter((file) => !/^(config\.yaml|signing\.key|admin[^/]*|.*\.token)$/.test(file))).toEqual([]);
    }
  }, 120_000);
});
