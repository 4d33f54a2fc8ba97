#!/usr/bin/env node
/**
 * Authenticated 1 KiB downloads per second of the reference server with
 * `workers: 1` (one process) against `workers: N` (a supervisor and N server
 * processes on one port, node:cluster), same SQLite database and media
 * directory, same load, measured in interleaved rounds (1, N, 1, N, ...) so
 * that other work on the machine hits both. Reports the ratio and the CPU per
 * request of all the server's processes (supervisor + workers).
 *
 *   npx tsc -b apps/media-server && node bench/workers.mjs [--workers 2] [--duration 8] [--rounds 2] [--connections 64] [--tool wrk|autocannon]
 *
 * The load generator runs on the same machine: wrk takes its share of the
 * cores too, so the ratio is bounded by what is left for the server.
 * Bounded: about 2 × rounds × (duration + warm-up) s plus start-up.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { readCpuSeconds } from './lib/process-stats.mjs';
import { processTree, startReferenceServer, treeCpuSeconds } from './lib/servers.mjs';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: String(availableParallelism()) },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    tool: { type: 'string' },
  },
});
const workers = Number(values.workers);
const durationSec = Number(values.duration);
const rounds = Number(values.rounds);
const warmupSec = Number(values.warmup);
const connections = Number(values.connections);
const tool = pickLoadTool(values.tool);
if (tool === 'autocannon') {
  // Measured (docs/byte-path.md, "Workers"): autocannon needs a core of its own, so on 2 cores it, not the server, sets the pace.
  console.error('bench: wrk not found, using autocannon: it takes a whole core, and the ratio then measures it (apt-get install wrk)');
}
const TOKEN = 'bench_token';
const SERVER_NAME = 'bench.test';
const headers = { authorization: `Bearer ${TOKEN}` };

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-workers-'));
const servers = [];

async function startServer(name, workerCount) {
  const dataDir = path.join(work, name);
  mkdirSync(dataDir);
  const server = await startReferenceServer({
    dataDir,
    token: TOKEN,
    userId: `@bench:${SERVER_NAME}`,
    serverName: SERVER_NAME,
    logFile: path.join(work, `${name}.log`),
    // One database and media directory for both setups: the same media is served by both.
    extraConfig: {
      database: { sqlite: { path: path.join(work, 'media.db') } },
      media_store: { filesystem: { path: path.join(work, 'media') } },
      workers: workerCount,
    },
  });
  servers.push(server);
  return { ...server, workers: workerCount };
}

async function uploadOne(server) {
  const response = await fetch(`${server.url}/_matrix/media/v3/upload?filename=one-kib.bin`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: randomBytes(1024),
  });
  if (response.status !== 200) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  const { content_uri: uri } = await response.json();
  return uri.slice(`mxc://${SERVER_NAME}/`.length);
}

const totals = { one: { requests: 0, seconds: 0, cpu: 0, perProcess: new Map() }, many: { requests: 0, seconds: 0, cpu: 0, perProcess: new Map() } };
const loadAtStart = loadavg()[0];
try {
  const single = await startServer('workers-1', 1);
  const many = await startServer(`workers-${workers}`, workers);
  const mediaId = await uploadOne(single);
  const url = (server) => `${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}`;
  // Both answer for the same media (shared database and directory): check before measuring.
  for (const server of [single, many]) {
    const response = await fetch(url(server), { headers });
    if (response.status !== 200 || (await response.arrayBuffer()).byteLength !== 1024) throw new Error('download check failed');
  }
  for (let round = 0; round < rounds; round++) {
    for (const [key, server] of [['one', single], ['many', many]]) {
      const pids = processTree(server.pid);
      const cpuBefore = treeCpuSeconds(pids);
      const perBefore = pids.map((pid) => readCpuSeconds(pid) ?? 0);
      const result = await measureGetLoad({ tool, url: url(server), headers, connections, durationSec, warmupSec });
      totals[key].cpu += treeCpuSeconds(pids) - cpuBefore;
      // Which process does the work: the supervisor (pids[0] with workers) and each worker.
      pids.forEach((pid, index) => {
        const name = index === 0 ? (server.workers > 1 ? 'supervisor' : 'server') : `worker ${index}`;
        totals[key].perProcess.set(name, (totals[key].perProcess.get(name) ?? 0) + (readCpuSeconds(pid) ?? 0) - perBefore[index]);
      });
      totals[key].requests += result.requests;
      totals[key].seconds += result.seconds;
    }
  }
} finally {
  for (const server of servers) await server.stop();
  rmSync(work, { recursive: true, force: true });
}

const rate = (t) => t.requests / t.seconds;
const cpuPerRequestUs = (t) => (t.cpu / t.requests) * 1e6;
console.log(
  `\n1 KiB authenticated downloads, ${tool}, ${connections} connections, ${rounds} × ${durationSec} s per setup, ` +
    `${availableParallelism()} cores, load average ${loadAtStart.toFixed(2)} → ${loadavg()[0].toFixed(2)}\n`,
);
console.log('setup          req/s   server CPU µs/req');
console.log(`workers: 1   ${String(Math.round(rate(totals.one))).padStart(7)}   ${cpuPerRequestUs(totals.one).toFixed(1).padStart(8)}`);
console.log(`workers: ${String(workers).padEnd(3)} ${String(Math.round(rate(totals.many))).padStart(7)}   ${cpuPerRequestUs(totals.many).toFixed(1).padStart(8)}`);
for (const [key, label] of [['one', 'workers: 1'], ['many', `workers: ${workers}`]]) {
  const t = totals[key];
  const parts = [...t.perProcess.entries()].map(([name, cpu]) => `${name} ${(cpu / t.seconds).toFixed(2)} cores`);
  console.log(`${label}: CPU by process over the load: ${parts.join(', ')}`);
}
const ratio = rate(totals.many) / rate(totals.one);
console.log(`\nratio workers ${workers} / workers 1: ${ratio.toFixed(2)}x (target ≥ 1.7x with 2 workers on 2 cores)`);
