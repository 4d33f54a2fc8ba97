#!/usr/bin/env node
/**
 * The reference server on S3 (a real Ceph RADOS Gateway started by scripts/ceph/start-rgw.sh):
 *   - a 32 MiB authenticated download proxied from S3 through hsmedia vs a direct presigned GET of
 *     the same object from the gateway (target ≥ 0.9×), in interleaved rounds; and the same
 *     download from a second server with `media_store.s3.local_cache` (hot: served from its disk);
 *   - a 1 GiB upload streamed to S3 (multipart): peak RSS growth of the server (target < 100 MiB),
 *     with server CPU per GiB (`--upload-mib 0` skips it).
 *
 *   npm run build && node bench/s3.mjs [--duration 10] [--rounds 2] [--warmup 2] [--connections 4,1]
 *                                      [--upload-mib 1024] [--no-cache] [--tool wrk|autocannon]
 *
 * Writes JSON to .bench-out/s3-latest.json. Bounded: about connections × (duration + warm-up) × 2
 * plus the upload and a ~10 s cluster start.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { readCpuSeconds, readMemory, sampleMemory } from './lib/process-stats.mjs';
import { startReferenceServer, startRgw } from './lib/servers.mjs';
import { uploadBuffer, uploadGenerated } from './lib/upload.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '4,1' },
    'upload-mib': { type: 'string', default: '1024' },
    'no-cache': { type: 'boolean', default: false },
    tool: { type: 'string', default: 'auto' },
  },
});
const roundCount = Math.max(1, Number(values.rounds));
const roundSec = Math.max(1, Math.round(Number(values.duration) / roundCount));
const warmupSec = Number(values.warmup);
const uploadBytes = Number(values['upload-mib']) * MIB;
const tool = pickLoadTool(values.tool);
const TOKEN = `bench_${randomBytes(8).toString('hex')}`;
const SERVER_NAME = 'bench.localhost';
const headers = { authorization: `Bearer ${TOKEN}` };
const log = (message) => process.stderr.write(`bench/s3: ${message}\n`);

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-s3-'));
let rgw;
const servers = [];
const loadStart = loadavg()[0];
try {
  log('starting Ceph RGW');
  rgw = await startRgw({ dir: path.join(work, 'rgw'), memstoreBytes: uploadBytes + 512 * MIB });
  const s3 = rgw.client;
  const rgwPid = rgw.pid;
  const bucket = 'bench';
  await rgw.createBucket(bucket);

  /** Starts the reference server on the bucket under `prefix`, with its own SQLite and directory. */
  async function startReference(name, prefix, extraS3 = {}) {
    const dataDir = path.join(work, name);
    mkdirSync(dataDir);
    // The in-memory cache of small media stays at its default; 32 MiB is far above its item size.
    const server = await startReferenceServer({
      dataDir,
      token: TOKEN,
      userId: `@bench:${SERVER_NAME}`,
      serverName: SERVER_NAME,
      logFile: path.join(work, `${name}.log`),
      extraConfig: { media_store: rgw.mediaStore(bucket, prefix, extraS3) },
    });
    servers.push(server);
    return server;
  }
  const started = await startReference('server', 'media/');
  const child = started;
  const url = started.url;

  // 1 GiB upload first, so the download load does not set the high-water mark.
  let uploadResult = null;
  if (uploadBytes > 0) {
  log(`uploading ${uploadBytes / MIB} MiB`);
  await uploadGenerated({ url: `${url}/_matrix/media/v3/upload`, headers, totalBytes: 16 * MIB }); // warm-up
  const before = readMemory(child.pid);
  const cpuBefore = readCpuSeconds(child.pid);
  const sampler = sampleMemory(child.pid);
  const upload = await uploadGenerated({ url: `${url}/_matrix/media/v3/upload`, headers, totalBytes: uploadBytes });
  const memory = sampler.stop();
  const cpuAfter = readCpuSeconds(child.pid);
  if (upload.status !== 200) throw new Error(`1 GiB upload answered ${upload.status}: ${upload.body}`);
  const peak = Math.max(memory.peakRssBytes, memory.hwmBytes ?? 0);
  uploadResult = {
    bytes: uploadBytes,
    seconds: upload.seconds,
    mibPerSec: uploadBytes / MIB / upload.seconds,
    rssBeforeMiB: before.rssBytes / MIB,
    peakRssGrowthMiB: (peak - before.rssBytes) / MIB,
    serverCpuSecondsPerGiB: cpuBefore === null ? null : ((cpuAfter - cpuBefore) / uploadBytes) * 1024 * MIB,
  };
  log(`upload: ${uploadResult.mibPerSec.toFixed(1)} MiB/s, peak RSS growth ${uploadResult.peakRssGrowthMiB.toFixed(1)} MiB`);
  }

  // The 32 MiB object: uploaded through hsmedia, then found in the bucket for the direct URL.
  const prefix = `media/`;
  const keysBefore = new Set(((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key));
  const bytes = randomBytes(32 * MIB);
  const uploaded = await uploadBuffer({ url: `${url}/_matrix/media/v3/upload`, headers, bytes });
  const mediaId = uploaded.content_uri.split('/').pop();
  const newKeys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key).filter((k) => !keysBefore.has(k));
  if (newKeys.length !== 1) throw new Error(`expected one new object, found ${newKeys.length}`);
  const direct = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: newKeys[0] }), { expiresIn: 3600 });
  const proxied = `${url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`;
  const targets = [['proxied', proxied, headers, child], ['direct', direct, {}, null]];
  if (!values['no-cache']) {
    // The same bytes through a server with the local cache tier (its own SQLite, so its own upload).
    const cacheDir = path.join(work, 'local-cache');
    const withCache = await startReference('cached-server', 'cached/', { local_cache: { path: cacheDir, max_size: '256M' } });
    const cachedUpload = await uploadBuffer({ url: `${withCache.url}/_matrix/media/v3/upload`, headers, bytes });
    const cachedUrl = `${withCache.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${cachedUpload.content_uri.split('/').pop()}`;
    await (await fetch(cachedUrl, { headers })).arrayBuffer(); // the read that fills the cache
    for (let i = 0; !existsSync(cacheDir) || execFileSync('find', [path.join(cacheDir, 'blobs'), '-type', 'f']).length === 0; i++) {
      if (i > 300) throw new Error('the local cache was not filled');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    targets.splice(1, 0, ['cached', cachedUrl, headers, withCache]);
  }
  for (const [label, target, h] of targets) {
    const response = await fetch(target, { headers: h });
    const got = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200 || !got.equals(bytes)) throw new Error(`${label} download: ${response.status}, ${got.length} bytes, not the uploaded ones`);
  }

  const downloads = [];
  for (const connections of values.connections.split(',').map(Number)) {
    const totals = Object.fromEntries(targets.map(([label]) => [label, { bytes: 0, seconds: 0, cpu: 0, rgwCpu: 0 }]));
    for (let round = 0; round < roundCount; round++) {
      for (const [label, target, h, serving] of targets) {
        const rgwBefore = readCpuSeconds(rgwPid);
        const result = await measureGetLoad({ tool, url: target, headers: h, connections, durationSec: roundSec, warmupSec: round === 0 ? warmupSec : 0, pid: (serving ?? child).pid });
        const rgwAfter = readCpuSeconds(rgwPid);
        totals[label].bytes += result.bytesPerSec * result.seconds;
        totals[label].seconds += result.seconds;
        totals[label].cpu += serving !== null ? (result.cpuSeconds ?? 0) : 0;
        totals[label].rgwCpu += rgwAfter - rgwBefore;
      }
    }
    const mibps = (t) => t.bytes / MIB / t.seconds;
    const perGiB = (seconds, t) => (seconds / t.bytes) * 1024 * MIB;
    const entry = {
      connections,
      proxiedMiBps: mibps(totals.proxied),
      directMiBps: mibps(totals.direct),
      ratio: mibps(totals.proxied) / mibps(totals.direct),
      hsmediaCpuSecondsPerGiB: perGiB(totals.proxied.cpu, totals.proxied),
      rgwCpuSecondsPerGiBProxied: perGiB(totals.proxied.rgwCpu, totals.proxied),
      rgwCpuSecondsPerGiBDirect: perGiB(totals.direct.rgwCpu, totals.direct),
      ...(totals.cached === undefined
        ? {}
        : {
            cachedMiBps: mibps(totals.cached),
            cachedRatio: mibps(totals.cached) / mibps(totals.direct),
            cachedCpuSecondsPerGiB: perGiB(totals.cached.cpu, totals.cached),
            rgwCpuSecondsPerGiBCached: perGiB(totals.cached.rgwCpu, totals.cached),
          }),
    };
    downloads.push(entry);
    log(
      `32 MiB x ${connections} connections: proxied ${entry.proxiedMiBps.toFixed(1)} MiB/s, direct ${entry.directMiBps.toFixed(1)} MiB/s, ratio ${entry.ratio.toFixed(2)}` +
        (entry.cachedMiBps === undefined ? '' : `; local cache ${entry.cachedMiBps.toFixed(1)} MiB/s, ratio ${entry.cachedRatio.toFixed(2)}`),
    );
  }
  const lines = [
    `| measurement | hsmedia | baseline | ratio | target |`,
    `| --- | --- | --- | --- | --- |`,
    ...downloads.flatMap((d) => [
      `| 32 MiB download from S3, ${d.connections} conn., MiB/s | ${d.proxiedMiBps.toFixed(1)} (proxied) | ${d.directMiBps.toFixed(1)} (presigned GET) | ${d.ratio.toFixed(2)}× | ≥ 0.9× |`,
      ...(d.cachedMiBps === undefined
        ? []
        : [`| 32 MiB download, hot in local_cache, ${d.connections} conn., MiB/s | ${d.cachedMiBps.toFixed(1)} (local cache) | ${d.directMiBps.toFixed(1)} (presigned GET) | ${d.cachedRatio.toFixed(2)}× | ≥ 0.9× |`]),
    ]),
    ...(uploadResult === null ? [] : [`| ${uploadBytes / MIB} MiB upload to S3, peak RSS growth | ${uploadResult.peakRssGrowthMiB.toFixed(1)} MiB | — | — | < 100 MiB |`]),
    '',
    `| server CPU | value |`,
    `| --- | --- |`,
    ...downloads.map((d) => `| hsmedia, proxied 32 MiB download (${d.connections} conn.) | ${d.hsmediaCpuSecondsPerGiB.toFixed(2)} s/GiB (radosgw ${d.rgwCpuSecondsPerGiBProxied.toFixed(2)} s/GiB; direct ${d.rgwCpuSecondsPerGiBDirect.toFixed(2)} s/GiB) |`),
    ...downloads
      .filter((d) => d.cachedMiBps !== undefined)
      .map((d) => `| hsmedia, 32 MiB from local_cache (${d.connections} conn.) | ${d.cachedCpuSecondsPerGiB.toFixed(2)} s/GiB (radosgw ${d.rgwCpuSecondsPerGiBCached.toFixed(2)} s/GiB) |`),
    ...(uploadResult === null ? [] : [`| hsmedia, upload to S3 | ${uploadResult.serverCpuSecondsPerGiB?.toFixed(2)} s/GiB at ${uploadResult.mibPerSec.toFixed(1)} MiB/s |`]),
    '',
    `tool ${tool}; load average ${loadStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end (2 cores shared)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync(path.join(REPO_ROOT, '.bench-out'), { recursive: true });
  writeFileSync(
    path.join(REPO_ROOT, '.bench-out', 's3-latest.json'),
    JSON.stringify({ date: new Date().toISOString(), tool, loadavg: { start: loadStart, end: loadavg()[0] }, upload: uploadResult, downloads }, null, 2),
  );
} finally {
  for (const server of servers) await server.stop();
  rgw?.stop();
  rmSync(work, { recursive: true, force: true });
}
