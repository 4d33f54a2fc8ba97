#!/usr/bin/env node
/**
 * Authenticated 1 KiB downloads per second of the reference server:
 * SQLite vs PostgreSQL (one instance each), and one vs two PostgreSQL
 * instances sharing one schema and one media directory under the same load.
 * For two instances, two load generators (half the connections each) run at
 * the same time against the two ports and their figures are added.
 *
 *   npx tsc -b apps/media-server && node bench/instances.mjs [--duration 8] [--connections 32] [--tool wrk|autocannon]
 *
 * Needs PostgreSQL at PG_URL (default postgres://postgres@127.0.0.1:5432/test);
 * creates and drops a schema `bench_<random>`. Bounded: about 4 × (duration + 2) s.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import knexFactory from 'knex';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { freePort, REFERENCE_CLI, stopChild } from './lib/servers.mjs';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    tool: { type: 'string' },
  },
});
const durationSec = Number(values.duration);
const connections = Number(values.connections);
const tool = pickLoadTool(values.tool);
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TOKEN = 'bench_token';
const SERVER_NAME = 'bench.test';
const headers = { authorization: `Bearer ${TOKEN}` };

if (!existsSync(REFERENCE_CLI)) {
  console.error('apps/media-server/dist/cli.js is missing: run `npx tsc -b apps/media-server` first');
  process.exit(1);
}

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-instances-'));
const admin = knexFactory({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 } });
const schema = `bench_${randomBytes(4).toString('hex')}`;
const children = [];

async function startServer(name, database, mediaDir) {
  const port = await freePort();
  const configFile = path.join(work, `${name}.json`);
  writeFileSync(
    configFile,
    JSON.stringify({
      server_name: SERVER_NAME,
      listen: { host: '127.0.0.1', port },
      database,
      media_store: { filesystem: { path: mediaDir } },
      signing_key_path: path.join(work, `${name}.key`),
      auth: { tokens: { [TOKEN]: `@bench:${SERVER_NAME}` } },
      log_level: 'warn',
      workers: 1,
    }),
  );
  const log = createWriteStream(path.join(work, `${name}.log`));
  const child = spawn(process.execPath, [REFERENCE_CLI, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      await fetch(`${url}/_matrix/client/versions`);
      break;
    } catch {
      if (attempt > 300 || child.exitCode !== null) throw new Error(`${name} did not start; see ${work}/${name}.log`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { url, child };
}

async function upload(server) {
  const response = await fetch(`${server.url}/_matrix/media/v3/upload?filename=one-kib.bin`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: randomBytes(1024),
  });
  if (response.status !== 200) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  const { content_uri: uri } = await response.json();
  return uri.slice(`mxc://${SERVER_NAME}/`.length);
}

const downloadUrl = (server, mediaId) => `${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`;
const measure = (url, conns) => measureGetLoad({ tool, url, headers, connections: conns, durationSec, warmupSec: 2 });

const results = [];
try {
  await admin.raw('create schema ??', [schema]);
  const postgres = (name) => ({
    postgres: { url: PG_URL, schema, application_name: `hsmedia-bench-${name}`, pool: { max: 10 } },
  });

  // 1. SQLite, one instance.
  const sqlite = await startServer('sqlite', { sqlite: { path: path.join(work, 'media.db') } }, path.join(work, 'sqlite-media'));
  const sqliteMedia = await upload(sqlite);
  results.push({ setup: 'SQLite, 1 instance', ...(await measure(downloadUrl(sqlite, sqliteMedia), connections)) });
  await stopChild(sqlite.child);

  // 2. PostgreSQL, one instance.
  const shared = path.join(work, 'shared-media');
  const pgA = await startServer('pg-a', postgres('a'), shared);
  const pgMedia = await upload(pgA);
  results.push({ setup: 'PostgreSQL, 1 instance', ...(await measure(downloadUrl(pgA, pgMedia), connections)) });

  // 3. PostgreSQL, two instances, same total connections split across them.
  const pgB = await startServer('pg-b', postgres('b'), shared);
  const half = Math.max(1, Math.floor(connections / 2));
  const [ra, rb] = await Promise.all([measure(downloadUrl(pgA, pgMedia), half), measure(downloadUrl(pgB, pgMedia), half)]);
  results.push({
    setup: 'PostgreSQL, 2 instances',
    requests: ra.requests + rb.requests,
    seconds: Math.max(ra.seconds, rb.seconds),
    requestsPerSec: ra.requestsPerSec + rb.requestsPerSec,
    bytesPerSec: ra.bytesPerSec + rb.bytesPerSec,
    detail: `${Math.round(ra.requestsPerSec)} + ${Math.round(rb.requestsPerSec)}`,
  });
} finally {
  for (const child of children) await stopChild(child);
  await admin.raw('drop schema if exists ?? cascade', [schema]).catch(() => undefined);
  await admin.destroy();
  rmSync(work, { recursive: true, force: true });
}

console.log(`\n1 KiB authenticated downloads, ${tool}, ${connections} connections, ${durationSec} s, ${availableParallelism()} cores\n`);
console.log('setup                      req/s     note');
for (const result of results) {
  console.log(`${result.setup.padEnd(26)} ${String(Math.round(result.requestsPerSec)).padStart(7)}   ${result.detail ?? ''}`);
}
