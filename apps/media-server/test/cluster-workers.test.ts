import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { FakeRemote, REMOTE } from './fake-remote.js';
import { tempDir } from './helpers.js';
import { ensureSharedRedis, REDIS_URL } from './redis.js';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

// One `hsmedia-server start` with `workers: 2` (a supervisor and two server processes, node:cluster)
// behaves as one server: a change made through one worker is seen by the other at once, the rate
// limits are one budget, uncached remote media is fetched once, an upload quota holds, and a page
// is previewed once. On SQLite changes and buckets travel through the supervisor (IPC); on
// PostgreSQL the change feed is LISTEN/NOTIFY and the limits are in Redis; leases and previews are
// in the database either way. The supervisor hands each new connection to the next worker in turn,
// so two requests in a row on fresh connections reach both workers.

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const ADMIN_TOKEN = 'workers_admin_token';
/** Alice's downloads check the change feed; Bob's the shared limit (buckets are per user). */
const ALICE_TOKEN = 'workers_alice_token';
const BOB_TOKEN = 'workers_bob_token';
/** Carol's 50 downloads of remote media stay within her own burst. */
const CAROL_TOKEN = 'workers_carol_token';
/** Dave may hold this many files (a quota): his uploads check that it holds across workers. */
const DAVE_TOKEN = 'workers_dave_token';
const DAVE_MAX_FILES = 5;
/**
 * One download per 100 s after a burst of 50: whatever the machine's speed, the workers together
 * may pass 50 (+1 per 100 s); each alone would pass 50, so together they would pass 100.
 */
const RATE = { per_second: 0.01, burst: 50 };
const RATE_CLIENTS = 120;
/** The change must be applied by every worker within this (the record cache keeps entries 60 s). */
const PROPAGATION_BOUND_MS = 1_000;

const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of workers: 2');

beforeAll(async () => {
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
}, 240_000);

interface Cluster {
  readonly cli: CliProcess;
  readonly url: string;
  readonly serverName: string;
}

const running: CliProcess[] = [];
let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir('hsmedia-workers-');
});
afterAll(async () => {
  for (const cli of running.splice(0)) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGTERM');
    await cli.exited;
  }
  await env.dispose();
  await dir?.cleanup();
});

async function startWorkers(name: string, document: Record<string, unknown>): Promise<Cluster> {
  // A server name of its own: Redis keys are per deployment, and earlier runs may have left buckets.
  const serverName = `workers-${randomBytes(4).toString('hex')}.test`;
  const config = {
    server_name: serverName,
    workers: 2,
    listen: { host: '127.0.0.1', port: 0 },
    log_level: 'info',
    signing_key_path: join(dir.path, `${name}-signing.key`),
    media_store: { filesystem: { path: join(dir.path, `${name}-media`) } },
    auth: { tokens: { [ADMIN_TOKEN]: `@admin:${serverName}`, [ALICE_TOKEN]: `@alice:${serverName}`, [BOB_TOKEN]: `@bob:${serverName}`, [CAROL_TOKEN]: `@carol:${serverName}`, [DAVE_TOKEN]: `@dave:${serverName}` } },
    admins: [`@admin:${serverName}`],
    quotas: { users: { [`@dave:${serverName}`]: { max_files: DAVE_MAX_FILES } } },
    limits: { download: RATE },
    ...document,
  };
  const path = join(dir.path, `${name}.yaml`);
  await writeFile(path, stringify(config));
  const cli = new CliProcess(['--config', path], dir.path);
  running.push(cli);
  const ready = await cli.waitFor(() => cli.logLines().find((line) => line['msg'] === 'all workers listening'), 'all workers listening');
  return { cli, url: String(ready['url']), serverName };
}

/** One request on a fresh connection (so the supervisor hands it to the next worker); status and body. */
function once(url: string, token: string, method = 'GET', upload?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${token}`, connection: 'close', ...(upload === undefined ? {} : { 'content-type': 'application/octet-stream' }) };
    const req = request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(upload);
  });
}

async function upload(cluster: Cluster): Promise<string> {
  const response = await fetch(`${cluster.url}/_matrix/media/v3/upload?filename=x.bin`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ALICE_TOKEN}`, 'content-type': 'application/octet-stream' },
    body: randomBytes(2_000),
  });
  expect(response.status).toBe(200);
  const { content_uri: uri } = (await response.json()) as { content_uri: string };
  return uri.slice(`mxc://${cluster.serverName}/`.length);
}

const downloadUrl = (cluster: Cluster, mediaId: string): string => `${cluster.url}/_matrix/client/v1/media/download/${cluster.serverName}/${mediaId}`;

/**
 * Quarantine through one worker, after both cached the record: within
 * {@link PROPAGATION_BOUND_MS} two requests in a row (one per worker) are
 * refused, and so is every request after them.
 */
async function quarantineSeenByEveryWorker(cluster: Cluster): Promise<void> {
  const mediaId = await upload(cluster);
  // Four fresh connections: each worker serves (and caches) the record twice.
  for (let i = 0; i < 4; i++) expect((await once(downloadUrl(cluster, mediaId), ALICE_TOKEN)).status).toBe(200);
  const quarantine = await once(`${cluster.url}/_synapse/admin/v1/media/quarantine/${cluster.serverName}/${mediaId}`, ADMIN_TOKEN, 'POST');
  expect(quarantine.status, quarantine.body).toBe(200);
  const answered = Date.now();
  let refusedInARow = 0;
  while (refusedInARow < 2) {
    const { status } = await once(downloadUrl(cluster, mediaId), ALICE_TOKEN);
    refusedInARow = status === 404 ? refusedInARow + 1 : 0;
    if (refusedInARow < 2 && Date.now() - answered > PROPAGATION_BOUND_MS) throw new Error(`a worker still served quarantined media ${PROPAGATION_BOUND_MS} ms after the quarantine`);
    // Paced, to stay far inside Alice's download budget.
    if (refusedInARow < 2) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (let i = 0; i < 10; i++) {
    const { status, body } = await once(downloadUrl(cluster, mediaId), ALICE_TOKEN);
    expect(status).toBe(404);
    expect(JSON.parse(body)).toMatchObject({ errcode: 'M_NOT_FOUND' });
  }
}

/** Bob's downloads at once (fresh connections: both workers): at most one burst passes, the rest are 429, nothing else. */
async function limitHoldsAcrossWorkers(cluster: Cluster): Promise<void> {
  const mediaId = await upload(cluster);
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: RATE_CLIENTS }, () => once(downloadUrl(cluster, mediaId), BOB_TOKEN)));
  const elapsedMs = Date.now() - started;
  const passed = results.filter((result) => result.status === 200).length;
  expect(results.every((result) => result.status === 200 || result.status === 429)).toBe(true);
  for (const result of results.filter((each) => each.status === 429)) expect(JSON.parse(result.body)).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED' });
  expect(passed).toBeGreaterThanOrEqual(RATE.burst);
  expect(passed).toBeLessThanOrEqual(RATE.burst + Math.ceil((elapsedMs / 1000) * RATE.per_second));
}

/** 50 clients at once (undici opens a connection per request in flight: both workers) for uncached remote media: one origin request. */
async function oneOriginRequest(cluster: Cluster, remote: FakeRemote): Promise<void> {
  const mediaId = `WorkersRemote${randomBytes(4).toString('hex')}`;
  const results = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const response = await fetch(`${cluster.url}/_matrix/client/v1/media/download/${REMOTE}/${mediaId}`, {
        headers: { authorization: `Bearer ${CAROL_TOKEN}` },
      });
      return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
    }),
  );
  const expected = createHash('sha256').update(remote.content).digest('hex');
  for (const result of results) {
    expect(result.status).toBe(200);
    expect(createHash('sha256').update(result.body).digest('hex')).toBe(expected);
  }
  expect(remote.downloads).toBe(1);
}

/** 20 uploads of Dave at once (fresh connections: both workers): exactly his quota is kept, the rest are 403. */
async function quotaHoldsAcrossWorkers(cluster: Cluster): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: 20 }, () => once(`${cluster.url}/_matrix/media/v3/upload?filename=d.bin`, DAVE_TOKEN, 'POST', randomBytes(1_000))),
  );
  expect(results.filter((result) => result.status === 200)).toHaveLength(DAVE_MAX_FILES);
  for (const result of results.filter((each) => each.status !== 200)) {
    expect(result.status).toBe(403);
    expect(JSON.parse(result.body)).toMatchObject({ errcode: 'M_FORBIDDEN' });
  }
}

/** A page server on 127.0.0.1 counting how often each path is fetched. */
class PageServer {
  readonly fetches = new Map<string, number>();
  readonly server: Server = createServer((req, res) => {
    this.fetches.set(req.url ?? '', (this.fetches.get(req.url ?? '') ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<html><head><meta property="og:title" content="Page ${req.url}"></head><body>hi</body></html>`);
  });
  url = '';

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Four previews of one new page on fresh connections (both workers): the page is fetched once (the url_previews table). */
async function previewFetchedOnce(cluster: Cluster, pages: PageServer): Promise<void> {
  const path = `/article-${randomBytes(4).toString('hex')}`;
  const previewUrl = `${cluster.url}/_matrix/client/v1/media/preview_url?url=${encodeURIComponent(pages.url + path)}`;
  for (let i = 0; i < 4; i++) {
    const { status, body } = await once(previewUrl, ALICE_TOKEN);
    expect(status, body).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ 'og:title': `Page ${path}` });
  }
  expect(pages.fetches.get(path)).toBe(1);
}

describe('workers: 2 on SQLite: the supervisor relays changes and holds the buckets', () => {
  let cluster: Cluster;
  let remote: FakeRemote;
  let pages: PageServer;
  beforeAll(async () => {
    remote = new FakeRemote();
    await remote.listen();
    pages = new PageServer();
    await pages.listen();
    cluster = await startWorkers('sqlite', {
      database: { sqlite: { path: join(dir.path, 'sqlite', 'media.db') } },
      federation: { destinations: { [REMOTE]: remote.url }, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
      url_preview: { enabled: true, ip_range_allowlist: ['127.0.0.1/32'] },
    });
  }, 120_000);
  afterAll(async () => {
    cluster?.cli.child.kill('SIGTERM');
    await cluster?.cli.exited;
    await remote?.close();
    await pages?.close();
  });

  it('quarantine through one worker is refused by every worker within a second', async () => {
    await quarantineSeenByEveryWorker(cluster);
    expect(cluster.cli.logLines().filter((line) => line['msg'] === 'media change feed relayed by the supervisor')).toHaveLength(2);
  }, 60_000);

  it('the download rate limit is one budget for both workers', async () => {
    await limitHoldsAcrossWorkers(cluster);
    expect(cluster.cli.logLines().filter((line) => line['msg'] === 'rate limits shared through the supervisor')).toHaveLength(2);
  }, 60_000);

  it('50 clients spread over both workers cause exactly one request to the origin (a lease in the SQLite file)', async () => {
    await oneOriginRequest(cluster, remote);
  }, 60_000);

  it('an upload quota holds across workers (a lease per user in the SQLite file)', async () => {
    await quotaHoldsAcrossWorkers(cluster);
  }, 60_000);

  it('a URL previewed through one worker is answered by the other without fetching it again (the SQLite file)', async () => {
    await previewFetchedOnce(cluster, pages);
  }, 60_000);
});

describe.skipIf(env.unavailable !== undefined)('workers: 2 on PostgreSQL with Redis', () => {
  let cluster: Cluster;
  let remote: FakeRemote;
  let pages: PageServer;

  beforeAll(async () => {
    await ensureSharedRedis();
    remote = new FakeRemote();
    await remote.listen();
    pages = new PageServer();
    await pages.listen();
    const schema = await env.createSchema();
    cluster = await startWorkers('postgres', {
      database: { postgres: { url: PG_URL, schema, application_name: `hsm-workers-${randomBytes(3).toString('hex')}`, pool: { max: 4 } } },
      cluster: { redis_url: REDIS_URL },
      federation: { destinations: { [REMOTE]: remote.url }, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
      url_preview: { enabled: true, ip_range_allowlist: ['127.0.0.1/32'] },
    });
  }, 900_000);
  afterAll(async () => {
    cluster?.cli.child.kill('SIGTERM');
    await cluster?.cli.exited;
    await remote?.close();
    await pages?.close();
  });

  it('quarantine through one worker is refused by every worker within a second (LISTEN/NOTIFY)', async () => {
    await quarantineSeenByEveryWorker(cluster);
    expect(cluster.cli.logLines().filter((line) => line['msg'] === 'media change feed listening')).toHaveLength(2);
  }, 60_000);

  it('the download rate limit is one budget for both workers (Redis)', async () => {
    await limitHoldsAcrossWorkers(cluster);
    expect(cluster.cli.logLines().filter((line) => line['msg'] === 'rate limits shared through Redis' && line['connected'] === true)).toHaveLength(2);
  }, 60_000);

  it('50 clients spread over both workers cause exactly one request to the origin', async () => {
    await oneOriginRequest(cluster, remote);
  }, 60_000);

  it('an upload quota holds across workers', async () => {
    await quotaHoldsAcrossWorkers(cluster);
  }, 60_000);

  it('a URL previewed through one worker is answered by the other without fetching it again', async () => {
    await previewFetchedOnce(cluster, pages);
  }, 60_000);
});
