#!/usr/bin/env node
/**
 * Instructions per small request, counted by valgrind's callgrind: unlike
 * CPU time or requests/s, the count does not move when other work loads the
 * machine. Each server runs alone under `valgrind --tool=callgrind` with
 * instrumentation off; after a warm-up (JIT), instrumentation is switched on
 * (`callgrind_control -i on`) for exactly --requests requests of one case,
 * then off, and the dump's total is divided by the requests; --repeat rounds
 * of every case in turn, the median round reported. User-space
 * instructions only (the kernel's socket work is not counted).
 *
 * Servers: the bare node:http ceiling and bare Koa (lib/memory-server.mjs),
 * hsmedia at --level (default warn) for `download`, `thumbnail` and
 * `federation` (1 KiB, X-Matrix signed, key cached), and with --before-cli
 * another build of hsmedia (an earlier commit) the same way. Also one
 * Ed25519 verification, with node:crypto and with libsodium (sodium-native).
 *
 * Usage: node bench/small-media-instructions.mjs [--requests 400] [--warmup 400] [--repeat 3] [--level warn]
 *          [--cases download,thumbnail,federation] [--before-cli OTHER/apps/media-server/dist/cli.js] [--hsmedia-only]
 * Needs valgrind (apt-get install valgrind) and a build. Takes several minutes: the servers run ~50x slower.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { parseSigningKeyFile, signXMatrixRequest } from '@hsmedia/signing';
import { splitDump } from './lib/callgrind-split.mjs';
import { startReferenceServer, stopChild } from './lib/servers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AUTOCANNON = require.resolve('autocannon/autocannon.js');
const { values: options } = parseArgs({
  options: {
    requests: { type: 'string', default: '400' },
    warmup: { type: 'string', default: '400' },
    repeat: { type: 'string', default: '3' },
    level: { type: 'string', default: 'warn' },
    cases: { type: 'string', default: 'download,thumbnail,federation' },
    'before-cli': { type: 'string' },
    // Only the hsmedia builds: no verification count, no ceilings (ratios are then left out).
    'hsmedia-only': { type: 'boolean', default: false },
  },
});
const requests = Number(options.requests);
const warmup = Number(options.warmup);
const repeat = Number(options.repeat);
const cases = options.cases.split(',');
const SERVER_NAME = 'bench.localhost';
const ORIGIN_NAME = 'origin.bench.localhost';
const log = (text) => process.stderr.write(`[instructions] ${text}\n`);

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-instructions-'));
const callgrind = (name) => ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${path.join(work, `cg-${name}`)}`];

/** Instructions of the dumps callgrind wrote for `name` since `seen` (file names): total, and split (lib/callgrind-split.mjs). */
function newTotals(name, seen) {
  const sum = { total: 0, gc: 0, jit: 0, path: 0 };
  for (const file of readdirSync(work)) {
    if (!file.startsWith(`cg-${name}`) || seen.has(file)) continue;
    seen.add(file);
    if (!/^totals: (\d+)/m.test(readFileSync(path.join(work, file), 'utf8'))) continue;
    const split = splitDump(path.join(work, file));
    for (const key of Object.keys(sum)) sum[key] += split[key];
  }
  return sum;
}

function load(url, headers, count) {
  const args = [AUTOCANNON, '-c', '4', '-a', String(count), '-t', '120'];
  for (const [key, value] of Object.entries(headers)) args.push('-H', `${key}=${value}`);
  const output = execFileSync(process.execPath, [...args, '-j', url], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const result = JSON.parse(output.slice(output.indexOf('{')));
  // autocannon may cut the last requests in flight when the amount is reached (counted as errors): only
  // answered requests count, and a non-2xx answer fails the run.
  if (result.non2xx > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers`);
  return result['2xx'];
}

/** Every round's figure, by server and case, printed under the table. */
const roundsOf = {};
/** Every round's request path (total minus GC and JIT compilation), by server and case. */
const pathSamples = {};

/** The median of a list of numbers. */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Instructions per request of each case on a server running under callgrind (pid): every case warmed
 * up first, then --repeat rounds that take the cases in turn; the median round counts. One round moves
 * by tens of percent with what else the process happens to do then (a major GC, a JIT tier-up, a
 * background job): the median of several is the figure.
 */
function measure(name, pid, urls) {
  const seen = new Set();
  const samples = {};
  for (const c of Object.keys(urls)) {
    load(urls[c].url, urls[c].headers, warmup);
    samples[c] = [];
  }
  newTotals(name, seen);
  for (let round = 0; round < repeat; round++) {
    for (const c of Object.keys(urls)) {
      execFileSync('callgrind_control', ['-i', 'on', String(pid)], { stdio: 'ignore' });
      const done = load(urls[c].url, urls[c].headers, requests);
      execFileSync('callgrind_control', ['-i', 'off', String(pid)], { stdio: 'ignore' });
      execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
      const counted = newTotals(name, seen);
      samples[c].push(counted.total / done);
      (pathSamples[name] ??= {})[c] = [...(pathSamples[name]?.[c] ?? []), counted.path / done];
      const k = (value) => (value / done / 1000).toFixed(0);
      log(`${name} ${c} round ${round + 1}: ${k(counted.total)} k instructions per request (GC ${k(counted.gc)} k, JIT ${k(counted.jit)} k, path ${k(counted.path)} k)`);
    }
  }
  const perRequest = {};
  roundsOf[name] = samples;
  for (const c of Object.keys(urls)) {
    perRequest[c] = median(samples[c]);
    log(`${name} ${c}: median ${(perRequest[c] / 1000).toFixed(0)} k of ${samples[c].map((v) => (v / 1000).toFixed(0)).join(', ')}`);
  }
  return perRequest;
}

function startMemoryServer(name, token, mode) {
  const child = spawn(callgrind(name)[0], [...callgrind(name).slice(1), process.execPath, path.join(HERE, 'lib', 'memory-server.mjs'), token, '1024', mode], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening (\d+)/.exec(output);
      if (match) resolve({ url: `http://127.0.0.1:${match[1]}`, pid: child.pid, stop: () => stopChild(child, 30_000) });
    });
  });
}

/** Instructions of `count` Ed25519 verifications (node:crypto or libsodium), as the difference of two runs. */
function verificationInstructions(backend) {
  const script = (count) => `
    const c = require('node:crypto'); const s = ${backend === 'libsodium' ? "require('sodium-native')" : 'null'};
    const { publicKey, privateKey } = c.generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
    const m = Buffer.from('{"destination":"${SERVER_NAME}","method":"GET","origin":"${ORIGIN_NAME}","uri":"/_matrix/federation/v1/media/download/AbCdEfGhIjKlMnOpQrStUvWx"}');
    const sig = c.sign(null, m, privateKey);
    for (let i = 0; i < ${count}; i++) if (!(s ? s.crypto_sign_verify_detached(sig, m, raw) : c.verify(null, m, publicKey, sig))) throw new Error('bad');`;
  const run = (count) => {
    const out = path.join(work, `cg-verify-${backend}-${count}`);
    execFileSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, '-e', script(count)], {
      stdio: 'ignore',
      cwd: path.join(HERE, '..', 'packages', 'signing'),
    });
    return Number(/^totals: (\d+)/m.exec(readFileSync(out, 'utf8'))[1]);
  };
  return (run(1000) - run(0)) / 1000;
}

const servers = [];
let exitCode = 0;
try {
  const token = randomBytes(24).toString('hex');
  const bearer = { Authorization: `Bearer ${token}` };
  const results = {};
  const hsmediaOnly = options['hsmedia-only'];
  const verify = hsmediaOnly ? undefined : { 'node:crypto': verificationInstructions('node:crypto'), libsodium: verificationInstructions('libsodium') };
  if (verify) log(`one Ed25519 verification: node:crypto ${(verify['node:crypto'] / 1000).toFixed(0)} k, libsodium ${(verify.libsodium / 1000).toFixed(0)} k instructions`);

  for (const mode of hsmediaOnly ? [] : ['http', 'koa']) {
    const name = mode === 'http' ? 'ceiling' : 'bare Koa';
    const server = await startMemoryServer(mode, token, mode);
    servers.push(server);
    results[name] = measure(mode, server.pid, { download: { url: `${server.url}/media`, headers: bearer } });
    await server.stop();
  }

  mkdirSync(path.join(work, 'origin'));
  const origin = await startReferenceServer({ dataDir: path.join(work, 'origin'), token, userId: `@bench:${ORIGIN_NAME}`, serverName: ORIGIN_NAME, logFile: path.join(work, 'origin.log') });
  servers.push(origin);
  const [originKey] = parseSigningKeyFile(readFileSync(origin.signingKeyPath, 'utf8'));
  const pixels = Buffer.alloc(640 * 480 * 3, 90);
  const image = await sharp(pixels, { raw: { width: 640, height: 480, channels: 3 } }).jpeg().toBuffer();

  const builds = [...(options['before-cli'] === undefined ? [] : [['before', options['before-cli']]]), ['after', undefined]];
  for (const [tag, cli] of builds) {
    const name = `hsmedia-${tag}`;
    mkdirSync(path.join(work, name));
    log(`starting ${name} under valgrind (slow)`);
    const server = await startReferenceServer({
      dataDir: path.join(work, name),
      token,
      userId: `@bench:${SERVER_NAME}`,
      serverName: SERVER_NAME,
      logFile: path.join(work, `${name}.log`),
      logLevel: options.level,
      wrapper: callgrind(name),
      ...(cli === undefined ? {} : { cli }),
      extraConfig: { federation: { destinations: { [ORIGIN_NAME]: origin.url }, ip_range_allowlist: ['127.0.0.1/32'] } },
    });
    servers.push(server);
    const upload = async (bytes, contentType) => {
      const res = await fetch(`${server.url}/_matrix/media/v3/upload?filename=f`, { method: 'POST', headers: { ...bearer, 'Content-Type': contentType }, body: bytes });
      if (res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
      return (await res.json()).content_uri.slice(`mxc://${SERVER_NAME}/`.length);
    };
    const fileId = await upload(randomBytes(1024), 'application/octet-stream');
    const imageId = await upload(image, 'image/jpeg');
    const fedUri = `/_matrix/federation/v1/media/download/${fileId}`;
    const all = {
      download: { url: `${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${fileId}`, headers: bearer },
      thumbnail: { url: `${server.url}/_matrix/client/v1/media/thumbnail/${SERVER_NAME}/${imageId}?width=32&height=32&method=crop`, headers: bearer },
      federation: { url: `${server.url}${fedUri}`, headers: { Authorization: signXMatrixRequest({ method: 'GET', uri: fedUri, origin: ORIGIN_NAME, destination: SERVER_NAME }, originKey) } },
    };
    for (const c of cases) {
      const res = await fetch(all[c].url, { headers: all[c].headers });
      if (res.status !== 200) throw new Error(`${name} ${c}: ${res.status} ${await res.text()}`);
    }
    results[`hsmedia ${tag}`] = measure(name, server.pid, Object.fromEntries(cases.map((c) => [c, all[c]])));
    await server.stop();
  }

  const ceiling = results.ceiling?.download ?? Number.NaN;
  const lines = [`k instructions per 1 KiB request (callgrind, median of ${repeat} rounds of ${requests} requests after ${warmup} warm-up, log_level ${options.level}); × = ratio to the node:http ceiling`, ''];
  lines.push(`| server | ${cases.join(' | ')} |`, `|---|${cases.map(() => '---|').join('')}`);
  for (const [name, row] of Object.entries(results)) {
    lines.push(`| ${name} | ${cases.map((c) => (row[c] === undefined ? '' : `${(row[c] / 1000).toFixed(0)} k${Number.isNaN(ceiling) ? '' : ` (${(row[c] / ceiling).toFixed(1)}×)`}`)).join(' | ')} |`);
  }
  if (verify) lines.push('', `one Ed25519 verification: node:crypto ${(verify['node:crypto'] / 1000).toFixed(0)} k, libsodium ${(verify.libsodium / 1000).toFixed(0)} k`);
  for (const [name, row] of Object.entries(results)) {
    if (row.federation !== undefined && row.download !== undefined) {
      lines.push(`${name}: federation − download = ${((row.federation - row.download) / 1000).toFixed(0)} k instructions`);
    }
    if (row.thumbnail !== undefined && row.download !== undefined) lines.push(`${name}: thumbnail / download = ${(row.thumbnail / row.download).toFixed(2)}`);
  }
  lines.push('', 'request path: the last round without GC and JIT compilation (lib/callgrind-split.mjs), k instructions per request; the steadiest figure:', '');
  lines.push(`| server | ${cases.join(' | ')} |`, `|---|${cases.map(() => '---|').join('')}`);
  for (const [name, byCase] of Object.entries(pathSamples)) {
    lines.push(`| ${name} | ${cases.map((c) => (byCase[c] === undefined ? '' : `${(byCase[c].at(-1) / 1000).toFixed(0)} k`)).join(' | ')} |`);
  }
  for (const [name, byCase] of Object.entries(pathSamples)) {
    for (const [c, values] of Object.entries(byCase)) lines.push(`${name} ${c} path, every round: ${values.map((v) => (v / 1000).toFixed(0)).join(', ')}`);
  }
  lines.push('', 'every round (k instructions per request; the spread is GC and JIT work that lands in one round or another):');
  for (const [name, samples] of Object.entries(roundsOf)) {
    for (const [c, values] of Object.entries(samples)) lines.push(`${name} ${c}: ${values.map((v) => (v / 1000).toFixed(0)).join(', ')}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} catch (error) {
  log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitCode = 1;
} finally {
  for (const server of servers) await server.stop();
  rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
