#!/usr/bin/env node
/**
 * The remote relay's CPU per stage, in µs per 64 KiB: the stages of
 * `hsmedia`'s uncached remote download run in this process, cumulatively,
 * on the same federation answer, and this process's CPU is read around each:
 *
 *   receive      node:http GET of the origin's answer, body discarded (the floor)
 *   guarded      the same through net-guard's GuardedHttpClient body (SSRF guard, caps)
 *   decoded      + decodeMultipart (federation `multipart/mixed`, the media part's bytes)
 *   teed         + RemoteTee, its store side read by a loop (no store), no live reader
 *   put-only     decoded, then FsBlobStore.put without the tee
 *   stored       + RemoteTee and FsBlobStore.put (staging write, SHA-256 on the hash worker), no live reader
 *   stored-nosync  the same without the fsync before the rename
 *   stored-inline  the same, hashing inline on the main thread instead of the worker
 *   relayed      + the live side pushed to a client socket (what a first caller costs)
 *   relayed-web  the same with the live side read as a Web stream (the path before the push body)
 *
 * The origin (a plain node:http server writing the multipart answer from
 * memory) and the client (a plain GET that discards) are child processes,
 * so only the relaying work is counted here. Main-thread CPU (from
 * /proc/self/task) is shown beside the whole process's.
 *
 * Usage: npm run build && node bench/relay-stages.mjs [--mib 32] [--rounds 5] [--only stage,stage]
 *
 * Instruction counts instead of CPU time (load-free; user space only, so
 * the kernel's copies are not in them), every thread:
 *   valgrind --tool=callgrind --instr-atstart=no node bench/relay-stages.mjs --callgrind --mib 8 --rounds 2
 * (instrumentation is switched on around each measured stage with callgrind_control).
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { takePushBody } from '@hsmedia/media-core';
import { decodeMultipart, multipartFrame } from '@hsmedia/multipart';
import { createAddressPolicy, GuardedHttpClient } from '@hsmedia/net-guard';
import { FsBlobStore } from '@hsmedia/store-fs';
import { readThreadCpuSeconds } from './lib/process-stats.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { RemoteTee } = await import(path.join(HERE, '..', 'packages', 'media-core', 'dist', 'remote-tee.js'));
const MIB = 1024 * 1024;
const { values: options } = parseArgs({
  options: {
    mib: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    only: { type: 'string', default: '' },
    callgrind: { type: 'boolean', default: false },
  },
});
const size = Number(options.mib) * MIB;
const rounds = Number(options.rounds);
const log = (line) => process.stderr.write(`relay-stages: ${line}\n`);

/** A child process running `source` (ESM); resolves with the port it prints. */
function child(source, args = []) {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', source, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.stdout.once('data', (data) => resolve({ proc, port: Number(String(data).trim()) }));
    proc.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

const frame = multipartFrame({ content: { contentType: 'application/octet-stream' } });
const origin = await child(
  `import http from 'node:http'; import { randomBytes } from 'node:crypto';
   const head = Buffer.from(process.argv[1], 'base64'), tail = Buffer.from(process.argv[2], 'base64');
   const body = randomBytes(${size}); const total = head.length + body.length + tail.length;
   const server = http.createServer((req, res) => {
     res.writeHead(200, { 'Content-Type': ${JSON.stringify(frame.contentType)}, 'Content-Length': total });
     res.write(head);
     let at = 0;
     const more = () => { while (at < body.length) { const ok = res.write(body.subarray(at, at += 256 * 1024)); if (!ok) return void res.once('drain', more); } res.end(tail); };
     more();
   }).listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));`,
  [frame.head.toString('base64'), frame.tail.toString('base64')],
);
const originUrl = `http://127.0.0.1:${origin.port}/media`;

// The client: GETs the URL it is sent on stdin, discards the body, prints the byte count.
const clientProc = spawn(
  process.execPath,
  [
    '-e',
    `const http = require('node:http'); const rl = require('node:readline').createInterface({ input: process.stdin });
     rl.on('line', (url) => http.get(url, (res) => { let n = 0; res.on('data', (c) => { n += c.length; }); res.on('end', () => process.stdout.write(n + '\\n')); res.on('error', () => process.stdout.write('-1\\n')); }));`,
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const clientLines = [];
let clientWaiter = null;
clientProc.stdout.setEncoding('utf8').on('data', (data) => {
  for (const line of data.split('\n').filter(Boolean)) {
    clientLines.push(Number(line));
    clientWaiter?.();
  }
});
async function clientGet(url) {
  clientProc.stdin.write(`${url}\n`);
  while (clientLines.length === 0) await new Promise((resolve) => (clientWaiter = resolve));
  return clientLines.shift();
}

const guarded = new GuardedHttpClient({ policy: createAddressPolicy({ allow: ['127.0.0.1/32'] }), keepAlive: true, idleTimeoutMs: 30_000 });
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-relay-stages-'));
const store = new FsBlobStore({ root: work });
const storeNoSync = new FsBlobStore({ root: work, fsync: false });

async function drain(stream) {
  let n = 0;
  for await (const chunk of stream) n += chunk.byteLength;
  return n;
}
async function decodedBody() {
  const res = await guarded.request(originUrl, { maxBodyBytes: size + MIB });
  const decoded = await decodeMultipart(res.header('content-type'), res.body, { maxContentBytes: size });
  return decoded.stream;
}
function teeOf(body, onWindow = () => {}) {
  return new RemoteTee(body, { maxBytes: size, declaredLength: null, liveBufferBytes: MIB, storeBufferBytes: MIB, windowBytes: 64 * 1024, onWindow });
}

// The relaying server's live side: one response per request, fed by the tee of the current stage.
let liveBody = null;
let viaWeb = false;
const relayServer = http.createServer(async (req, res) => {
  const body = liveBody;
  res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
  const push = viaWeb ? undefined : takePushBody(body);
  if (push !== undefined) {
    const controls = push.attach({ write: (c) => !res.destroyed && res.write(c), end: () => res.end(), abort: () => res.destroy() });
    res.on('drain', () => controls.drained());
    res.once('close', () => !res.writableFinished && controls.gone(new Error('gone')));
    return;
  }
  for await (const chunk of body) if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  res.end();
});
await new Promise((resolve) => relayServer.listen(0, '127.0.0.1', resolve));
const relayUrl = `http://127.0.0.1:${relayServer.address().port}/`;

const stages = {
  receive: () =>
    new Promise((resolve, reject) => {
      http.get(originUrl, (res) => {
        let n = 0;
        res.on('data', (c) => (n += c.length));
        res.on('end', () => resolve(n - frame.head.length - frame.tail.length));
        res.on('error', reject);
      });
    }),
  guarded: async () => (await drain((await guarded.request(originUrl, { maxBodyBytes: size + MIB })).body)) - frame.head.length - frame.tail.length,
  decoded: async () => drain(await decodedBody()),
  teed: async () => {
    const tee = teeOf(await decodedBody());
    tee.detach(new Error('no live reader'));
    let n = 0;
    for await (const chunk of tee.source()) n += chunk.byteLength;
    return n;
  },
  'put-only': async () => {
    const stored = await store.put(await decodedBody(), { maxBytes: size, offloadHashing: true });
    await store.delete(stored.blobId);
    return stored.size;
  },
  stored: async () => {
    const tee = teeOf(await decodedBody());
    tee.detach(new Error('no live reader'));
    const stored = await store.put(tee.source(), { maxBytes: size, offloadHashing: true });
    await store.delete(stored.blobId);
    return stored.size;
  },
  'stored-nosync': async () => {
    const tee = teeOf(await decodedBody());
    tee.detach(new Error('no live reader'));
    const stored = await storeNoSync.put(tee.source(), { maxBytes: size, offloadHashing: true });
    await store.delete(stored.blobId);
    return stored.size;
  },
  'stored-inline': async () => {
    const tee = teeOf(await decodedBody());
    tee.detach(new Error('no live reader'));
    const stored = await storeNoSync.put(tee.source(), { maxBytes: size, offloadHashing: false });
    await store.delete(stored.blobId);
    return stored.size;
  },
  relayed: async () => relay(false),
  'relayed-web': async () => relay(true),
};
async function relay(web) {
  viaWeb = web;
  let goLive;
  const live = new Promise((resolve) => (goLive = resolve));
  const tee = teeOf(await decodedBody(), () => goLive());
  const storing = store.put(tee.source(), { maxBytes: size, offloadHashing: true });
  await live;
  liveBody = tee.live;
  const [received, stored] = await Promise.all([clientGet(relayUrl), storing]);
  tee.close();
  await store.delete(stored.blobId);
  if (received !== size) throw new Error(`client got ${received} of ${size}`);
  return stored.size;
}

if (options.only !== '') {
  for (const name of Object.keys(stages)) if (!options.only.split(',').includes(name)) delete stages[name];
}
const callgrindControl = async (...args) => (await promisify(execFile)('callgrind_control', [...args, String(process.pid)])).stdout;
/** Instructions per thread since the last zeroing (callgrind_control -e Ir): `{ main, all }`. */
async function instructions() {
  const counts = [...(await callgrindControl('-e', 'Ir')).matchAll(/^\s*Th (\d+)\s+([\d,]+)/gm)].map(([, thread, n]) => [Number(thread), Number(n.replaceAll(',', ''))]);
  return { main: counts.find(([thread]) => thread === 1)?.[1] ?? 0, all: counts.reduce((sum, [, n]) => sum + n, 0) };
}
const mainCpu = () => readThreadCpuSeconds(process.pid).get(String(process.pid))?.seconds ?? Number.NaN;
const results = {};
for (const name of Object.keys(stages)) await stages[name](); // warm-up: JIT, connections, the hash worker
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(stages)) {
    if (options.callgrind) {
      await callgrindControl('-z');
      await callgrindControl('-i', 'on');
      const bytes = await run();
      const counted = await instructions();
      await callgrindControl('-i', 'off');
      if (bytes !== size) throw new Error(`${name}: ${bytes} of ${size} bytes`);
      (results[name] ??= []).push({ process: counted.all, main: counted.main });
      continue;
    }
    const main = mainCpu();
    const cpu = process.cpuUsage();
    const bytes = await run();
    if (bytes !== size) throw new Error(`${name}: ${bytes} of ${size} bytes`);
    const used = process.cpuUsage(cpu);
    (results[name] ??= []).push({ process: (used.user + used.system) / 1e6, main: mainCpu() - main });
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const chunks = size / (64 * 1024);
const [unit, scale] = options.callgrind ? ['thousand instructions (user space)', 1e-3] : ['µs of CPU', 1e6];
process.stdout.write(`Relay stages, ${size / MIB} MiB, median of ${rounds} rounds, ${unit} per 64 KiB relayed (cumulative)\n`);
process.stdout.write(`${'stage'.padEnd(13)} ${'process'.padStart(8)} ${'main'.padStart(8)}\n`);
for (const [name, rows] of Object.entries(results)) {
  const p = (median(rows.map((r) => r.process)) * scale) / chunks;
  const m = (median(rows.map((r) => r.main)) * scale) / chunks;
  process.stdout.write(`${name.padEnd(13)} ${p.toFixed(1).padStart(8)} ${m.toFixed(1).padStart(8)}\n`);
}
guarded.close();
relayServer.close();
origin.proc.kill();
clientProc.kill();
rmSync(work, { recursive: true, force: true });
log(`load average ${(await import('node:os')).loadavg()[0].toFixed(1)}`);
