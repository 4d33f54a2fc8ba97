#!/usr/bin/env node
/**
 * Content-addressed dedup (issue 15 item 3): 100 uploads of the same 10 MiB by 100 users, on the
 * filesystem store and on S3 (a real Ceph RADOS Gateway started by scripts/ceph/start-rgw.sh),
 * with `dedup.enabled` against a baseline run without it in the same process.
 * Target: ≤ 10.1 MiB stored with dedup. Beside it: server CPU per upload, dedup vs baseline.
 *
 *   npm run build && node bench/dedup.mjs [--uploads 100] [--mib 10] [--concurrency 4] [--backends fs,s3]
 *
 * Writes JSON to .bench-out/dedup-latest.json. Bounded: 4 runs of `uploads` uploads, plus a ~10 s cluster start.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { readCpuSeconds } from './lib/process-stats.mjs';
import { startReferenceServer, startRgw } from './lib/servers.mjs';
import { uploadBuffer } from './lib/upload.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '100' },
    mib: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '4' },
    backends: { type: 'string', default: 'fs,s3' },
  },
});
const uploads = Number(values.uploads);
const bytes = randomBytes(Number(values.mib) * MIB);
const concurrency = Math.max(1, Number(values.concurrency));
const backends = values.backends.split(',');
const SERVER_NAME = 'bench.localhost';
const log = (message) => process.stderr.write(`bench/dedup: ${message}\n`);

/** Sum of the file sizes under `dir` (recursive). */
function bytesUnder(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return total;
}

async function bytesInBucket(s3, bucket, prefix) {
  let total = 0;
  let token;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) total += object.Size ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return total;
}

/** Empties a prefix, so the memstore OSD holds one run's bytes at a time. */
async function emptyPrefix(s3, bucket, prefix) {
  for (;;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (page.Contents ?? []).map((object) => ({ Key: object.Key }));
    if (keys.length === 0) return;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
  }
}

/** One server run: `uploads` uploads of `bytes`, each by its own user; stored bytes and CPU per upload. */
async function run(work, label, mediaStore, dedup, storedBytes) {
  const dataDir = path.join(work, label);
  mkdirSync(dataDir, { recursive: true });
  const tokens = Object.fromEntries(Array.from({ length: uploads }, (_, i) => [`bench_user_${i}_${randomBytes(4).toString('hex')}`, `@user${i}:${SERVER_NAME}`]));
  const [firstToken] = Object.keys(tokens);
  const server = await startReferenceServer({
    dataDir,
    token: firstToken,
    userId: tokens[firstToken],
    serverName: SERVER_NAME,
    logFile: path.join(work, `${label}.log`),
    extraConfig: { auth: { tokens }, dedup: { enabled: dedup }, ...(mediaStore === undefined ? {} : { media_store: mediaStore }) },
  });
  try {
    const cpuBefore = readCpuSeconds(server.pid);
    const started = process.hrtime.bigint();
    const queue = Object.keys(tokens);
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let token = queue.shift(); token !== undefined; token = queue.shift()) {
          // Rejects unless the answer is 200.
          await uploadBuffer({ url: `${server.url}/_matrix/media/v3/upload`, headers: { authorization: `Bearer ${token}` }, bytes });
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = readCpuSeconds(server.pid) - cpuBefore;
    const stored = await storedBytes(dataDir);
    const result = { label, dedup, uploads, storedMiB: stored / MIB, seconds, uploadsPerSec: uploads / seconds, serverCpuMsPerUpload: (cpu / uploads) * 1000 };
    log(`${label}: ${result.storedMiB.toFixed(2)} MiB stored, ${result.serverCpuMsPerUpload.toFixed(1)} ms CPU per upload`);
    return result;
  } catch (error) {
    log(`${label} failed; the server's log:\n${readFileSync(path.join(work, `${label}.log`), 'utf8').split('\n').slice(-15).join('\n')}`);
    throw error;
  } finally {
    await server.stop();
  }
}

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-dedup-'));
const loadStart = loadavg()[0];
const results = {};
let rgw;
try {
  if (backends.includes('fs')) {
    const fsBytes = (dataDir) => bytesUnder(path.join(dataDir, 'media', 'blobs'));
    const baseline = await run(work, 'fs-baseline', undefined, false, fsBytes);
    const dedup = await run(work, 'fs-dedup', undefined, true, fsBytes);
    results.fs = { baseline, dedup, storedRatio: dedup.storedMiB / baseline.storedMiB, cpuRatio: dedup.serverCpuMsPerUpload / baseline.serverCpuMsPerUpload, targetMet: dedup.storedMiB <= 10.1 };
  }
  if (backends.includes('s3')) {
    log('starting Ceph RGW');
    // Both runs' bytes: RGW frees deleted objects (the baseline's, the dedup run's staging copies) only
    // at its garbage collection, hours later, and a full memstore OSD stalls every request.
    rgw = await startRgw({ dir: path.join(work, 'rgw'), memstoreBytes: 2 * uploads * bytes.length + 512 * MIB });
    const s3 = rgw.client;
    await rgw.createBucket('bench');
    const store = (prefix) => rgw.mediaStore('bench', prefix);
    const baseline = await run(work, 's3-baseline', store('baseline/'), false, () => bytesInBucket(s3, 'bench', 'baseline/'));
    await emptyPrefix(s3, 'bench', 'baseline/');
    const dedup = await run(work, 's3-dedup', store('dedup/'), true, () => bytesInBucket(s3, 'bench', 'dedup/'));
    results.s3 = { baseline, dedup, storedRatio: dedup.storedMiB / baseline.storedMiB, cpuRatio: dedup.serverCpuMsPerUpload / baseline.serverCpuMsPerUpload, targetMet: dedup.storedMiB <= 10.1 };
  }
  const report = { bench: 'dedup', date: new Date().toISOString(), uploadMiB: bytes.length / MIB, uploads, concurrency, loadavgStart: loadStart, loadavgEnd: loadavg()[0], results };
  mkdirSync(path.join(REPO_ROOT, '.bench-out'), { recursive: true });
  writeFileSync(path.join(REPO_ROOT, '.bench-out', 'dedup-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  for (const [backend, figures] of Object.entries(results)) {
    process.stdout.write(
      `${backend}: ${figures.dedup.storedMiB.toFixed(2)} MiB stored with dedup vs ${figures.baseline.storedMiB.toFixed(1)} MiB without ` +
        `(${figures.storedRatio.toFixed(4)}x; target ≤ 10.1 MiB ${figures.targetMet ? 'met' : 'MISSED'}); CPU per upload ${figures.cpuRatio.toFixed(2)}x the baseline\n`,
    );
  }
} finally {
  rgw?.stop();
  rmSync(work, { recursive: true, force: true });
}
