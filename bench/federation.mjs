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
 *   2. Cached remote: B serves A's media from its cache, against B serving its
 *      own local media of the same size. MiB/s over sequential downloads.
 *      Target: within 10% of local.
 *
 * Usage: npx tsc -b apps/media-server && node bench/federation.mjs [--rounds 5] [--mib 32] [--repeats 10]
 * Writes JSON to .bench-out/federation.json.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, REFERENCE_CLI, stopChild } from './lib/servers.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

const { values: options } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    mib: { type: 'string', default: '32' },
    repeats: { type: 'string', default: '10' },
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

async function startServer(name, port, destinations) {
  mkdirSync(path.join(work, name), { recursive: true });
  const configPath = path.join(work, `${name}.yaml`);
  writeFileSync(configPath, configYaml(name, port, destinations));
  const logFd = openSync(path.join(work, `${name}.log`), 'w');
  const child = spawn(process.execPath, [REFERENCE_CLI, '--config', configPath], { stdio: ['ignore', logFd, logFd] });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`${url}/_matrix/client/versions`);
      await res.arrayBuffer();
      return url;
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
  const [a, b] = await Promise.all([startServer('a.bench', portA, destinations), startServer('b.bench', portB, destinations)]);
  log(`A ${a}, B ${b}; ${rounds} rounds of ${size / MIB} MiB`);

  const direct = [];
  const remote = [];
  let lastRemoteId;
  for (let i = 0; i < rounds; i++) {
    const [, id] = await upload(a, randomBytes(size));
    // The same file straight from A, then through B (uncached): the same run, the same page cache state.
    const d = await timedGet(`${a}/_matrix/client/v1/media/download/a.bench/${id}`);
    const r = await timedGet(`${b}/_matrix/client/v1/media/download/a.bench/${id}`);
    if (d.bytes !== size || r.bytes !== size) throw new Error(`short body: direct ${d.bytes}, remote ${r.bytes}`);
    direct.push(d);
    remote.push(r);
    lastRemoteId = id;
    log(`round ${i + 1}: direct ${round(d.totalMs)} ms, uncached remote ${round(r.totalMs)} ms (ttfb ${round(r.ttfbMs)} ms)`);
  }

  // Cached remote on B vs B's own local media of the same size.
  const [, localId] = await upload(b, randomBytes(size));
  const cachedUrl = `${b}/_matrix/client/v1/media/download/a.bench/${lastRemoteId}`;
  const localUrl = `${b}/_matrix/client/v1/media/download/b.bench/${localId}`;
  await timedGet(cachedUrl);
  await timedGet(localUrl);
  const cachedTimes = [];
  const localTimes = [];
  for (let i = 0; i < repeats; i++) {
    // Interleaved, so drift (other load, thermal) hits both alike.
    localTimes.push((await timedGet(localUrl)).totalMs);
    cachedTimes.push((await timedGet(cachedUrl)).totalMs);
  }
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
    cached: {
      repeats,
      localMiBps: round(mibps(median(localTimes))),
      cachedRemoteMiBps: round(mibps(median(cachedTimes))),
    },
  };
  result.uncached.ratio = round(result.uncached.remoteTotalMs / result.uncached.directTotalMs, 2);
  result.uncached.target = 'ratio <= 1.5';
  result.uncached.met = result.uncached.ratio <= 1.5;
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
    `  cached remote on B: ${result.cached.cachedRemoteMiBps} MiB/s; local on B: ${result.cached.localMiBps} MiB/s`,
    `  ratio ${result.cached.ratio} (target >= 0.9): ${result.cached.met ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} finally {
  await Promise.all(children.map((child) => stopChild(child)));
  rmSync(work, { recursive: true, force: true });
}
