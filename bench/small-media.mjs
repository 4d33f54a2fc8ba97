#!/usr/bin/env node
/**
 * Small media (issue 19, issue 17 item 4): 1 KiB answers in requests/s and
 * server CPU µs per request, against the ceiling of a bare `node:http`
 * server answering 1 KiB from memory (lib/memory-server.mjs), all in one run:
 *
 *   - ceiling: GET with a bearer token check, the body from memory;
 *   - hsmedia at `log_level: info` (the default) and at `warn`, each for
 *     `download` (authenticated client download of a cached 1 KiB file),
 *     `thumbnail` (a stored 32x32 thumbnail) and `federation` (the federation
 *     download of the same 1 KiB file, X-Matrix signed by a second server
 *     whose key is fetched once and cached).
 *
 * Rounds are interleaved (ceiling, info, warn, ...), medians reported. The
 * cost of one Ed25519 verification (node:crypto, in this process) is measured
 * too: a federation download should cost at most a client download plus one.
 * With --profile, the hsmedia servers run under `node --cpu-prof` and their
 * self time in the measured windows is split by layer (lib/profile-layers.mjs)
 * in µs per request.
 *
 * Usage: node bench/small-media.mjs [--seconds 4] [--rounds 3] [--warmup 1] [--connections 32]
 *          [--cases download,thumbnail,federation] [--levels info,warn] [--profile] [--tool wrk|autocannon]
 *          [--before-cli OTHER/apps/media-server/dist/cli.js]   (also runs that build, as "before <level>")
 * Needs a build (`npm run build`).
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { parseSigningKeyFile, signXMatrixRequest } from '@hsmedia/signing';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { layerProfile } from './lib/profile-layers.mjs';
import { startReferenceServer, stopChild } from './lib/servers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '32' },
    cases: { type: 'string', default: 'download,thumbnail,federation' },
    levels: { type: 'string', default: 'info,warn' },
    profile: { type: 'boolean', default: false },
    tool: { type: 'string' },
    // Another build of apps/media-server/dist/cli.js (an earlier commit) run beside this one: before/after in one run.
    'before-cli': { type: 'string' },
  },
});
const seconds = Number(options.seconds);
const rounds = Number(options.rounds);
const warmup = Number(options.warmup);
const connections = Number(options.connections);
const cases = options.cases.split(',');
const levels = options.levels.split(',');
const tool = pickLoadTool(options.tool);
const SERVER_NAME = 'bench.localhost';
const ORIGIN_NAME = 'origin.bench.localhost';
const SIZE = 1024;
const log = (text) => process.stderr.write(`[small-media] ${text}\n`);

/** µs of one Ed25519 verification of an X-Matrix-sized canonical JSON object with node:crypto. */
function measureVerification() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const message = Buffer.from(
    JSON.stringify({ destination: SERVER_NAME, method: 'GET', origin: ORIGIN_NAME, uri: '/_matrix/federation/v1/media/download/AbCdEfGhIjKlMnOpQrStUvWx' }),
  );
  const signature = sign(null, message, privateKey);
  for (let i = 0; i < 500; i++) verify(null, message, publicKey, signature);
  const count = 5000;
  const started = process.cpuUsage();
  for (let i = 0; i < count; i++) if (!verify(null, message, publicKey, signature)) throw new Error('verification failed');
  const used = process.cpuUsage(started);
  return (used.user + used.system) / count;
}

function startCeiling(token, logFile, mode) {
  const child = spawn(process.execPath, [path.join(HERE, 'lib', 'memory-server.mjs'), token, String(SIZE), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.pipe(createWriteStream(logFile));
  return new Promise((resolve, reject) => {
    let output = '';
    child.once('exit', (code) => reject(new Error(`ceiling server exited with ${code}`)));
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening (\d+)/.exec(output);
      if (match) resolve({ url: `http://127.0.0.1:${match[1]}`, pid: child.pid, stop: () => stopChild(child) });
    });
  });
}

async function photo(width, height) {
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) & 255;
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-small-media-'));
const servers = [];
const started = Date.now();
const loadAtStart = loadavg()[0];
let exitCode = 0;
try {
  const token = randomBytes(24).toString('hex');
  const bearer = { Authorization: `Bearer ${token}` };
  const verifyUs = measureVerification();
  log(`one Ed25519 verification (node:crypto): ${verifyUs.toFixed(1)} µs CPU; load generator ${tool}; data in ${work}`);

  mkdirSync(path.join(work, 'origin'));
  const origin = await startReferenceServer({
    dataDir: path.join(work, 'origin'),
    token,
    userId: `@bench:${ORIGIN_NAME}`,
    serverName: ORIGIN_NAME,
    logFile: path.join(work, 'origin.log'),
  });
  servers.push(origin);
  const ceiling = await startCeiling(token, path.join(work, 'ceiling.log'), 'http');
  servers.push(ceiling);
  // Bare Koa answering the same bytes: what Koa itself adds to node:http (download case only).
  const bareKoa = await startCeiling(token, path.join(work, 'koa.log'), 'koa');
  servers.push(bareKoa);

  const [originKey] = parseSigningKeyFile(readFileSync(origin.signingKeyPath, 'utf8'));
  const image = await photo(640, 480);
  const targets = [
    { name: 'ceiling', pid: ceiling.pid, urls: Object.fromEntries(cases.map((c) => [c, { url: `${ceiling.url}/media`, headers: bearer }])) },
    { name: 'bare Koa', pid: bareKoa.pid, urls: { download: { url: `${bareKoa.url}/media`, headers: bearer } } },
  ];
  const builds = options['before-cli'] === undefined ? [[undefined, '']] : [[options['before-cli'], 'before '], [undefined, '']];
  for (const [cli, tag] of builds) for (const level of levels) {
    const name = `${tag}${level}`.replace(' ', '-');
    const dataDir = path.join(work, name);
    const profileDir = path.join(work, `prof-${name}`);
    mkdirSync(dataDir);
    mkdirSync(profileDir);
    const server = await startReferenceServer({
      dataDir,
      token,
      userId: `@bench:${SERVER_NAME}`,
      serverName: SERVER_NAME,
      logFile: path.join(work, `${name}.log`),
      logLevel: level,
      ...(cli === undefined ? {} : { cli }),
      nodeArgs: options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      extraConfig: { federation: { destinations: { [ORIGIN_NAME]: origin.url }, ip_range_allowlist: ['127.0.0.1/32'] } },
    });
    servers.push(server);
    const upload = async (bytes, name, contentType) => {
      const res = await fetch(`${server.url}/_matrix/media/v3/upload?filename=${name}`, {
        method: 'POST',
        headers: { ...bearer, 'Content-Type': contentType },
        body: bytes,
      });
      if (res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
      return (await res.json()).content_uri.slice(`mxc://${SERVER_NAME}/`.length);
    };
    const fileId = await upload(randomBytes(SIZE), 'small.bin', 'application/octet-stream');
    const imageId = await upload(image, 'photo.jpg', 'image/jpeg');
    const fedUri = `/_matrix/federation/v1/media/download/${fileId}`;
    const urls = {
      download: { url: `${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${fileId}`, headers: bearer },
      thumbnail: { url: `${server.url}/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${imageId}?width=32&height=32&method=crop`, headers: bearer },
      // X-Matrix signs method, URI, origin and destination (no time), so one header serves every request.
      federation: {
        url: `${server.url}${fedUri}`,
        headers: { Authorization: signXMatrixRequest({ method: 'GET', uri: fedUri, origin: ORIGIN_NAME, destination: SERVER_NAME }, originKey) },
      },
    };
    for (const c of cases) {
      const res = await fetch(urls[c].url, { headers: urls[c].headers });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200) throw new Error(`${name} ${c}: ${res.status} ${body}`);
      if (c === 'thumbnail') log(`thumbnail answer: ${body.length} bytes`);
    }
    targets.push({ name: `${tag}hsmedia ${level}`, pid: server.pid, server, profileDir, urls, windows: [] });
  }

  const results = new Map();
  for (const c of cases) {
    const measured = targets.filter((target) => target.urls[c] !== undefined);
    for (const target of measured) results.set(`${target.name} ${c}`, []);
    for (let round = 0; round < rounds; round++) {
      for (const target of measured) {
        const { url, headers } = target.urls[c];
        const from = Number(process.hrtime.bigint() / 1000n);
        const result = await measureGetLoad({ tool, url, headers, connections, durationSec: seconds, warmupSec: round === 0 ? warmup : 0, pid: target.pid });
        const to = Number(process.hrtime.bigint() / 1000n);
        target.windows?.push({ case: c, from, to, requests: result.requests });
        results.get(`${target.name} ${c}`).push({ rps: result.requestsPerSec, cpuUs: (result.cpuSeconds * 1e6) / result.requests });
        log(`${c} ${target.name}: ${result.requestsPerSec.toFixed(0)} req/s, ${((result.cpuSeconds * 1e6) / result.requests).toFixed(1)} µs CPU/req`);
      }
    }
  }

  const lines = [];
  lines.push(`1 KiB, ${connections} connections, ${rounds} × ${seconds} s rounds (medians), ${tool}, ${availableParallelism()} CPUs, load ${loadAtStart.toFixed(1)} → ${loadavg()[0].toFixed(1)}`);
  lines.push(`one Ed25519 verification (node:crypto): ${verifyUs.toFixed(1)} µs CPU`);
  lines.push('');
  lines.push('| case | server | req/s | × ceiling | CPU µs/req | CPU × ceiling |');
  lines.push('|---|---|---|---|---|---|');
  const summary = {};
  for (const c of cases) {
    const ceilingRows = results.get(`ceiling ${c}`);
    const ceilingRps = median(ceilingRows.map((r) => r.rps));
    const ceilingCpu = median(ceilingRows.map((r) => r.cpuUs));
    for (const target of targets) {
      const rows = results.get(`${target.name} ${c}`);
      if (rows === undefined) continue;
      const rps = median(rows.map((r) => r.rps));
      const cpu = median(rows.map((r) => r.cpuUs));
      summary[`${target.name} ${c}`] = { rps, cpu };
      if (target.name === 'ceiling' && c !== cases[0]) continue;
      lines.push(`| ${target.name === 'ceiling' ? 'any' : c} | ${target.name} | ${rps.toFixed(0)} | ${(rps / ceilingRps).toFixed(2)} | ${cpu.toFixed(1)} | ${(cpu / ceilingCpu).toFixed(2)} |`);
    }
  }
  lines.push('');
  for (const level of builds.flatMap(([, tag]) => levels.map((l) => `${tag}hsmedia ${l}`))) {
    const download = summary[`${level} download`];
    const thumbnail = summary[`${level} thumbnail`];
    const federation = summary[`${level} federation`];
    if (download && thumbnail) lines.push(`${level}: thumbnail / download req/s ${(thumbnail.rps / download.rps).toFixed(2)} (target ≥ 0.9)`);
    if (download && federation) {
      const extra = federation.cpu - download.cpu;
      lines.push(`${level}: federation − download CPU ${extra.toFixed(1)} µs/req vs one verification ${verifyUs.toFixed(1)} µs (target: ≤ verification)`);
    }
  }

  for (const server of servers) await server.stop();
  servers.length = 0;
  if (options.profile) {
    for (const target of targets.filter((candidate) => candidate.profileDir !== undefined)) {
      const [file] = readdirSync(target.profileDir);
      for (const c of cases) {
        const windows = target.windows.filter((w) => w.case === c);
        const requests = windows.reduce((sum, w) => sum + w.requests, 0);
        const totals = new Map();
        const other = new Map();
        let busy = 0;
        for (const w of windows) {
          const part = layerProfile(path.join(target.profileDir, file), w.from, w.to);
          busy += part.busyUs;
          for (const [k, v] of part.layers) totals.set(k, (totals.get(k) ?? 0) + v);
          for (const [k, v] of part.other) other.set(k, (other.get(k) ?? 0) + v);
        }
        lines.push('');
        lines.push(`profile, ${target.name}, ${c}: ${(busy / requests).toFixed(1)} µs sampled per request (self time by layer)`);
        lines.push('| layer | µs/req | share |');
        lines.push('|---|---|---|');
        for (const [k, v] of totals) if (v > 0) lines.push(`| ${k} | ${(v / requests).toFixed(1)} | ${((100 * v) / busy).toFixed(0)}% |`);
        const top = [...other].sort((a, b) => b[1] - a[1]).slice(0, 8);
        if (top.length > 0) lines.push(`other, top: ${top.map(([k, v]) => `${k} ${(v / requests).toFixed(2)}`).join('; ')}`);
      }
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
} catch (error) {
  log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitCode = 1;
} finally {
  for (const server of servers) await server.stop();
  if (!options.profile) rmSync(work, { recursive: true, force: true });
  else log(`profiles kept in ${work}`);
}
process.exit(exitCode);
