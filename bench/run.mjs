#!/usr/bin/env node
/**
 * Benchmarks the reference media server against the plain pipe (a bare
 * `node:http` server piping `fs.createReadStream(file, { start, end })`), both
 * on 127.0.0.1, in one run with interleaved rounds, and checks issue 22's
 * targets: every case ≥ 0.95× the plain pipe's throughput and ≤ 1.1× its CPU
 * seconds per GiB (median of the rounds); federation of the 32 MiB file
 * ≥ 0.95× the client download at 2 connections.
 *
 * Cases (by default all but `small`): whole downloads of 32 and 256 MiB
 * (`download`), a 4 MiB Range inside the largest file (`range`), the
 * federation multipart download of the 32 MiB file, X-Matrix signed
 * (`federation`), uploads (`upload`), and a 1 KiB download in requests/s
 * (`small`); downloads at 1, 2, 4 and 32 connections.
 *
 * Usage: npm run bench [-- --quick] [-- --cases download,upload --connections 2,32 --sizes 32 ...]
 * (`node bench/run.mjs --help` lists every option; bench/README.md explains the method.)
 * Needs a build (`npm run bench` builds first). Writes JSON to .bench-out/.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseSigningKeyFile, signXMatrixRequest } from '@hsmedia/signing';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { readCpuSeconds, readMemory, sampleMemory } from './lib/process-stats.mjs';
import { formatReport } from './lib/report.mjs';
import { startBaselineServer, startReferenceServer } from './lib/servers.mjs';
import { uploadBuffer, uploadGenerated } from './lib/upload.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;
const SERVER_NAME = 'bench.localhost';
const ORIGIN_NAME = 'origin.bench.localhost';
const USER_ID = `@bench:${SERVER_NAME}`;
const ALL_CASES = ['download', 'range', 'federation', 'upload', 'small'];

const { values: options } = parseArgs({
  options: {
    cases: { type: 'string', default: 'download,range,federation,upload' },
    sizes: { type: 'string', default: '32,256' },
    connections: { type: 'string', default: '1,2,4,32' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'upload-mib': { type: 'string', default: '256' },
    'log-level': { type: 'string', default: 'info' },
    quick: { type: 'boolean', default: false },
    tool: { type: 'string', default: 'auto' },
    out: { type: 'string', default: path.join(REPO_ROOT, '.bench-out') },
    strict: { type: 'boolean', default: false },
    'time-limit': { type: 'string', default: '1800' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (options.help) {
  process.stdout.write(
    'Usage: node bench/run.mjs [--quick] [--cases download,range,federation,upload,small] [--sizes 32,256]\n' +
      '                         [--connections 1,2,4,32] [--seconds 3] [--rounds 3] [--warmup 1] [--upload-mib 256]\n' +
      '                         [--log-level info] [--tool wrk|autocannon] [--out DIR] [--strict] [--time-limit SEC]\n' +
      '--quick: 32 MiB only, 2 and 32 connections, 2 s rounds, a 64 MiB upload (about a minute and a half).\n',
  );
  process.exit(0);
}
if (options.quick) {
  options.sizes = '32';
  options.connections = '2,32';
  options.seconds = '2';
  options['upload-mib'] = '64';
}
const cases = new Set(options.cases.split(','));
for (const name of cases) if (!ALL_CASES.includes(name)) throw new Error(`unknown case ${name}; cases are ${ALL_CASES.join(', ')}`);
const sizesMiB = options.sizes.split(',').map(Number);
const roundSec = Math.max(1, Number(options.seconds));
const roundCount = Math.max(1, Math.floor(Number(options.rounds)));
const warmupSec = Number(options.warmup);
const uploadBytes = Number(options['upload-mib']) * MIB;
const connectionCounts = options.connections.split(',').map(Number);
const tool = pickLoadTool(options.tool);

const log = (message) => process.stderr.write(`bench: ${message}\n`);
const started = Date.now();
const loadAverageAtStart = loadavg()[0];
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-'));
const servers = [];
let cleanedUp = false;
async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  await Promise.all(servers.map((server) => server.stop()));
  rmSync(work, { recursive: true, force: true });
}
// A stalled server must not hang the run (or CI) forever.
setTimeout(() => {
  log(`FAILED: still running after ${options['time-limit']} s; stopping`);
  cleanup().finally(() => process.exit(1));
}, Number(options['time-limit']) * 1000).unref();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    cleanup().finally(() => process.exit(130));
  });
}

/** Uploads `totalBytes` to a server, with its CPU time and peak memory. */
async function measureUpload(server, url, headers, totalBytes) {
  const before = readMemory(server.pid);
  const cpuBefore = readCpuSeconds(server.pid);
  const sampler = sampleMemory(server.pid);
  const result = await uploadGenerated({ url, headers, totalBytes });
  const memory = sampler.stop();
  const cpuAfter = readCpuSeconds(server.pid);
  if (result.status !== 200) throw new Error(`upload to ${url} answered ${result.status}: ${result.body.slice(0, 300)}`);
  // Growth against the RSS right before the upload; the high-water mark (an upper bound) covers spikes between samples.
  const sampledGrowth = memory.peakRssBytes - before.rssBytes;
  const hwmGrowth = memory.hwmBytes === null ? sampledGrowth : memory.hwmBytes - before.rssBytes;
  return {
    seconds: result.seconds,
    bytes: totalBytes,
    bytesPerSec: totalBytes / result.seconds,
    requests: 1,
    cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
    peakGrowthBytes: Math.max(0, sampledGrowth, hwmGrowth),
  };
}

async function checkDownload(url, headers, expectedBytes, expectedStatus = 200) {
  const response = await fetch(url, { headers });
  const body = new Uint8Array(await response.arrayBuffer());
  if (response.status !== expectedStatus || body.length < expectedBytes) {
    throw new Error(`GET ${url} answered ${response.status} with ${body.length} bytes (expected ${expectedStatus}, ${expectedBytes})`);
  }
}

/**
 * Runs one case: `roundCount` interleaved rounds (hsmedia, pipe, hsmedia, pipe, ...), so a burst of
 * other work on the machine hits both alike. The first round of each server starts with a warm-up.
 */
async function measureCase(row, targets) {
  const rounds = { reference: [], baseline: [] };
  log(`${row.label} × ${row.connections} connections: ${roundCount} round(s) of ${roundSec} s`);
  for (let round = 0; round < roundCount; round++) {
    for (const target of targets) {
      const warmup = round === 0 ? warmupSec : 0;
      rounds[target.key].push(
        await measureGetLoad({ tool, url: target.url, headers: target.headers, connections: row.connections, durationSec: roundSec, warmupSec: warmup, pid: target.pid }),
      );
    }
  }
  return { ...row, reference: rounds.reference, baseline: rounds.baseline };
}

async function main() {
  const token = randomBytes(24).toString('hex');
  const bearer = { Authorization: `Bearer ${token}` };
  const filesDir = path.join(work, 'files');
  const uploadsDir = path.join(work, 'baseline-uploads');
  for (const dir of [filesDir, uploadsDir, path.join(work, 'reference'), path.join(work, 'origin')]) mkdirSync(dir, { recursive: true });

  const needsDownloads = cases.has('download') || cases.has('range') || cases.has('federation');
  const files = [];
  if (cases.has('small')) files.push({ label: '1 KiB', name: 'file-1k.bin', size: 1024, metric: 'req/s' });
  if (needsDownloads) {
    const wanted = new Set(sizesMiB);
    if (cases.has('range')) wanted.add(Math.max(...sizesMiB));
    if (cases.has('federation')) wanted.add(32);
    for (const mib of [...wanted].sort((a, b) => a - b)) files.push({ label: `${mib} MiB`, name: `file-${mib}m.bin`, size: mib * MIB, metric: 'MiB/s' });
  }
  for (const file of files) writeFileSync(path.join(filesDir, file.name), randomBytes(file.size));

  log(`load generator: ${tool}; ${roundCount} × ${roundSec} s per server and case after ${warmupSec} s warm-up; data in ${work}`);
  let origin = null;
  if (cases.has('federation')) {
    // A second server only to publish the origin's signing key; the bench signs as it.
    origin = await startReferenceServer({
      dataDir: path.join(work, 'origin'),
      token,
      userId: `@bench:${ORIGIN_NAME}`,
      serverName: ORIGIN_NAME,
      logFile: path.join(work, 'origin.log'),
      logLevel: 'warn',
    });
    servers.push(origin);
  }
  const reference = await startReferenceServer({
    dataDir: path.join(work, 'reference'),
    token,
    userId: USER_ID,
    serverName: SERVER_NAME,
    logFile: path.join(work, 'reference.log'),
    logLevel: options['log-level'],
    extraConfig:
      origin === null ? {} : { federation: { destinations: { [ORIGIN_NAME]: origin.url }, ip_range_allowlist: ['127.0.0.1/32'] } },
  });
  servers.push(reference);
  const baseline = await startBaselineServer({ filesDir, uploadDir: uploadsDir, token, logFile: path.join(work, 'baseline.log') });
  servers.push(baseline);
  log(`reference server ${reference.url} (pid ${reference.pid}, log level ${options['log-level']}), plain pipe ${baseline.url} (pid ${baseline.pid})`);

  const results = { downloads: [], upload: null };
  if (cases.has('upload')) {
    const referenceUploadUrl = `${reference.url}/_matrix/media/v3/upload?filename=bench.bin`;
    const baselineUploadUrl = `${baseline.url}/upload`;
    // A small upload warms up both paths (JIT, SQLite, directories, the hash worker) first.
    await uploadGenerated({ url: referenceUploadUrl, headers: bearer, totalBytes: 16 * MIB });
    await uploadGenerated({ url: baselineUploadUrl, headers: bearer, totalBytes: 16 * MIB });
    log(`uploading ${uploadBytes / MIB} MiB to each server, ${roundCount} round(s)`);
    const upload = { label: `POST ${uploadBytes / MIB} MiB upload`, connections: 1, metric: 'MiB/s', bytes: uploadBytes, reference: [], baseline: [] };
    for (let round = 0; round < roundCount; round++) {
      upload.reference.push(await measureUpload(reference, referenceUploadUrl, bearer, uploadBytes));
      upload.baseline.push(await measureUpload(baseline, baselineUploadUrl, bearer, uploadBytes));
      rmSync(uploadsDir, { recursive: true, force: true });
      mkdirSync(uploadsDir);
    }
    results.upload = upload;
  }

  for (const file of files) {
    const bytes = readFileSync(path.join(filesDir, file.name));
    const { content_uri: contentUri } = await uploadBuffer({ url: `${reference.url}/_matrix/media/v3/upload?filename=${file.name}`, headers: bearer, bytes });
    const match = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(contentUri ?? '');
    if (!match) throw new Error(`upload answered content_uri ${JSON.stringify(contentUri)}`);
    file.mediaId = match[2];
    file.referenceUrl = `${reference.url}/_matrix/client/v1/media/download/${match[1]}/${match[2]}`;
    file.baselineUrl = `${baseline.url}/media/${file.name}`;
    await checkDownload(file.referenceUrl, bearer, file.size);
    await checkDownload(file.baselineUrl, bearer, file.size);
  }

  const target = (key, server, url, headers) => ({ key, url, headers, pid: server.pid });
  const downloadCase = async (file, label, connections, referenceHeaders, baselineHeaders, url = file.referenceUrl) =>
    results.downloads.push(
      await measureCase({ label, connections, metric: file.metric, bytes: file.size }, [
        target('reference', reference, url, referenceHeaders),
        target('baseline', baseline, file.baselineUrl, baselineHeaders),
      ]),
    );

  for (const file of files) {
    const isSmall = file.metric === 'req/s';
    if (isSmall || (cases.has('download') && sizesMiB.includes(file.size / MIB))) {
      for (const connections of connectionCounts) await downloadCase(file, `GET ${file.label}`, connections, bearer, bearer);
    }
  }
  if (cases.has('range')) {
    const file = files.filter((candidate) => candidate.metric === 'MiB/s').at(-1);
    // 4 MiB from the middle of the file: a seek, then a read that is not the file's start.
    const first = Math.floor(file.size / 2 / MIB) * MIB;
    const headers = { ...bearer, Range: `bytes=${first}-${first + 4 * MIB - 1}` };
    await checkDownload(file.referenceUrl, headers, 4 * MIB, 206);
    await checkDownload(file.baselineUrl, headers, 4 * MIB, 206);
    for (const connections of connectionCounts) await downloadCase(file, `GET 4 MiB Range of ${file.label}`, connections, headers, headers);
  }
  if (cases.has('federation')) {
    const file = files.find((candidate) => candidate.size === 32 * MIB);
    const [key] = parseSigningKeyFile(readFileSync(origin.signingKeyPath, 'utf8'));
    const uri = `/_matrix/federation/v1/media/download/${file.mediaId}`;
    // X-Matrix signs method, URI, origin and destination (no time), so one header serves every request.
    const authorization = signXMatrixRequest({ method: 'GET', uri, origin: ORIGIN_NAME, destination: SERVER_NAME }, key);
    const url = `${reference.url}${uri}`;
    await checkDownload(url, { Authorization: authorization }, file.size);
    for (const connections of connectionCounts) {
      await downloadCase(file, `federation GET ${file.label}`, connections, { Authorization: authorization }, bearer, url);
    }
  }
  return results;
}

let exitCode = 0;
try {
  const results = await main();
  const report = formatReport(results);
  process.stdout.write(`${report.text}\n`);
  const environment = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    tool,
    cases: [...cases],
    roundSec,
    rounds: roundCount,
    warmupSec,
    connections: connectionCounts,
    logLevel: options['log-level'],
    elapsedSec: Math.round((Date.now() - started) / 1000),
    // Other work on the machine skews throughput; CPU per GiB much less.
    loadAverage1m: { start: loadAverageAtStart, end: loadavg()[0] },
  };
  mkdirSync(options.out, { recursive: true });
  const json = JSON.stringify({ environment, rows: report.rows, raw: results }, null, 2);
  const outFile = path.join(options.out, `bench-${environment.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(outFile, json);
  writeFileSync(path.join(options.out, 'latest.json'), json);
  log(
    `wrote ${path.relative(process.cwd(), outFile)} (${environment.elapsedSec} s in all; ` +
      `1-minute load average ${environment.loadAverage1m.start.toFixed(1)} → ${environment.loadAverage1m.end.toFixed(1)} on ${environment.cpus} CPUs)`,
  );
  if (options.strict && report.rows.some((row) => row.pass === false)) exitCode = 1;
} catch (error) {
  log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  for (const name of ['reference.log', 'baseline.log', 'origin.log']) {
    try {
      const text = readFileSync(path.join(work, name), 'utf8').trim();
      if (text) log(`last lines of ${name}:\n${text.split('\n').slice(-20).join('\n')}`);
    } catch {
      // Not started yet.
    }
  }
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
