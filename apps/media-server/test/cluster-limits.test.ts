import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from './cli-process.js';
import { freePort, tempDir } from './helpers.js';
import { ensureSharedRedis, REDIS_URL, startPrivateRedis } from './redis.js';
import { openPostgresTestEnv, PG_URL, type PostgresTestEnv } from '@hsmedia/test-fixtures/postgres';

// Two `hsmedia-server` processes (build first: npx tsc -b apps/media-server) on one PostgreSQL
// schema draw from one rate-limit budget: in Redis (cluster.redis_url) or, without Redis, in the
// database. The rate is one download per 100 s with a burst of 10, so whatever the machine's
// speed the two together may pass 10 (+1 per 100 s elapsed); each alone would pass 10.

const TOKEN = 'cluster_limits_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const RATE = { per_second: 0.01, burst: 10 };
const CLIENTS_PER_INSTANCE = 30;

const env: PostgresTestEnv = await openPostgresTestEnv('PostgreSQL tests of shared rate limits');

interface Instance {
  readonly url: string;
  readonly cli: CliProcess;
  readonly serverName: string;
  readonly metricsUrl: string | undefined;
}

describe.skipIf(env.unavailable !== undefined)('rate limits shared by two instances', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const running: Instance[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await tempDir('hsmedia-limits-');
    await ensureSharedRedis();
  }, 900_000);

  afterAll(async () => {
    for (const instance of running) {
      instance.cli.child.kill('SIGTERM');
      await instance.cli.exited;
    }
    for (const child of children) child.kill('SIGTERM');
    await env.dispose();
    await dir?.cleanup();
  });

  async function start(name: string, schema: string, serverName: string, cluster: Record<string, unknown>, metricsPort?: number): Promise<Instance> {
    await mkdir(join(dir.path, name), { recursive: true });
    const config = {
      server_name: serverName,
      listen: { host: '127.0.0.1', port: 0 },
      database: { postgres: { url: PG_URL, schema, application_name: `hsm-limits-${name}`, pool: { max: 4 } } },
      media_store: { filesystem: { path: join(dir.path, `media-${schema}`) } },
      signing_key_path: join(dir.path, name, 'signing.key'),
      log_level: 'info',
      auth: { tokens: { [TOKEN]: `@alice:${serverName}` } },
      limits: { download: RATE },
      // One process per instance: these tests count each process's own buckets (memory, Redis down).
      workers: 1,
      cluster,
      ...(metricsPort === undefined ? {} : { metrics: { enabled: true, listen: { host: '127.0.0.1', port: metricsPort } } }),
    };
    const path = join(dir.path, `${name}.yaml`);
    await writeFile(path, stringify(config));
    const cli = new CliProcess(['--config', path], dir.path);
    const instance = {
      url: await cli.listening(),
      cli,
      serverName,
      metricsUrl: metricsPort === undefined ? undefined : `http://127.0.0.1:${metricsPort}`,
    };
    running.push(instance);
    return instance;
  }

  async function startPair(cluster: Record<string, unknown>): Promise<[Instance, Instance]> {
    const schema = await env.createSchema();
    // A server name of its own: Redis keys are per deployment, and earlier runs may have left buckets.
    const serverName = `limits-${randomBytes(4).toString('hex')}.test`;
    const tag = randomBytes(3).toString('hex');
    const a = await start(`a-${tag}`, schema, serverName, cluster);
    const b = await start(`b-${tag}`, schema, serverName, cluster);
    return [a, b];
  }

  async function upload(instance: Instance): Promise<string> {
    const response = await fetch(`${instance.url}/_matrix/media/v3/upload?filename=x.bin`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
      body: randomBytes(1_000),
    });
    expect(response.status).toBe(200);
    const { content_uri: uri } = (await response.json()) as { content_uri: string };
    return uri.slice(`mxc://${instance.serverName}/`.length);
  }

  /** Downloads `mediaId` `count` times at once from each instance; the statuses and error codes seen. */
  async function burst(instances: readonly Instance[], mediaId: string, count: number): Promise<{ statuses: number[]; errcodes: Set<string>; elapsedMs: number }> {
    const started = Date.now();
    const errcodes = new Set<string>();
    const statuses = await Promise.all(
      instances.flatMap((instance) =>
        Array.from({ length: count }, async () => {
          const response = await fetch(`${instance.url}/_matrix/client/v1/media/download/${instance.serverName}/${mediaId}`, { headers: AUTH });
          if (response.status === 200) await response.arrayBuffer();
          else errcodes.add(((await response.json()) as { errcode: string }).errcode);
          return response.status;
        }),
      ),
    );
    return { statuses, errcodes, elapsedMs: Date.now() - started };
  }

  /** The most the configured bucket may pass in `elapsedMs`: one burst plus the refill. */
  const allowance = (elapsedMs: number): number => RATE.burst + Math.ceil((elapsedMs / 1000) * RATE.per_second);

  for (const [label, cluster] of [
    ['Redis', { redis_url: REDIS_URL }],
    ['PostgreSQL (no Redis configured)', {}],
  ] as const) {
    it(`through ${label}: two instances together pass at most one burst`, async () => {
      const [a, b] = await startPair(cluster);
      const mediaId = await upload(a);
      const { statuses, errcodes, elapsedMs } = await burst([a, b], mediaId, CLIENTS_PER_INSTANCE);
      const passed = statuses.filter((status) => status === 200).length;
      expect(statuses.every((status) => status === 200 || status === 429)).toBe(true);
      expect(passed).toBeGreaterThanOrEqual(RATE.burst);
      expect(passed).toBeLessThanOrEqual(allowance(elapsedMs));
      expect([...errcodes]).toEqual(['M_LIMIT_EXCEEDED']);
    }, 60_000);
  }

  it('in memory (shared_limits: memory) each instance has its own budget: together they pass two bursts', async () => {
    const [a, b] = await startPair({ shared_limits: 'memory' });
    const mediaId = await upload(a);
    const { statuses } = await burst([a, b], mediaId, CLIENTS_PER_INSTANCE);
    expect(statuses.filter((status) => status === 200).length).toBe(2 * RATE.burst);
  }, 60_000);

  it('Redis down: each process falls back to its own buckets, logs it once, sets the gauge, never answers 500; recovers when Redis is back', async () => {
    const redisPort = await freePort();
    const metricsPort = await freePort();
    const schema = await env.createSchema();
    const serverName = `limits-${randomBytes(4).toString('hex')}.test`;
    const instance = await start(`down-${randomBytes(3).toString('hex')}`, schema, serverName, { redis_url: `redis://127.0.0.1:${redisPort}` }, metricsPort);
    const mediaId = await upload(instance);
    const { statuses } = await burst([instance], mediaId, CLIENTS_PER_INSTANCE);
    // This process's own bucket: exactly one burst, the rest refused; no 500.
    expect(statuses.filter((status) => status === 200).length).toBe(RATE.burst);
    expect(statuses.filter((status) => status === 429).length).toBe(CLIENTS_PER_INSTANCE - RATE.burst);
    const unavailable = (): number =>
      instance.cli.logLines().filter((line) => String(line['msg']).startsWith('shared rate limits unavailable')).length;
    // Log lines reach stdout in batches: wait for the line, then check it is the only one.
    await instance.cli.waitFor(() => unavailable() >= 1, 'the shared limits unavailable line');
    expect(unavailable()).toBe(1);
    const gauge = async (): Promise<string | undefined> => {
      const text = await (await fetch(`${instance.metricsUrl}/metrics`)).text();
      return /^hsmedia_shared_limits_degraded (\d+)$/m.exec(text)?.[1];
    };
    expect(await gauge()).toBe('1');

    children.push(await startPrivateRedis(redisPort));
    // The client reconnects in the background (backoff up to 5 s); the next request after that uses Redis.
    await instance.cli.waitFor(() => {
      void fetch(`${instance.url}/_matrix/client/v1/media/download/${serverName}/${mediaId}`, { headers: AUTH }).then((r) => r.arrayBuffer());
      return instance.cli.logLines().some((line) => String(line['msg']).startsWith('shared rate limits available again'));
    }, 'shared limits recovered');
    expect(await gauge()).toBe('0');
    expect(unavailable()).toBe(1);
  }, 120_000);
});
