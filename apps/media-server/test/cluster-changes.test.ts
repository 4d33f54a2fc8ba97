import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { tempDir } from './helpers.js';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

// Two `hsmedia-server` processes (build first: npx tsc -b apps/media-server) on one PostgreSQL
// schema: a change made through one reaches the other's caches through LISTEN/NOTIFY at once,
// not when its cache entries expire (records: 60 s, blocked-hash answers: 10 s).

const SERVER_NAME = 'media.test';
const ADMIN_TOKEN = 'cluster_admin_token';
const USER_TOKEN = 'cluster_user_token';
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const USER = { authorization: `Bearer ${USER_TOKEN}` };
/** Far below the 60 s record cache and the 10 s blocked-hash cache: only the change feed can explain a refusal this soon. */
const PROPAGATION_BOUND_MS = 3_000;

const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of the media change feed');

interface Instance {
  readonly name: string;
  readonly url: string;
  readonly cli: CliProcess;
}

/** Resolves with the milliseconds until `check` held; throws after `deadlineMs`. Polls as fast as requests answer. */
async function within(deadlineMs: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > deadlineMs) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe.skipIf(env.unavailable !== undefined)('media changes between two instances on PostgreSQL', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let schema: string;
  let a: Instance;
  let b: Instance;
  let pages: Server;
  let pagesUrl = '';
  const pageFetches = new Map<string, number>();
  const appName = `hsm-chg-${randomBytes(4).toString('hex')}`;

  async function startInstance(name: string): Promise<Instance> {
    await mkdir(join(dir.path, name), { recursive: true });
    const config = {
      server_name: SERVER_NAME,
      listen: { host: '127.0.0.1', port: 0 },
      database: { postgres: { url: PG_URL, schema, application_name: `${appName}-${name}`, pool: { max: 4 } } },
      media_store: { filesystem: { path: join(dir.path, 'shared-media') } },
      signing_key_path: join(dir.path, name, 'signing.key'),
      log_level: 'info',
      // One process per instance: a test kills B's one LISTEN connection and waits for its reconnect line.
      workers: 1,
      auth: { tokens: { [ADMIN_TOKEN]: `@admin:${SERVER_NAME}`, [USER_TOKEN]: `@alice:${SERVER_NAME}` } },
      admins: [`@admin:${SERVER_NAME}`],
      url_preview: { enabled: true, ip_range_allowlist: ['127.0.0.1/32'] },
    };
    const path = join(dir.path, `${name}.yaml`);
    await writeFile(path, stringify(config));
    const cli = new CliProcess(['--config', path], dir.path);
    return { name, url: await cli.listening(), cli };
  }

  beforeAll(async () => {
    dir = await tempDir('hsmedia-changes-');
    schema = await env.createSchema();
    // A page server on 127.0.0.1 counting what previews fetch.
    pages = createServer((req, res) => {
      pageFetches.set(req.url ?? '', (pageFetches.get(req.url ?? '') ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<html><head><meta property="og:title" content="Page ${req.url}"></head><body>hi</body></html>`);
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    a = await startInstance('a');
    b = await startInstance('b');
  }, 60_000);

  afterAll(async () => {
    for (const instance of [a, b]) {
      if (instance === undefined) continue;
      instance.cli.child.kill('SIGTERM');
      await instance.cli.exited;
    }
    pages?.closeAllConnections();
    await new Promise((resolve) => (pages === undefined ? resolve(undefined) : pages.close(resolve)));
    await env.dispose();
    await dir?.cleanup();
  });

  async function upload(instance: Instance): Promise<string> {
    const response = await fetch(`${instance.url}/_matrix/media/v3/upload?filename=x.bin`, {
      method: 'POST',
      headers: { ...USER, 'content-type': 'application/octet-stream' },
      body: randomBytes(4_000),
    });
    expect(response.status).toBe(200);
    const { content_uri: uri } = (await response.json()) as { content_uri: string };
    return uri.slice(`mxc://${SERVER_NAME}/`.length);
  }

  async function downloadStatus(instance: Instance, mediaId: string): Promise<number> {
    const response = await fetch(`${instance.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`, { headers: USER });
    await response.arrayBuffer();
    return response.status;
  }

  async function admin(instance: Instance, method: string, path: string): Promise<void> {
    const response = await fetch(`${instance.url}${path}`, { method, headers: ADMIN });
    expect(response.status, await response.clone().text()).toBe(200);
    await response.arrayBuffer();
  }

  it('quarantine on A: the next request on B is refused, within a second or so of the admin answer', async () => {
    const mediaId = await upload(a);
    // B caches the record (and the small blob) while serving it.
    expect(await downloadStatus(b, mediaId)).toBe(200);
    expect(await downloadStatus(b, mediaId)).toBe(200);
    await admin(a, 'POST', `/_synapse/admin/v1/media/quarantine/${SERVER_NAME}/${mediaId}`);
    const elapsed = await within(PROPAGATION_BOUND_MS, 'quarantine seen on B', async () => (await downloadStatus(b, mediaId)) === 404);
    expect(elapsed).toBeLessThan(PROPAGATION_BOUND_MS);
    // Unquarantine (which also unblocks the hash) is announced the same way.
    await admin(a, 'POST', `/_synapse/admin/v1/media/unquarantine/${SERVER_NAME}/${mediaId}`);
    await within(PROPAGATION_BOUND_MS, 'unquarantine seen on B', async () => (await downloadStatus(b, mediaId)) === 200);
  });

  it('delete on A: B stops serving at once', async () => {
    const mediaId = await upload(a);
    expect(await downloadStatus(b, mediaId)).toBe(200);
    await admin(a, 'DELETE', `/_synapse/admin/v1/media/${SERVER_NAME}/${mediaId}`);
    await within(PROPAGATION_BOUND_MS, 'deletion seen on B', async () => (await downloadStatus(b, mediaId)) === 404);
  });

  it('a blocked hash on A is refused on B at once, under another media ID too', async () => {
    const first = await upload(a);
    expect(await downloadStatus(b, first)).toBe(200);
    const [row] = (await env.admin.withSchema(schema).table('media').where({ media_id: first }).select('sha256')) as { sha256: string }[];
    await admin(a, 'POST', `/_hsmedia/admin/v1/media/quarantine_by_hash/${row!.sha256}`);
    await within(PROPAGATION_BOUND_MS, 'hash block seen on B', async () => (await downloadStatus(b, first)) === 404);
  });

  it('LISTEN connection killed: B reconnects and drops its caches, so a change it never heard of is seen', async () => {
    const mediaId = await upload(a);
    expect(await downloadStatus(b, mediaId)).toBe(200);
    // A change no process announces (a write behind the servers' backs): B's cached record hides it.
    await env.admin.withSchema(schema).table('media').where({ media_id: mediaId }).update({ quarantined: true });
    expect(await downloadStatus(b, mediaId)).toBe(200);
    const reconnectsBefore = b.cli.logLines().filter((line) => String(line['msg']).startsWith('media change feed: listening again')).length;
    const killed = (await env.admin.raw(
      "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = ? and query ilike 'listen %'",
      [`${appName}-b`],
    )) as { rows: { ok: boolean }[] };
    expect(killed.rows).toHaveLength(1);
    expect(killed.rows[0]!.ok).toBe(true);
    await b.cli.waitFor(
      () => b.cli.logLines().filter((line) => String(line['msg']).startsWith('media change feed: listening again')).length > reconnectsBefore,
      'the change feed reconnected',
    );
    expect(b.cli.logLines().some((line) => String(line['msg']).startsWith('media change feed: listening connection lost'))).toBe(true);
    // Caches were dropped on reconnect: the record is read again, quarantined.
    expect(await downloadStatus(b, mediaId)).toBe(404);
    // And the feed works again: a quarantine lifted on A reaches B.
    await admin(a, 'POST', `/_synapse/admin/v1/media/unquarantine/${SERVER_NAME}/${mediaId}`);
    await within(PROPAGATION_BOUND_MS, 'unquarantine after reconnect seen on B', async () => (await downloadStatus(b, mediaId)) === 200);
  }, 60_000);

  it('URL previews are shared: a page previewed on A is answered on B without fetching it again', async () => {
    const path = `/article-${randomBytes(4).toString('hex')}`;
    const preview = async (instance: Instance): Promise<Record<string, unknown>> => {
      const response = await fetch(`${instance.url}/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(pagesUrl + path)}`, { headers: USER });
      expect(response.status).toBe(200);
      return (await response.json()) as Record<string, unknown>;
    };
    expect(await preview(a)).toMatchObject({ 'og:title': `Page ${path}` });
    expect(pageFetches.get(path)).toBe(1);
    expect(await preview(b)).toMatchObject({ 'og:title': `Page ${path}` });
    expect(await preview(a)).toMatchObject({ 'og:title': `Page ${path}` });
    expect(pageFetches.get(path)).toBe(1);
    const rows = (await env.admin.withSchema(schema).table('url_previews').where({ url: pagesUrl + path }).select('preview')) as { preview: string }[];
    expect(rows).toHaveLength(1);
  });
});
