import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { tempDir } from './helpers.js';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

// Two `hsmedia-server` processes (build first: npx tsc -b apps/media-server) on one PostgreSQL
// schema: a user's upload quota holds for the deployment. Uploads finishing at once on both
// instances take turns (a lease per user in the database) for the check and the write, so they
// cannot all pass a quota that has room for a few.

const SERVER_NAME = 'media.test';
const TOKEN = 'quota_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAX_FILES = 5;
const MAX_BYTES = 10 * 1000;
const UPLOADS_PER_INSTANCE = 10;

const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of upload quotas across instances');

interface Instance {
  readonly url: string;
  readonly cli: CliProcess;
}

describe.skipIf(env.unavailable !== undefined)('upload quotas shared by two instances', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let schema: string;
  const running: Instance[] = [];

  beforeAll(async () => {
    dir = await tempDir('hsmedia-quotas-');
    schema = await env.createSchema();
    const start = async (name: string): Promise<Instance> => {
      await mkdir(join(dir.path, name), { recursive: true });
      const config = {
        server_name: SERVER_NAME,
        listen: { host: '127.0.0.1', port: 0 },
        database: { postgres: { url: PG_URL, schema, application_name: `hsm-quota-${name}`, pool: { max: 4 } } },
        media_store: { filesystem: { path: join(dir.path, 'shared-media') } },
        signing_key_path: join(dir.path, name, 'signing.key'),
        log_level: 'info',
        auth: { tokens: { [TOKEN]: `@alice:${SERVER_NAME}` } },
        quotas: { users: { [`@alice:${SERVER_NAME}`]: { max_files: MAX_FILES, max_bytes: MAX_BYTES } } },
      };
      const path = join(dir.path, `${name}.yaml`);
      await writeFile(path, stringify(config));
      const cli = new CliProcess(['--config', path], dir.path);
      const instance = { url: await cli.listening(), cli };
      running.push(instance);
      return instance;
    };
    await Promise.all([start('a'), start('b')]);
  }, 60_000);

  afterAll(async () => {
    for (const instance of running) {
      instance.cli.child.kill('SIGTERM');
      await instance.cli.exited;
    }
    await env.dispose();
    await dir?.cleanup();
  });

  async function upload(instance: Instance, size: number): Promise<{ status: number; errcode: string | undefined }> {
    const response = await fetch(`${instance.url}/_matrix/media/v3/upload?filename=x.bin`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
      body: randomBytes(size),
    });
    const body = (await response.json()) as { errcode?: string };
    return { status: response.status, errcode: body.errcode };
  }

  async function stored(): Promise<{ files: number; bytes: number }> {
    const [row] = (await env.admin
      .withSchema(schema)
      .table('media')
      .where({ user_id: `@alice:${SERVER_NAME}` })
      .whereNotNull('blob_id')
      .select(env.admin.raw('count(*)::int as files'), env.admin.raw('coalesce(sum(size), 0)::int as bytes'))) as { files: number; bytes: number }[];
    return row!;
  }

  it(`${UPLOADS_PER_INSTANCE} uploads at once on each instance: exactly ${MAX_FILES} are kept, the rest refused 403 with nothing left behind`, async () => {
    const results = await Promise.all(running.flatMap((instance) => Array.from({ length: UPLOADS_PER_INSTANCE }, () => upload(instance, 1_000))));
    const kept = results.filter((result) => result.status === 200).length;
    expect(kept).toBe(MAX_FILES);
    for (const result of results.filter((each) => each.status !== 200)) expect(result).toEqual({ status: 403, errcode: 'M_FORBIDDEN' });
    expect(await stored()).toEqual({ files: MAX_FILES, bytes: MAX_FILES * 1_000 });
    // No orphan blob: the shared media directory holds exactly the kept files, and no staging file.
    const files = (await readdir(join(dir.path, 'shared-media', 'blobs'), { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    expect(files).toHaveLength(MAX_FILES);
    expect(await readdir(join(dir.path, 'shared-media', 'staging'))).toEqual([]);
    // And the leases were released: nothing is left held in the table.
    const leases = (await env.admin.withSchema(schema).table('job_leases').where('name', 'like', 'user:%')) as unknown[];
    expect(leases).toEqual([]);
  }, 60_000);
});
