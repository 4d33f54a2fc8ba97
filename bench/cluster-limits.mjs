#!/usr/bin/env node
/**
 * What the rate limit shared through the supervisor costs: authenticated
 * 1 KiB downloads of the reference server with `workers: 2` on SQLite and a
 * download limit too high to refuse anything, the buckets either in each
 * worker's memory (`cluster.shared_limits: memory`, the baseline) or held by
 * the supervisor (`auto`: one IPC message and answer per request). Same load,
 * interleaved rounds (memory, supervisor, memory, ...). Reports the
 * throughput ratio and the CPU per request of all the server's processes
 * (supervisor + workers), which is steadier than throughput on a busy machine.
 *
 *   npx tsc -b apps/media-server && node bench/cluster-limits.mjs [--duration 6] [--rounds 2] [--connections 32] [--tool wrk|autocannon]
 *
 * Bounded: about 2 × rounds × (duration + warm-up) s plus start-up.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { startReferenceServer, treeCpuSeconds } from './lib/servers.mjs';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    tool: { type: 'string' },
  },
});
const durationSec = Number(values.duration);
const rounds = Number(values.rounds);
const warmupSec = Number(values.warmup);
const connections = Number(values.connections);
const tool = pickLoadTool(values.tool);
const TOKEN = 'bench_token';
const SERVER_NAME = 'bench.test';
const headers = { authorization: `Bearer ${TOKEN}` };
/** Never refuses during a run: the cost of counting is measured, not of refusing. */
const UNREACHABLE_LIMIT = { per_second: 1_000_000, burst: 1_000_000 };

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-cluster-limits-'));

async function start(name, sharedLimits) {
  const dataDir = path.join(work, name);
  mkdirSync(dataDir, { recursive: true });
  const server = await startReferenceServer({
    dataDir,
    token: TOKEN,
    userId: `@bench:${SERVER_NAME}`,
    serverName: SERVER_NAME,
    logFile: path.join(work, `${name}.log`),
    extraConfig: { workers: 2, limits: { download: UNREACHABLE_LIMIT }, cluster: { shared_limits: sharedLimits } },
  });
  const { pids } = server; // startReferenceServer waited for both workers and for start-up to settle
  const response = await fetch(`${server.url}/_matrix/media/v3/upload?filename=one-kib.bin`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: randomBytes(1024),
  });
  if (response.status !== 200) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  const { content_uri: uri } = await response.json();
  return { ...server, pids, downloadUrl: `${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${uri.slice(`mxc://${SERVER_NAME}/`.length)}` };
}

const totals = { memory: { requests: 0, seconds: 0, cpu: 0 }, supervisor: { requests: 0, seconds: 0, cpu: 0 } };
const loadAtStart = loadavg()[0];
const servers = [];
try {
  const memory = await start('memory', 'memory');
  servers.push(memory);
  const supervisor = await start('supervisor', 'auto');
  servers.push(supervisor);
  for (let round = 0; round < rounds; round++) {
    for (const [key, server] of [['memory', memory], ['supervisor', supervisor]]) {
      const cpuBefore = treeCpuSeconds(server.pids);
      const result = await measureGetLoad({ tool, url: server.downloadUrl, headers, connections, durationSec, warmupSec });
      totals[key].cpu += treeCpuSeconds(server.pids) - cpuBefore;
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
  `\n1 KiB authenticated downloads, workers: 2 on SQLite, ${tool}, ${connections} connections, ${rounds} × ${durationSec} s per setup, ` +
    `${availableParallelism()} cores, load average ${loadAtStart.toFixed(2)} → ${loadavg()[0].toFixed(2)}\n`,
);
console.log('download limit buckets      req/s   server CPU µs/req');
console.log(`in each worker (memory)  ${String(Math.round(rate(totals.memory))).padStart(8)}   ${cpuPerRequestUs(totals.memory).toFixed(1).padStart(8)}`);
console.log(`in the supervisor (IPC)  ${String(Math.round(rate(totals.supervisor))).padStart(8)}   ${cpuPerRequestUs(totals.supervisor).toFixed(1).padStart(8)}`);
console.log(
  `\nsupervisor / memory: throughput ${(rate(totals.supervisor) / rate(totals.memory)).toFixed(2)}x, ` +
    `CPU per request ${(cpuPerRequestUs(totals.supervisor) / cpuPerRequestUs(totals.memory)).toFixed(2)}x`,
);
