#!/usr/bin/env node
/**
 * Federation benchmark: two reference servers (a.bench, b.bench) as child
 * processes on 127.0.0.1, wired with `federation.destinations`.
 *
 *   1. Uncached remote: a client fetches a fresh 32 MiB media of A through
 *      B's client API (B fetches it over federation, streams it to the client
 *      while storing it), against a direct download of the same file from A
 *      in the same run. Time to first byte and total time, medians.
 *      Target: total within 1.5x of the direct download.
 *      CPU seconds per GiB of B while relaying (the whole process, hashing
 *      and staging threads included) against B serving its own local media,
 *      and of A serving the federation answer against A's direct download.
 *   2. Cached remote: B serves A's media from its cache, against B serving its
 *      own local media of the same size. MiB/s over sequential downloads.
 *      Target: within 10% of local.
 *
 * Usage: npx tsc -b apps/media-server && node bench/federation.mjs [--rounds 5] [--mib 32] [--repeats 10] [--profile]
 * (--profile: B under --cpu-prof; prints its top self time while relaying, every thread.
 *  --gc: B under --trace-gc; prints its collections.)
 * Writes JSON to .bench-out/federation.json.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { printSelfTime } from './lib/cpu-profile.mjs';
import { readCpuSeconds, readThreadCpuSeconds } from './lib/process-stats.mjs';
import { freePort, REFERENCE_CLI, stopChild } from './lib/servers.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

const { values: options } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    mib: { type: 'string', default: '32' },
    repeats: { type: 'string', default: '10' },
    profile: { type: 'boolean', default: false },
    gc: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(REPO_ROOT, '.bench-out') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (options.help) {
  process.stdout.write('Usage: node bench/federation.mjs [--rounds 5] [--mib 32] [--repeats 10] [--out DIR]\n');
  process.exit(0);
}
const rounds = Number(options.rounds);
const size = Number(options.mib) * MIB;
const repeats = Number(options.repeats);
const log = (message) => process.stderr.write(`bench: ${message}\n`);

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-fed-'));
const children = [];

function configYaml(name, port, destinations) {
  const dest = Object.entries(destinations)
    .map(([server, url]) => `    ${server}: ${url}`)
    .join('\n');
  return [
    `server_name: ${name}`,
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `database: { sqlite: { path: ${path.join(work, name, 'media.db')} } }`,
    `media_store: { filesystem: { path: ${path.join(work, name, 'media')} } }`,
    `signing_key_path: ${path.join(work, name, 'signing.key')}`,
    'max_upload_size: 1G',
    'log_level: warn',
    'workers: 1',
    'auth:',
    '  tokens:',
    `    bench_token: "@bench:${name}"`,
    'federation:',
    '  ip_range_allowlist: ["127.0.0.1/32"]',
    '  max_download_size: 1G',
    '  destinations:',
    dest,
    '',
  ].join('\n');
}

const profileDir = path.join(work, 'profile-b');
/** The µs windows (process.hrtime) of B's relays, for --profile. */
const relayWindows = [];

async function startServer(name, port, destinations) {
  mkdirSync(path.join(work, name), { recursive: true });
  const configPath = path.join(work, `${name}.yaml`);
  writeFileSync(configPath, configYaml(name, port, destinations));
  const logFd = openSync(path.join(work, `${name}.log`), 'w');
  const nodeArgs = name !== 'b.bench' ? [] : [...(options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...(options.gc ? ['--trace-gc', '--trace-incremental-marking'] : [])];
  const child = spawn(process.execPath, [...nodeArgs, REFERENCE_CLI, '--config', configPath], { stdio: ['ignore', logFd, logFd] });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`${url}/_matrix/client/versions`);
      await res.arrayBuffer();
      return { url, pid: child.pid };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${name} did not start; see ${path.join(work, `${name}.log`)}`);
}

async function upload(url, bytes) {
  const res = await fetch(`${url}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { Authorization: 'Bearer bench_token', 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  const { content_uri: uri } = await res.json();
  return uri.slice('mxc://'.length).split('/');
}

/** One GET with node:http: time to first body byte and total time in ms, and the byte count. */
function timedGet(url) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let firstByte = null;
    let bytes = 0;
    const req = request(url, { headers: { Authorization: 'Bearer bench_token' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: ${res.statusCode}`));
        return;
      }
      res.on('data', (chunk) => {
        firstByte ??= process.hrtime.bigint();
        bytes += chunk.length;
      });
      res.on('end', () => {
        const end = process.hrtime.bigint();
        resolve({ ttfbMs: Number(firstByte - started) / 1e6, totalMs: Number(end - started) / 1e6, bytes });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const median = (values) => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main() {
  const [portA, portB] = [await freePort(), await freePort()];
  const destinations = { 'a.bench': `http://127.0.0.1:${portA}`, 'b.bench': `http://127.0.0.1:${portB}` };
  const [serverA, serverB] = await Promise.all([startServer('a.bench', portA, destinations), startServer('b.bench', portB, destinations)]);
  const [a, b] = [serverA.url, serverB.url];
  /** CPU seconds of B's threads while relaying (main, other threads by id: Node names them all `node`), summed over rounds but the first. */
const relayThreads = new Map();
function addThreadCpu(into, before, after) {
  for (const [tid, { name, seconds, system }] of after) {
    const key = name === 'main' ? 'main' : `tid ${tid}`;
    into.set(key, (into.get(key) ?? 0) + seconds - (before.get(tid)?.seconds ?? 0));
    if (name === 'main') into.set('main (kernel)', (into.get('main (kernel)') ?? 0) + system - (before.get(tid)?.system ?? 0));
  }
}
/** `get` timed, with the CPU seconds A and B spent meanwhile. */
  const measured = async (get) => {
    const before = [readCpuSeconds(serverA.pid), readCpuSeconds(serverB.pid)];
    const result = await get();
    const after = [readCpuSeconds(serverA.pid), readCpuSeconds(serverB.pid)];
    return { ...result, cpuA: after[0] - before[0], cpuB: after[1] - before[1] };
  };
  log(`A ${a}, B ${b}; ${rounds} rounds of ${size / MIB} MiB`);

  const direct = [];
  const remote = [];
  let lastRemoteId;
  for (let i = 0; i < rounds; i++) {
    const [, id] = await upload(a, randomBytes(size));
    // The same file straight from A, then through B (uncached): the same run, the same page cache state.
    const d = await measured(() => timedGet(`${a}/_matrix/client/v1/media/download/a.bench/${id}`));
    const from = Number(process.hrtime.bigint() / 1000n);
    const threadsBefore = readThreadCpuSeconds(serverB.pid);
    const r = await measured(() => timedGet(`${b}/_matrix/client/v1/media/download/a.bench/${id}`));
    if (i > 0) addThreadCpu(relayThreads, threadsBefore, readThreadCpuSeconds(serverB.pid));
    relayWindows.push({ from, to: Number(process.hrtime.bigint() / 1000n) });
    if (d.bytes !== size || r.bytes !== size) throw new Error(`short body: direct ${d.bytes}, remote ${r.bytes}`);
    direct.push(d);
    remote.push(r);
    lastRemoteId = id;
    log(
      `round ${i + 1}: direct ${round(d.totalMs)} ms, uncached remote ${round(r.totalMs)} ms (ttfb ${round(r.ttfbMs)} ms); ` +
        `CPU ms: A direct ${round(d.cpuA * 1000)}, A federation ${round(r.cpuA * 1000)}, B relay ${round(r.cpuB * 1000)}`,
    );
  }

  if (rounds > 1) {
    // Where B's relay CPU goes, per thread, in µs per 64 KiB relayed (every round but the first).
    const chunks = ((rounds - 1) * size) / (64 * 1024);
    const parts = [...relayThreads.entries()].filter(([, s]) => s > 0).sort((x, y) => y[1] - x[1]);
    log(`B's CPU per 64 KiB relayed, by thread: ${parts.map(([name, s]) => `${name} ${round((s * 1e6) / chunks)} µs`).join(', ')}`);
  }
  // Cached remote on B vs B's own local media of the same size.
  const [, localId] = await upload(b, randomBytes(size));
  const cachedUrl = `${b}/_matrix/client/v1/media/download/a.bench/${lastRemoteId}`;
  const localUrl = `${b}/_matrix/client/v1/media/download/b.bench/${localId}`;
  await timedGet(cachedUrl);
  await timedGet(localUrl);
  const cachedTimes = [];
  const localTimes = [];
  const localCpuB = [];
  for (let i = 0; i < repeats; i++) {
    // Interleaved, so drift (other load, thermal) hits both alike.
    const local = await measured(() => timedGet(localUrl));
    localTimes.push(local.totalMs);
    localCpuB.push(local.cpuB);
    cachedTimes.push((await timedGet(cachedUrl)).totalMs);
  }
  const gib = size / (1024 * MIB);
  const perGiB = (seconds) => round(median(seconds) / gib, 3);
  const mibps = (ms) => size / MIB / (ms / 1000);

  const result = {
    sizeMiB: size / MIB,
    rounds,
    uncached: {
      directTtfbMs: round(median(direct.map((x) => x.ttfbMs))),
      directTotalMs: round(median(direct.map((x) => x.totalMs))),
      remoteTtfbMs: round(median(remote.map((x) => x.ttfbMs))),
      remoteTotalMs: round(median(remote.map((x) => x.totalMs))),
    },
    cpuSecondsPerGiB: {
      bRelay: perGiB(remote.map((x) => x.cpuB)),
      bLocal: perGiB(localCpuB),
      aFederation: perGiB(remote.map((x) => x.cpuA)),
      aDirect: perGiB(direct.map((x) => x.cpuA)),
    },
    cached: {
      repeats,
      localMiBps: round(mibps(median(localTimes))),
      cachedRemoteMiBps: round(mibps(median(cachedTimes))),
    },
  };
  result.uncached.ratio = round(result.uncached.remoteTotalMs / result.uncached.directTotalMs, 2);
  result.uncached.target = 'ratio <= 1.5';
  result.uncached.met = result.uncached.ratio <= 1.5;
  result.cpuSecondsPerGiB.bRelayOverLocal = round(result.cpuSecondsPerGiB.bRelay / result.cpuSecondsPerGiB.bLocal, 2);
  result.cached.ratio = round(result.cached.cachedRemoteMiBps / result.cached.localMiBps, 2);
  result.cached.target = 'ratio >= 0.9';
  result.cached.met = result.cached.ratio >= 0.9;

  mkdirSync(options.out, { recursive: true });
  writeFileSync(path.join(options.out, 'federation.json'), `${JSON.stringify(result, null, 2)}\n`);
  const lines = [
    `Federation media, ${size / MIB} MiB, ${rounds} rounds (medians)`,
    `  uncached remote via B: ttfb ${result.uncached.remoteTtfbMs} ms, total ${result.uncached.remoteTotalMs} ms`,
    `  direct from A:         ttfb ${result.uncached.directTtfbMs} ms, total ${result.uncached.directTotalMs} ms`,
    `  ratio ${result.uncached.ratio}x (target <= 1.5x): ${result.uncached.met ? 'met' : 'NOT met'}`,
    `  CPU s/GiB: B relaying ${result.cpuSecondsPerGiB.bRelay}, B serving local ${result.cpuSecondsPerGiB.bLocal} ` +
      `(${result.cpuSecondsPerGiB.bRelayOverLocal}x); A federation ${result.cpuSecondsPerGiB.aFederation}, A direct ${result.cpuSecondsPerGiB.aDirect}`,
    `  cached remote on B: ${result.cached.cachedRemoteMiBps} MiB/s; local on B: ${result.cached.localMiBps} MiB/s`,
    `  ratio ${result.cached.ratio} (target >= 0.9): ${result.cached.met ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} finally {
  await Promise.all(children.map((child) => stopChild(child)));
  if (options.profile) {
    // Every round but the first (JIT warm-up), every thread of B (main, hashing worker).
    process.stdout.write(`\nB's CPU profile while relaying (rounds 2..${rounds}):\n`);
    printSelfTime(profileDir, relayWindows.slice(1), 30);
    process.stdout.write(`\nThe same by script:\n`);
    printSelfTime(profileDir, relayWindows.slice(1), 30, 'file');
  }
  if (options.gc) {
    const lines = readFileSync(path.join(work, 'b.bench.log'), 'utf8').split('\n');
    if (process.env.H22_GC_LOG) writeFileSync(process.env.H22_GC_LOG, lines.join('\n'));
    const count = (pattern) => lines.filter((line) => pattern.test(line)).length;
    process.stdout.write(`B's garbage collections (whole run): ${count(/Scavenge/)} scavenges, ${count(/Mark-Compact|Mark-sweep/i)} mark-compacts\n`);
    for (const line of lines.filter((l) => /Mark-Compact|Mark-sweep/i.test(l)).slice(0, 8)) process.stdout.write(`  ${line}\n`);
  }
  rmSync(work, { recursive: true, force: true });
}
