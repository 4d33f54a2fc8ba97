#!/usr/bin/env node
/**
 * Soak: a mixed load on two reference servers (A and B, SQLite, federating
 * with each other on 127.0.0.1) for a configurable time, watching that they
 * stay healthy: memory and open file descriptors must not grow without bound,
 * and no request may fail.
 *
 *   npx tsc -b apps/media-server && node bench/soak.mjs [--duration 1200] [--warmup 60] [--sample 60]
 *     [--concurrency 4] [--max-size 32] [--rss-tolerance 0.15] [--fd-slack 8] [--workers 1] [--json FILE]
 *
 * The load, `concurrency` loops each picking one operation at a time:
 * uploads to A (1 KiB to --max-size MiB, mostly small), authenticated
 * downloads from A, thumbnails of a PNG on A, async uploads on A (`/create`,
 * then `PUT`, then a download), and federation fetches (an upload to A, then
 * its download from B, which fetches it over federation). Every answer must
 * be 2xx with the right length.
 *
 * Every `--sample` seconds it records RSS and open descriptors of every
 * server process (with workers: the supervisor and each worker). It fails
 * (exit 1) if any request failed, if a process's RSS at the end exceeds
 * (1 + rss-tolerance) × its RSS after warm-up, or if its descriptors at the
 * end exceed the most seen after warm-up... plus fd-slack. In-memory caches
 * are kept small (media_cache 4M) so that filling them is not mistaken for a
 * leak. Bounded: duration + start-up + the longest request in flight.
 * Prints a report (throughput, p50/p99 per route, errors by status, the
 * samples) and, with --json, writes it to FILE.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, REFERENCE_CLI, stopChild } from './lib/servers.mjs';

const { values: options } = parseArgs({
  options: {
    duration: { type: 'string', default: '1200' },
    warmup: { type: 'string', default: '60' },
    sample: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '4' },
    'max-size': { type: 'string', default: '32' },
    'rss-tolerance': { type: 'string', default: '0.15' },
    'fd-slack': { type: 'string', default: '8' },
    workers: { type: 'string', default: '1' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (options.help) {
  process.stdout.write('Usage: node bench/soak.mjs [--duration 1200] [--warmup 60] [--sample 60] [--concurrency 4] [--max-size 32] [--json FILE]\n');
  process.exit(0);
}
const durationMs = Number(options.duration) * 1000;
const warmupMs = Number(options.warmup) * 1000;
const sampleMs = Number(options.sample) * 1000;
const concurrency = Number(options.concurrency);
const maxSize = Number(options['max-size']) * 2 ** 20;
const rssTolerance = Number(options['rss-tolerance']);
const fdSlack = Number(options['fd-slack']);
const workers = Number(options.workers);
if (!(warmupMs < durationMs)) throw new Error('--warmup must be shorter than --duration');

const TOKEN = 'soak_token';
const auth = { Authorization: `Bearer ${TOKEN}` };
const log = (message) => process.stderr.write(`soak: ${message}\n`);
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-soak-'));
const servers = [];

// ---- servers -------------------------------------------------------------

function configYaml(name, port, peers) {
  return [
    `server_name: ${name}`,
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `database: { sqlite: { path: ${path.join(work, name, 'media.db')} } }`,
    `media_store: { filesystem: { path: ${path.join(work, name, 'media')} } }`,
    `signing_key_path: ${path.join(work, name, 'signing.key')}`,
    'max_upload_size: 64M',
    'log_level: warn',
    `workers: ${workers}`,
    'media_cache: { max_bytes: 4M }',
    // The soak looks for leaks, not for limits: no rate limit on /create, room for pending IDs.
    'limits: { create: null, max_pending_uploads: 1000 }',
    `auth: { tokens: { ${TOKEN}: "@soak:${name}" } }`,
    'federation:',
    '  ip_range_allowlist: ["127.0.0.1/32"]',
    '  max_download_size: 64M',
    '  destinations:',
    ...Object.entries(peers).map(([server, url]) => `    ${server}: ${url}`),
    '',
  ].join('\n');
}

async function startServers() {
  const [portA, portB] = [await freePort(), await freePort()];
  const urls = { 'a.soak': `http://127.0.0.1:${portA}`, 'b.soak': `http://127.0.0.1:${portB}` };
  for (const [name, port] of [['a.soak', portA], ['b.soak', portB]]) {
    mkdirSync(path.join(work, name), { recursive: true });
    const configPath = path.join(work, `${name}.yaml`);
    const peers = Object.fromEntries(Object.entries(urls).filter(([server]) => server !== name));
    writeFileSync(configPath, configYaml(name, port, peers));
    const logFd = openSync(path.join(work, `${name}.log`), 'w');
    const child = spawn(process.execPath, [REFERENCE_CLI, '--config', configPath], { stdio: ['ignore', logFd, logFd] });
    servers.push({ name, url: urls[name], child });
  }
  for (const server of servers) {
    for (let attempt = 0; ; attempt++) {
      try {
        await (await fetch(`${server.url}/_matrix/client/versions`)).arrayBuffer();
        break;
      } catch {
        if (attempt > 1200 || server.child.exitCode !== null) throw new Error(`${server.name} did not start; see ${work}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
  return servers;
}

// ---- process samples -----------------------------------------------------

function processTree(pid) {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return [pid, ...children];
  } catch {
    return [pid];
  }
}

function sampleProcess(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { pid, rssMiB: rssKib / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

const samples = [];
function takeSample(label) {
  const at = Math.round((Date.now() - startedAt) / 1000);
  const processes = [];
  for (const server of servers) {
    processTree(server.child.pid).forEach((pid, index) => {
      const sample = sampleProcess(pid);
      if (sample) processes.push({ process: index === 0 ? server.name : `${server.name}/worker-${index}`, ...sample });
    });
  }
  samples.push({ label, atSec: at, processes });
}

// ---- HTTP ----------------------------------------------------------------

const stats = new Map();
function record(route, status, ms) {
  let entry = stats.get(route);
  if (!entry) stats.set(route, (entry = { latencies: [], statuses: {} }));
  entry.latencies.push(ms);
  entry.statuses[status] = (entry.statuses[status] ?? 0) + 1;
}

/** One request with node:http; resolves with status and body length (the body is drained, not kept, unless asked). */
function call(route, method, url, { headers = {}, body, keepBody = false } = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request(url, { method, headers: { ...auth, ...headers } }, (res) => {
      let bytes = 0;
      const parts = [];
      res.on('data', (chunk) => {
        bytes += chunk.length;
        if (keepBody) parts.push(chunk);
      });
      res.on('end', () => {
        const ms = performance.now() - started;
        record(route, res.statusCode, ms);
        resolve({ status: res.statusCode, bytes, body: keepBody ? Buffer.concat(parts) : undefined });
      });
      res.on('error', () => {
        record(route, 'response-error', performance.now() - started);
        resolve({ status: 0, bytes });
      });
    });
    req.on('error', () => {
      record(route, 'socket-error', performance.now() - started);
      resolve({ status: 0, bytes: 0 });
    });
    req.end(body);
  });
}

const failures = [];
function expect2xx(route, result, what, expectedBytes) {
  if (result.status < 200 || result.status > 299) failures.push(`${route}: ${what}: status ${result.status}`);
  else if (expectedBytes !== undefined && result.bytes !== expectedBytes) {
    failures.push(`${route}: ${what}: ${result.bytes} bytes, expected ${expectedBytes}`);
  }
  return result.status >= 200 && result.status <= 299;
}

// Upload bodies: one random buffer of the largest size, sliced (views, no per-request allocation).
const SIZES = [1024, 16 * 1024, 256 * 1024, 1024 ** 2, 4 * 1024 ** 2, 32 * 1024 ** 2].filter((size) => size <= maxSize);
const SIZE_WEIGHTS = [30, 25, 20, 12, 8, 5].slice(0, SIZES.length);
const POOL = randomBytes(Math.max(...SIZES));
function pickSize() {
  let roll = Math.random() * SIZE_WEIGHTS.reduce((a, b) => a + b, 0);
  for (let i = 0; i < SIZES.length; i++) if ((roll -= SIZE_WEIGHTS[i]) < 0) return SIZES[i];
  return SIZES[0];
}

async function uploadTo(server, size, route = 'upload') {
  const result = await call(route, 'POST', `${server.url}/_matrix/media/v3/upload?filename=soak.bin`, {
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': size },
    body: POOL.subarray(0, size),
    keepBody: true,
  });
  if (!expect2xx(route, result, `${size} bytes`)) return undefined;
  return JSON.parse(result.body.toString()).content_uri.slice('mxc://'.length);
}

// ---- the load --------------------------------------------------------------

async function main() {
  const [a, b] = await startServers();
  log(`servers up (${work}); seeding`);
  const seeds = [];
  for (const size of SIZES) seeds.push({ size, id: await uploadTo(a, size, 'seed upload') });
  const sharp = (await import('sharp')).default;
  const png = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 40, g: 120, b: 200 } } }).png().toBuffer();
  const pngResult = await call('seed upload', 'POST', `${a.url}/_matrix/media/v3/upload?filename=soak.png`, {
    headers: { 'Content-Type': 'image/png', 'Content-Length': png.length },
    body: png,
    keepBody: true,
  });
  if (!expect2xx('seed upload', pngResult, 'png') || seeds.some((seed) => seed.id === undefined)) throw new Error(`seeding failed: ${failures.join('; ')}`);
  const imageId = JSON.parse(pngResult.body.toString()).content_uri.slice('mxc://'.length);

  const operations = [
    [30, async () => {
      const seed = seeds[Math.floor(Math.random() * seeds.length)];
      expect2xx('download', await call('download', 'GET', `${a.url}/_matrix/client/v1/media/download/${seed.id}`), seed.id, seed.size);
    }],
    [20, async () => void (await uploadTo(a, pickSize()))],
    [15, async () => {
      const [width, method] = Math.random() < 0.5 ? [32, 'crop'] : [96, 'scale'];
      expect2xx('thumbnail', await call('thumbnail', 'GET', `${a.url}/_matrix/client/v1/media/thumbnail/${imageId}?width=${width}&height=${width}&method=${method}`), 'png');
    }],
    [15, async () => {
      const created = await call('async create', 'POST', `${a.url}/_matrix/media/v1/create`, { headers: { 'Content-Type': 'application/json' }, body: '{}', keepBody: true });
      if (!expect2xx('async create', created, 'create')) return;
      const id = JSON.parse(created.body.toString()).content_uri.slice('mxc://'.length);
      const size = pickSize();
      const put = await call('async upload', 'PUT', `${a.url}/_matrix/media/v3/upload/${id}?filename=soak.bin`, {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': size },
        body: POOL.subarray(0, size),
      });
      if (!expect2xx('async upload', put, `${size} bytes`)) return;
      expect2xx('download', await call('download', 'GET', `${a.url}/_matrix/client/v1/media/download/${id}`), id, size);
    }],
    [20, async () => {
      // A new media on A, fetched by B over federation (uncached), then once more from B's copy.
      const size = pickSize();
      const id = await uploadTo(a, size);
      if (id === undefined) return;
      expect2xx('federation fetch', await call('federation fetch', 'GET', `${b.url}/_matrix/client/v1/media/download/${id}`), id, size);
      expect2xx('cached remote download', await call('cached remote download', 'GET', `${b.url}/_matrix/client/v1/media/download/${id}`), id, size);
    }],
  ];
  const totalWeight = operations.reduce((sum, [weight]) => sum + weight, 0);
  const pick = () => {
    let roll = Math.random() * totalWeight;
    for (const [weight, operation] of operations) if ((roll -= weight) < 0) return operation;
    return operations[0][1];
  };

  // The clock of the soak starts with the load, after start-up and seeding.
  startedAt = Date.now();
  takeSample('start');
  const endAt = startedAt + durationMs;
  let warmedUp = false;
  const sampler = setInterval(() => takeSample('periodic'), sampleMs);
  const warmupTimer = setTimeout(() => {
    warmedUp = true;
    takeSample('after warm-up');
    log('warm-up over');
  }, warmupMs);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < endAt) await pick()();
    }),
  );
  clearInterval(sampler);
  clearTimeout(warmupTimer);
  if (!warmedUp) throw new Error('the load ended before the warm-up did');
  takeSample('end');
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function report() {
  const elapsedSec = (Date.now() - startedAt) / 1000;
  const routes = [...stats].map(([route, entry]) => {
    const sorted = [...entry.latencies].sort((x, y) => x - y);
    return {
      route,
      requests: sorted.length,
      perSec: sorted.length / elapsedSec,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      statuses: entry.statuses,
    };
  });
  const afterWarmup = samples.find((sample) => sample.label === 'after warm-up');
  const end = samples.find((sample) => sample.label === 'end');
  const checks = [];
  if (afterWarmup && end) {
    for (const proc of end.processes) {
      const base = afterWarmup.processes.find((each) => each.process === proc.process && each.pid === proc.pid);
      if (!base) continue; // a replaced worker has no baseline
      const rssLimit = base.rssMiB * (1 + rssTolerance);
      checks.push({ process: proc.process, check: 'rss', baseline: base.rssMiB, end: proc.rssMiB, limit: rssLimit, ok: proc.rssMiB <= rssLimit });
      const maxFds = Math.max(
        ...samples.filter((sample) => sample.atSec >= afterWarmup.atSec && sample !== end).flatMap((sample) => sample.processes.filter((each) => each.pid === proc.pid).map((each) => each.fds)),
      );
      const fdLimit = maxFds + fdSlack;
      checks.push({ process: proc.process, check: 'fds', baseline: base.fds, end: proc.fds, limit: fdLimit, ok: proc.fds <= fdLimit });
    }
  } else failures.push('no samples after warm-up and at the end');
  const ok = failures.length === 0 && checks.every((check) => check.ok);
  return { ok, elapsedSec, options: { durationMs, warmupMs, sampleMs, concurrency, maxSize, rssTolerance, fdSlack, workers }, routes, samples, checks, failures: failures.slice(0, 50), failureCount: failures.length };
}

function print(result) {
  const out = [];
  out.push(`soak: ${result.elapsedSec.toFixed(0)} s, ${result.options.concurrency} loops, sizes up to ${(maxSize / 2 ** 20).toFixed(0)} MiB`);
  out.push('route                      requests   req/s    p50 ms    p99 ms   statuses');
  for (const r of result.routes) {
    out.push(`${r.route.padEnd(26)} ${String(r.requests).padStart(8)} ${r.perSec.toFixed(2).padStart(7)} ${r.p50Ms.toFixed(1).padStart(9)} ${r.p99Ms.toFixed(1).padStart(9)}   ${JSON.stringify(r.statuses)}`);
  }
  out.push('samples (RSS MiB / open fds per process):');
  for (const sample of result.samples) {
    out.push(`  ${String(sample.atSec).padStart(5)} s ${sample.label.padEnd(14)} ${sample.processes.map((p) => `${p.process} ${p.rssMiB.toFixed(0)}/${p.fds}`).join('  ')}`);
  }
  for (const check of result.checks) {
    out.push(`check ${check.process} ${check.check}: after warm-up ${check.baseline.toFixed(0)}, end ${check.end.toFixed(0)}, limit ${check.limit.toFixed(0)}  ${check.ok ? 'OK' : 'FAIL'}`);
  }
  if (result.failureCount > 0) out.push(`${result.failureCount} failed requests, first: ${result.failures.slice(0, 5).join('; ')}`);
  out.push(result.ok ? 'soak: PASS' : 'soak: FAIL');
  process.stdout.write(`${out.join('\n')}\n`);
}

let startedAt = Date.now();
let exitCode = 1;
try {
  await main();
  const result = report();
  print(result);
  if (options.json) writeFileSync(options.json, JSON.stringify(result, null, 2));
  exitCode = result.ok ? 0 : 1;
} catch (error) {
  process.stderr.write(`soak: ${error instanceof Error ? error.stack : String(error)}\n`);
} finally {
  for (const server of servers) await stopChild(server.child, 20_000);
  rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
