#!/usr/bin/env node
/**
 * Benchmarks the reference media server against a bare `node:http` baseline,
 * both on 127.0.0.1, and checks the targets of the issue:
 *   - authenticated download of a 1 KiB file: ≥ 1.0× the baseline's requests/s;
 *   - authenticated download of a 32 MiB file: ≥ 0.9× the baseline's MiB/s;
 *   - a 1 GiB upload: peak RSS growth of the server < 100 MiB.
 * Usage: npm run bench [-- --duration 10 --warmup 2 --tool wrk|autocannon --upload-mib 1024 --strict]
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
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { readCpuSeconds, readMemory, sampleMemory } from './lib/process-stats.mjs';
import { formatReport } from './lib/report.mjs';
import { startBaselineServer, startReferenceServer } from './lib/servers.mjs';
import { uploadBuffer, uploadGenerated } from './lib/upload.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;
const SERVER_NAME = 'bench.localhost';
const USER_ID = `@bench:${SERVER_NAME}`;

const { values: options } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    tool: { type: 'string', default: 'auto' },
    'upload-mib': { type: 'string', default: '1024' },
    connections: { type: 'string', default: '32,4' },
    out: { type: 'string', default: path.join(REPO_ROOT, '.bench-out') },
    strict: { type: 'boolean', default: false },
    'time-limit': { type: 'string', default: '600' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (options.help) {
  process.stdout.write(
    'Usage: node bench/run.mjs [--duration SEC] [--rounds N] [--warmup SEC] [--tool wrk|autocannon] [--upload-mib N]\n' +
      '                         [--connections 32,4] [--out DIR] [--strict] [--time-limit SEC]\n',
  );
  process.exit(0);
}
const durationSec = Number(options.duration);
const roundCount = Math.max(1, Math.floor(Number(options.rounds)));
const roundSec = Math.max(1, Math.round(durationSec / roundCount));
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

/** Uploads `totalBytes` to a server while sampling its memory. */
async function measureUpload(server, url, headers, totalBytes) {
  const before = readMemory(server.pid);
  const cpuBefore = readCpuSeconds(server.pid);
  const sampler = sampleMemory(server.pid);
  const result = await uploadGenerated({ url, headers, totalBytes });
  const memory = sampler.stop();
  const cpuAfter = readCpuSeconds(server.pid);
  if (result.status !== 200) throw new Error(`upload to ${url} answered ${result.status}: ${result.body.slice(0, 300)}`);
  // Growth is measured against the RSS right before the upload. The high-water mark covers
  // spikes between samples; it is an upper bound (it may predate the upload).
  const sampledGrowth = memory.peakRssBytes - before.rssBytes;
  const hwmGrowth = memory.hwmBytes === null ? sampledGrowth : memory.hwmBytes - before.rssBytes;
  return {
    seconds: result.seconds,
    mibPerSec: totalBytes / MIB / result.seconds,
    cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
    rssBeforeBytes: before.rssBytes,
    peakRssBytes: memory.peakRssBytes,
    hwmBytes: memory.hwmBytes,
    sampledGrowthBytes: Math.max(0, sampledGrowth),
    peakGrowthBytes: Math.max(0, sampledGrowth, hwmGrowth),
  };
}

/** Totals of several load rounds: rates over the summed time, plus each round for the JSON. */
function combineRounds(results) {
  const seconds = results.reduce((sum, result) => sum + result.seconds, 0);
  const requests = results.reduce((sum, result) => sum + result.requests, 0);
  const bytes = results.reduce((sum, result) => sum + result.bytesPerSec * result.seconds, 0);
  const cpuSeconds = results.some((result) => result.cpuSeconds === null)
    ? null
    : results.reduce((sum, result) => sum + result.cpuSeconds, 0);
  return { requests, seconds, bytes, requestsPerSec: requests / seconds, bytesPerSec: bytes / seconds, cpuSeconds, rounds: results };
}

async function checkDownload(url, headers, expectedBytes) {
  const response = await fetch(url, { headers });
  const body = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200 || body.length !== expectedBytes) {
    throw new Error(`GET ${url} answered ${response.status} with ${body.length} bytes (expected 200, ${expectedBytes})`);
  }
}

async function main() {
  const token = randomBytes(24).toString('hex');
  const headers = { Authorization: `Bearer ${token}` };
  const filesDir = path.join(work, 'files');
  const uploadsDir = path.join(work, 'baseline-uploads');
  const referenceDir = path.join(work, 'reference');
  for (const dir of [filesDir, uploadsDir, referenceDir]) mkdirSync(dir, { recursive: true });
  const files = [
    { label: '1 KiB', name: 'file-1k.bin', bytes: randomBytes(1024), metric: 'req/s' },
    { label: '32 MiB', name: 'file-32m.bin', bytes: randomBytes(32 * MIB), metric: 'MiB/s' },
  ];
  for (const file of files) writeFileSync(path.join(filesDir, file.name), file.bytes);

  log(`load generator: ${tool}; ${roundCount} × ${roundSec} s per server and case after ${warmupSec} s warm-up; data in ${work}`);
  const reference = await startReferenceServer({
    dataDir: referenceDir,
    token,
    userId: USER_ID,
    serverName: SERVER_NAME,
    logFile: path.join(work, 'reference.log'),
  });
  servers.push(reference);
  const baseline = await startBaselineServer({ filesDir, uploadDir: uploadsDir, token, logFile: path.join(work, 'baseline.log') });
  servers.push(baseline);
  log(`reference server ${reference.url} (pid ${reference.pid}), baseline ${baseline.url} (pid ${baseline.pid})`);

  const referenceUploadUrl = `${reference.url}/_matrix/media/v3/upload?filename=bench.bin`;
  const baselineUploadUrl = `${baseline.url}/upload`;

  // Upload first, so the high-water mark reflects the upload rather than earlier load.
  // A small upload warms up both paths (JIT, SQLite, directories) before memory is read.
  await uploadGenerated({ url: referenceUploadUrl, headers, totalBytes: 16 * MIB });
  await uploadGenerated({ url: baselineUploadUrl, headers, totalBytes: 16 * MIB });
  log(`uploading ${uploadBytes / MIB} MiB to each server`);
  const upload = {
    reference: await measureUpload(reference, referenceUploadUrl, headers, uploadBytes),
    baseline: await measureUpload(baseline, baselineUploadUrl, headers, uploadBytes),
  };
  rmSync(uploadsDir, { recursive: true, force: true });
  mkdirSync(uploadsDir);

  for (const file of files) {
    const { content_uri: contentUri } = await uploadBuffer({
      url: `${reference.url}/_matrix/media/v3/upload?filename=${file.name}`,
      headers,
      bytes: file.bytes,
    });
    const match = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(contentUri ?? '');
    if (!match) throw new Error(`upload answered content_uri ${JSON.stringify(contentUri)}`);
    file.referenceUrl = `${reference.url}/_matrix/client/v1/media/download/${match[1]}/${match[2]}`;
    file.baselineUrl = `${baseline.url}/media/${file.name}`;
    await checkDownload(file.referenceUrl, headers, file.bytes.length);
    await checkDownload(file.baselineUrl, headers, file.bytes.length);
  }

  const downloads = [];
  for (const file of files) {
    for (const connections of connectionCounts) {
      const row = { file: file.label, bytes: file.bytes.length, metric: file.metric, connections };
      // Interleave the servers in short rounds (A B A B ...), so a burst of background load
      // hits both alike instead of one server's whole run.
      const targets = [
        ['reference', file.referenceUrl, reference.pid],
        ['baseline', file.baselineUrl, baseline.pid],
      ];
      const rounds = { reference: [], baseline: [] };
      log(`GET ${file.label} × ${connections} connections: ${roundCount} round(s) of ${roundSec} s each`);
      for (let round = 0; round < roundCount; round++) {
        for (const [key, url, pid] of targets) {
          const warmup = round === 0 ? warmupSec : 0;
          rounds[key].push(await measureGetLoad({ tool, url, headers, connections, durationSec: roundSec, warmupSec: warmup, pid }));
        }
      }
      for (const [key] of targets) row[key] = combineRounds(rounds[key]);
      downloads.push(row);
    }
  }

  return { upload, downloads };
}

let exitCode = 0;
try {
  const results = await main();
  const report = formatReport({ ...results, uploadBytes });
  process.stdout.write(`${report.text}\n`);
  const environment = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    tool,
    durationSec,
    rounds: roundCount,
    warmupSec,
    connections: connectionCounts,
    elapsedSec: Math.round((Date.now() - started) / 1000),
    // Other work on the machine skews throughput; CPU per unit of work much less.
    loadAverage1m: { start: loadAverageAtStart, end: loadavg()[0] },
  };
  mkdirSync(options.out, { recursive: true });
  const json = JSON.stringify({ environment, rows: report.rows, cpuRows: report.cpuRows, raw: results }, null, 2);
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
  for (const name of ['reference.log', 'baseline.log']) {
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
