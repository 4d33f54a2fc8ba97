#!/usr/bin/env node
/**
 * The cost of virus scanning with clamd, against the same server without
 * scanning, in the same run: two reference servers (SQLite, filesystem
 * store), one with `scanning: { clamd: { socket } }`, one without.
 *
 *   - 32 MiB: upload, then wait until the media is visible (a 1-byte range
 *     GET with timeout_ms), in MiB/s; CPU per GiB of the server and of clamd;
 *   - 1 KiB: the time from the start of the upload until the media is
 *     visible (median and p90 of sequential uploads).
 *
 *   npm run build && node bench/scan.mjs [--rounds 6] [--small 60]
 *
 * Needs clamd (apt-get install --no-install-recommends clamav-daemon); starts its own on a temp dir
 * with a one-signature database (nothing is downloaded).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startClamd } from './lib/clamd.mjs';
import { readCpuSeconds } from './lib/process-stats.mjs';
import { freePort, REFERENCE_CLI, stopChild } from './lib/servers.mjs';
import { uploadBuffer } from './lib/upload.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, small: { type: 'string', default: '60' } } });
const rounds = Number(values.rounds);
const smallCount = Number(values.small);
const MIB = 1024 * 1024;
const TOKEN = 'bench_token';
const SERVER_NAME = 'bench.test';
const headers = { authorization: `Bearer ${TOKEN}` };
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-scan-'));
const log = (message) => process.stderr.write(`bench/scan: ${message}\n`);

async function startServer(name, scanning) {
  const port = await freePort();
  const configFile = path.join(work, `${name}.json`);
  writeFileSync(
    configFile,
    JSON.stringify({
      server_name: SERVER_NAME,
      listen: { host: '127.0.0.1', port },
      database: { sqlite: { path: path.join(work, `${name}.db`) } },
      media_store: { filesystem: { path: path.join(work, `${name}-media`) } },
      signing_key_path: path.join(work, `${name}.key`),
      auth: { tokens: { [TOKEN]: `@bench:${SERVER_NAME}` } },
      max_upload_size: '64M',
      log_level: 'warn',
      // Thumbnails off: only the upload and the scan are measured.
      thumbnails: { sizes: [] },
      ...(scanning === undefined ? {} : { scanning }),
    }),
  );
  const out = createWriteStream(path.join(work, `${name}.log`));
  const child = spawn(process.execPath, [REFERENCE_CLI, 'start', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
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
  return { name, url, pid: child.pid, stop: () => stopChild(child) };
}

/** Upload, then wait until the media is visible: seconds from the first byte sent to the visible answer. */
async function uploadUntilVisible(server, bytes) {
  const started = process.hrtime.bigint();
  const { content_uri: contentUri } = await uploadBuffer({ url: `${server.url}/_matrix/media/v3/upload`, headers, bytes });
  const mediaId = contentUri.split('/').pop();
  const response = await fetch(`${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=60000`, {
    headers: { ...headers, range: 'bytes=0-0' },
  });
  await response.arrayBuffer();
  if (response.status !== 206 && response.status !== 200) throw new Error(`${server.name}: download answered ${response.status}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
const p90 = (values) => [...values].sort((x, y) => x - y)[Math.min(values.length - 1, Math.floor(values.length * 0.9))];

let clamd;
const servers = [];
try {
  clamd = await startClamd(work);
  const plain = await startServer('plain');
  servers.push(plain);
  const scanned = await startServer('scanned', { clamd: { socket: clamd.socket }, version_poll_interval: '1h' });
  servers.push(scanned);
  const large = randomBytes(32 * MIB);
  const small = randomBytes(1024);
  // Warm-up: one of each on both (first scan loads nothing more, but the first SQLite writes do).
  for (const server of servers) {
    await uploadUntilVisible(server, large);
    await uploadUntilVisible(server, small);
  }
  const largeSeconds = { plain: [], scanned: [] };
  const cpu = { plain: 0, scanned: 0, clamd: 0 };
  for (let round = 0; round < rounds; round++) {
    // Interleaved, so a burst of other work on the machine hits both.
    for (const server of servers) {
      const before = readCpuSeconds(server.pid);
      const clamdBefore = readCpuSeconds(clamd.pid);
      largeSeconds[server.name].push(await uploadUntilVisible(server, randomBytes(32 * MIB)));
      cpu[server.name] += readCpuSeconds(server.pid) - before;
      if (server === scanned) cpu.clamd += readCpuSeconds(clamd.pid) - clamdBefore;
    }
  }
  const smallSeconds = { plain: [], scanned: [] };
  for (let i = 0; i < smallCount; i++) {
    for (const server of servers) smallSeconds[server.name].push(await uploadUntilVisible(server, randomBytes(1024)));
  }
  const gib = (rounds * 32) / 1024;
  const mibPerSecond = (name) => (rounds * 32) / largeSeconds[name].reduce((sum, s) => sum + s, 0);
  const report = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
    large: {
      plainMiBps: mibPerSecond('plain'),
      scannedMiBps: mibPerSecond('scanned'),
      ratio: mibPerSecond('scanned') / mibPerSecond('plain'),
      cpuSecondsPerGiB: { plainServer: cpu.plain / gib, scannedServer: cpu.scanned / gib, clamd: cpu.clamd / gib },
    },
    small: {
      plainMedianMs: median(smallSeconds.plain) * 1000,
      scannedMedianMs: median(smallSeconds.scanned) * 1000,
      plainP90Ms: p90(smallSeconds.plain) * 1000,
      scannedP90Ms: p90(smallSeconds.scanned) * 1000,
    },
  };
  const f = (n) => n.toFixed(1);
  process.stdout.write(
    [
      `32 MiB upload until visible: no scan ${f(report.large.plainMiBps)} MiB/s, with clamd ${f(report.large.scannedMiBps)} MiB/s (ratio ${report.large.ratio.toFixed(2)})`,
      `  CPU per GiB: server without scan ${f(report.large.cpuSecondsPerGiB.plainServer)} s, server with scan ${f(report.large.cpuSecondsPerGiB.scannedServer)} s, clamd ${f(report.large.cpuSecondsPerGiB.clamd)} s`,
      `1 KiB upload until visible: no scan median ${f(report.small.plainMedianMs)} ms (p90 ${f(report.small.plainP90Ms)}), with clamd median ${f(report.small.scannedMedianMs)} ms (p90 ${f(report.small.scannedP90Ms)})`,
      `load average ${loadavg().map((n) => n.toFixed(2)).join(' ')} on ${cpus().length} CPUs`,
      '',
    ].join('\n'),
  );
} catch (error) {
  log(`failed: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  for (const server of servers) await server.stop();
  await clamd?.stop();
  rmSync(work, { recursive: true, force: true });
}
