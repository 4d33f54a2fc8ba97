#!/usr/bin/env node
/**
 * Metadata lookups per second: `getMedia` of existing records in a hot loop
 * with N concurrent callers, on SQLite (@hsmedia/store-sqlite, a temp file)
 * and on PostgreSQL (@hsmedia/store-postgres, a fresh schema dropped at the
 * end). Prints both and the ratio.
 *
 * Usage: node bench/metadata.mjs [--duration 10] [--concurrency 64] [--records 10000]
 *                                [--pool-max 10] [--pg-url postgres://postgres@127.0.0.1:5432/test]
 *                                [--only sqlite|postgres]
 * Needs a build: npx tsc -b packages/store-postgres packages/store-sqlite
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import knexFactory from 'knex';
import { createPostgresMetadataStore } from '@hsmedia/store-postgres';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';

const { values: options } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '64' },
    records: { type: 'string', default: '10000' },
    'pool-max': { type: 'string', default: '10' },
    'pg-url': { type: 'string', default: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (options.help) {
  process.stdout.write(
    'Usage: node bench/metadata.mjs [--duration SEC] [--warmup SEC] [--concurrency N] [--records N]\n' +
      '                               [--pool-max N] [--pg-url URL] [--only sqlite|postgres]\n',
  );
  process.exit(0);
}
const durationMs = Number(options.duration) * 1000;
const warmupMs = Number(options.warmup) * 1000;
const concurrency = Number(options.concurrency);
const recordCount = Number(options.records);
const poolMax = Number(options['pool-max']);
const log = (message) => process.stderr.write(`bench/metadata: ${message}\n`);

function record(i) {
  return {
    serverName: 'bench.localhost',
    mediaId: `media${String(i).padStart(8, '0')}`,
    blobId: `blob${i}`,
    contentType: 'image/png',
    uploadName: `file-${i}.png`,
    size: 1024 + i,
    sha256: 'a'.repeat(64),
    userId: '@bench:bench.localhost',
    createdAt: 1_700_000_000_000 + i,
    uploadedAt: 1_700_000_000_000 + i,
    expiresAt: null,
    authenticated: true,
    quarantined: false,
    lastAccessAt: null,
  };
}

async function fill(store) {
  // Batches of concurrent inserts: quick on both backends, no bulk API needed.
  for (let start = 0; start < recordCount; start += 500) {
    const batch = [];
    for (let i = start; i < Math.min(start + 500, recordCount); i++) batch.push(store.insertMedia(record(i)));
    await Promise.all(batch);
  }
}

/** `concurrency` loops of getMedia on random existing records for `ms`; returns the count. */
async function hotLoop(store, ms) {
  let lookups = 0;
  let misses = 0;
  const deadline = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const i = Math.floor(Math.random() * recordCount);
        const found = await store.getMedia('bench.localhost', `media${String(i).padStart(8, '0')}`);
        if (found === null) misses += 1;
        lookups += 1;
      }
    }),
  );
  if (misses > 0) throw new Error(`${misses} lookups of existing records returned null`);
  return lookups;
}

async function measure(label, store) {
  log(`${label}: inserting ${recordCount} records`);
  await fill(store);
  if (warmupMs > 0) await hotLoop(store, warmupMs);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const lookups = await hotLoop(store, durationMs);
  const elapsedSec = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const perSecond = lookups / elapsedSec;
  const cpuShare = (cpu.user + cpu.system) / 1e6 / elapsedSec;
  log(`${label}: ${lookups} lookups in ${elapsedSec.toFixed(2)} s`);
  return { label, lookups, perSecond, clientCpu: cpuShare };
}

const results = [];
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-metadata-'));
try {
  if (options.only !== 'postgres') {
    const store = await createSqliteMetadataStore({ path: path.join(work, 'media.db') });
    try {
      results.push(await measure('SQLite (better-sqlite3, file, 1 connection)', store));
    } finally {
      await store.close();
    }
  }
  if (options.only !== 'sqlite') {
    const admin = knexFactory({ client: 'pg', connection: options['pg-url'], pool: { min: 0, max: 1 } });
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    try {
      await admin.raw('create schema ??', [schema]);
      const store = await createPostgresMetadataStore({
        url: options['pg-url'],
        searchPath: schema,
        pool: { min: poolMax, max: poolMax },
        applicationName: 'hsmedia-bench',
      });
      try {
        results.push(await measure(`PostgreSQL (pg, pool ${poolMax})`, store));
      } finally {
        await store.close();
      }
    } finally {
      await admin.raw('drop schema if exists ?? cascade', [schema]).catch(() => undefined);
      await admin.destroy();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(
  `\nMetadata lookups (getMedia of existing records), ${recordCount} records, ${concurrency} concurrent callers, ` +
    `${options.duration} s, Node ${process.version}, ${availableParallelism()} × ${cpuModel}\n`,
);
for (const result of results) {
  process.stdout.write(
    `  ${result.label.padEnd(48)} ${Math.round(result.perSecond).toLocaleString('en-US').padStart(10)} lookups/s` +
      `  (benchmark process CPU ${(result.clientCpu * 100).toFixed(0)}%)\n`,
  );
}
if (results.length === 2) {
  const [sqlite, postgres] = results;
  process.stdout.write(`  ratio SQLite / PostgreSQL: ${(sqlite.perSecond / postgres.perSecond).toFixed(2)}×\n`);
}
