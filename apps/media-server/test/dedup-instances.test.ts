import { createHash, randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { tempDir } from './helpers.js';

// Two `hsmedia-server` processes with `dedup.enabled` (build first: npx tsc -b apps/media-server),
// one PostgreSQL schema and one media directory: the same bytes uploaded on both are stored once,
// and a delete of the last reference on one racing an upload of the same bytes on the other never
// loses the uploaded media.
const SERVER_NAME = 'media.test';
const AUTH = { authorization: 'Bearer dedup_alice' };
const ADMIN = { authorization: 'Bearer dedup_admin' };
const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of media-server dedup');

interface Instance {
  readonly url: string;
  readonly cli: CliProcess;
}

describe.skipIf(env.unavailable !== undefined)('dedup across two server processes', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let schema: string;
  let a: Instance;
  let b: Instance;

  async function startInstance(name: string): Promise<Instance> {
    const config = {
      server_name: SERVER_NAME,
      listen: { host: '127.0.0.1', port: 0 },
      database: { postgres: { url: PG_URL, schema, pool: { max: 4 } } },
      media_store: { filesystem: { path: join(dir.path, 'shared-media') } },
      dedup: { enabled: true },
      signing_key_path: join(dir.path, name, 'signing.key'),
      log_level: 'info',
      workers: 1,
      // A record cached by one instance would hide the other's delete for its TTL; these tests read at once.
      media_cache: { max_bytes: 0 },
      auth: { tokens: { dedup_alice: `@alice:${SERVER_NAME}`, dedup_admin: `@admin:${SERVER_NAME}` } },
      admins: [`@admin:${SERVER_NAME}`],
    };
    const path = join(dir.path, `${name}.yaml`);
    await writeFile(path, stringify(config));
    const cli = new CliProcess(['--config', path], dir.path);
    return { url: await cli.listening(), cli };
  }

  beforeAll(async () => {
    dir = await tempDir('h15dedup-instances-');
    schema = await env.createSchema();
    [a, b] = await Promise.all([startInstance('a'), startInstance('b')]);
  }, 120_000);

  afterAll(async () => {
    for (const instance of [a, b]) {
      if (instance === undefined) continue;
      instance.cli.child.kill('SIGTERM');
      await instance.cli.exited;
    }
    await env.dispose();
    await dir?.cleanup();
  }, 60_000);

  async function upload(instance: Instance, body: Buffer): Promise<string> {
    const response = await fetch(`${instance.url}/_matrix/media/v3/upload?filename=x.bin`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
      body,
    });
    expect(response.status).toBe(200);
    const { content_uri: uri } = (await response.json()) as { content_uri: string };
    return uri.slice(`mxc://${SERVER_NAME}/`.length);
  }

  async function downloadSha(instance: Instance, mediaId: string): Promise<string | number> {
    const response = await fetch(`${instance.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { headers: AUTH });
    const body = Buffer.from(await response.arrayBuffer());
    return response.status === 200 ? createHash('sha256').update(body).digest('hex') : response.status;
  }

  async function remove(instance: Instance, mediaId: string): Promise<void> {
    const response = await fetch(`${instance.url}/_synapse/admin/v1/media/${SERVER_NAME}/${mediaId}`, { method: 'DELETE', headers: ADMIN });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  }

  it('stores the same bytes uploaded 10 times at once on both instances once, and serves every copy from either', async () => {
    const body = randomBytes(256 * 1024);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => upload(i % 2 === 0 ? a : b, body)));
    const files = (await readdir(join(dir.path, 'shared-media', 'blobs'), { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    expect(files.map((entry) => entry.name)).toEqual([sha256]);
    for (const [i, id] of ids.entries()) expect(await downloadSha(i % 2 === 0 ? b : a, id)).toBe(sha256);
    const row = (await env.admin.withSchema(schema).table('blob_refs').where({ blob_id: sha256 }).first()) as { ref_count: number };
    expect(Number(row.ref_count)).toBe(10);
    for (const id of ids) await remove(b, id);
    expect(await readdir(join(dir.path, 'shared-media', 'blobs'), { recursive: true, withFileTypes: true }).then((all) => all.filter((e) => e.isFile()))).toEqual([]);
  }, 120_000);

  it('10 rounds: A deletes the last reference while B uploads the same bytes; B’s media stays whole', async () => {
    for (let round = 0; round < 10; round++) {
      const body = randomBytes(64 * 1024);
      const first = await upload(a, body);
      const [, second] = await Promise.all([remove(a, first), upload(b, body)]);
      expect(await downloadSha(a, second)).toBe(createHash('sha256').update(body).digest('hex'));
    }
  }, 120_000);
});
