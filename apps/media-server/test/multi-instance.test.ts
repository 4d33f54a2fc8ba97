import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signXMatrixRequest } from '@hsmedia/signing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { FakeRemote, REMOTE } from './fake-remote.js';
import { tempDir } from './helpers.js';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

// Two `hsmedia-server` processes (build first: npx tsc -b apps/media-server)
// sharing one PostgreSQL schema and one media directory behave as one server.

const SERVER_NAME = 'media.test';
const TOKEN = 'multi_instance_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of media-server');

interface Instance {
  readonly name: string;
  readonly url: string;
  readonly cli: CliProcess;
}

describe.skipIf(env.unavailable !== undefined)('several instances on one PostgreSQL and one media directory', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let schema: string;
  let remote: FakeRemote;
  let a: Instance;
  let b: Instance;
  const appName = `hsm-${randomBytes(4).toString('hex')}`;

  async function startInstance(name: string): Promise<Instance> {
    const config = {
      server_name: SERVER_NAME,
      listen: { host: '127.0.0.1', port: 0 },
      database: {
        postgres: { url: PG_URL, schema, application_name: `${appName}-${name}`, pool: { max: 4 }, statement_timeout_ms: 5000 },
      },
      media_store: { filesystem: { path: join(dir.path, 'shared-media') } },
      signing_key_path: join(dir.path, name, 'signing.key'),
      log_level: 'info',
      // One process per instance: these tests count per-instance fetches and lease holders.
      workers: 1,
      auth: { tokens: { [TOKEN]: `@alice:${SERVER_NAME}` } },
      federation: { destinations: { [REMOTE]: remote.url }, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
    };
    const path = join(dir.path, `${name}.yaml`);
    await writeFile(path, stringify(config));
    const cli = new CliProcess(['--config', path], dir.path);
    return { name, url: await cli.listening(), cli };
  }

  beforeAll(async () => {
    dir = await tempDir('hsmedia-multi-');
    schema = await env.createSchema();
    remote = new FakeRemote();
    await remote.listen();
    // Both at once on a fresh schema: the migrations must serialise.
    [a, b] = await Promise.all([startInstance('a'), startInstance('b')]);
  }, 60_000);

  afterAll(async () => {
    for (const instance of [a, b]) {
      if (instance === undefined) continue;
      instance.cli.child.kill('SIGTERM');
      await instance.cli.exited;
    }
    await remote?.close();
    await env.dispose();
    await dir?.cleanup();
  });

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

  it('serves media uploaded through one instance from the other at once', async () => {
    const body = randomBytes(10_000);
    const mediaId = await upload(a, body);
    const response = await fetch(`${b.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { headers: AUTH });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
  });

  it('serves an async upload created and completed on A to a client already waiting on B', async () => {
    const created = await fetch(`${a.url}/_matrix/media/v1/create`, { method: 'POST', headers: AUTH });
    expect(created.status).toBe(200);
    const { content_uri: uri } = (await created.json()) as { content_uri: string };
    const mediaId = uri.slice(`mxc://${SERVER_NAME}/`.length);
    // Pending on B (created on A): B waits for it; finish the upload on A meanwhile.
    const download = fetch(`${b.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=20000`, { headers: AUTH });
    const body = randomBytes(5_000);
    const put = await fetch(`${a.url}/_matrix/media/v3/upload/${SERVER_NAME}/${mediaId}`, {
      method: 'PUT',
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
      body,
    });
    expect(put.status).toBe(200);
    const response = await download;
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
  });

  it('fetches one uncached remote media exactly once per deployment for 50 concurrent clients on each instance', async () => {
    const mediaId = 'SharedRemoteMedia1';
    const requests = [a, b].flatMap((instance) =>
      Array.from({ length: 50 }, async () => {
        const response = await fetch(`${instance.url}/_matrix/client/v1/media/download/${REMOTE}/${mediaId}`, { headers: AUTH });
        return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
      }),
    );
    const results = await Promise.all(requests);
    const expected = createHash('sha256').update(remote.content).digest('hex');
    for (const result of results) {
      expect(result.status).toBe(200);
      expect(createHash('sha256').update(result.body).digest('hex')).toBe(expected);
    }
    // The remote-fetch lease: one instance fetched, the other served the blob it stored.
    expect(remote.downloads).toBe(1);
    const rows = (await env.admin.withSchema(schema).table('media').where({ server_name: REMOTE, media_id: mediaId })) as {
      blob_id: string;
      sha256: string;
      size: string;
    }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]!.sha256).toBe(expected);
    expect(Number(rows[0]!.size)).toBe(remote.content.length);
    // Cached now: neither instance fetches again.
    const again = await fetch(`${b.url}/_matrix/client/v1/media/download/${REMOTE}/${mediaId}`, { headers: AUTH });
    expect(again.status).toBe(200);
    await again.arrayBuffer();
    expect(remote.downloads).toBe(1);
  }, 60_000);

  it('shares the job lease: the staging sweep ran on exactly one instance at start', async () => {
    const rows = (await env.admin.withSchema(schema).table('job_leases').select('name', 'holder')) as { name: string; holder: string }[];
    expect(rows.filter((row) => row.name === 'job:staging-sweep')).toHaveLength(1);
  });

  it('shares the signing keys of other servers: B verifies with the key A fetched and stored, without fetching it again', async () => {
    const mediaId = await upload(a, randomBytes(1_000));
    const uri = `/_matrix/federation/v1/media/download/${mediaId}`;
    const signedDownload = async (instance: Instance): Promise<number> => {
      const authorization = signXMatrixRequest({ method: 'GET', uri, origin: REMOTE, destination: SERVER_NAME }, remote.signingKey);
      const response = await fetch(`${instance.url}${uri}`, { headers: { authorization } });
      await response.arrayBuffer();
      return response.status;
    };
    const fetchesBefore = remote.keyFetches;
    expect(await signedDownload(a)).toBe(200);
    expect(remote.keyFetches).toBe(fetchesBefore + 1);
    // B has no key of REMOTE in memory: its KeyRing reads the shared store before the network.
    expect(await signedDownload(b)).toBe(200);
    expect(await signedDownload(a)).toBe(200);
    expect(remote.keyFetches).toBe(fetchesBefore + 1);
    const stored = (await env.admin.withSchema(schema).table('server_keys').where({ server_name: REMOTE }).select('key_id')) as { key_id: string }[];
    expect(stored.map((row) => row.key_id)).toEqual([remote.signingKey.keyId]);
  });

  it('answers 500 M_UNKNOWN while the database is unreachable, stays up, and recovers', async () => {
    const body = randomBytes(2_000);
    const before = await upload(a, body);
    // Cut every session of both instances, and make the tables unreachable until we say so.
    await env.admin.raw('alter schema ?? rename to ??', [schema, `${schema}_off`]);
    const terminated = (await env.admin.raw(
      'select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name like ?',
      [`${appName}-%`],
    )) as { rows: { ok: boolean }[] };
    expect(terminated.rows.length).toBeGreaterThan(0);
    try {
      for (const instance of [a, b]) {
        const unknown = await fetch(`${instance.url}/_matrix/client/v1/media/download/${SERVER_NAME}/NeverUploadedId1`, {
          headers: AUTH,
        });
        expect(unknown.status).toBe(500);
        expect(await unknown.json()).toMatchObject({ errcode: 'M_UNKNOWN' });
        const failedUpload = await fetch(`${instance.url}/_matrix/media/v3/upload`, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'text/plain' },
          body: 'lost?',
        });
        expect(failedUpload.status).toBe(500);
        expect(await failedUpload.json()).toMatchObject({ errcode: 'M_UNKNOWN' });
      }
    } finally {
      await env.admin.raw('alter schema ?? rename to ??', [`${schema}_off`, schema]);
    }
    for (const instance of [a, b]) {
      expect(instance.cli.child.exitCode).toBeNull();
      const response = await fetch(`${instance.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${before}`, { headers: AUTH });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
      const fresh = randomBytes(3_000);
      const mediaId = await upload(instance, fresh);
      const other = instance === a ? b : a;
      const back = await fetch(`${other.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { headers: AUTH });
      expect(Buffer.from(await back.arrayBuffer()).equals(fresh)).toBe(true);
    }
  }, 60_000);
});
