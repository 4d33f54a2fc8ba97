#!/usr/bin/env node
/**
 * Profiles one download case of the reference server against the plain pipe:
 * both servers run under `node --cpu-prof` (and `--trace-gc` with --gc), wrk
 * loads each for --seconds, and the top self-time functions of each profile
 * are printed with the server's CPU seconds per GiB.
 *
 * Usage: node bench/profile.mjs [--mib 32] [--connections 4] [--seconds 8] [--range] [--gc] [--top 25] [--upload MIB]
 * (--upload MIB profiles one upload of MIB to each server instead of downloads.)
 * Needs wrk and a build. Profiles are kept in the printed directory.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readCpuSeconds } from './lib/process-stats.mjs';
import { startBaselineServer, startReferenceServer } from './lib/servers.mjs';
import { uploadBuffer, uploadGenerated } from './lib/upload.mjs';

const MIB = 1024 * 1024;
const { values: options } = parseArgs({
  options: {
    mib: { type: 'string', default: '32' },
    connections: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '8' },
    range: { type: 'boolean', default: false },
    gc: { type: 'boolean', default: false },
    top: { type: 'string', default: '25' },
    upload: { type: 'string', default: '0' },
  },
});

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-profile-'));
const filesDir = path.join(work, 'files');
mkdirSync(filesDir);
mkdirSync(path.join(work, 'up'));
mkdirSync(path.join(work, 'ref'));
const bytes = randomBytes(Number(options.mib) * MIB);
writeFileSync(path.join(filesDir, 'file.bin'), bytes);
const token = randomBytes(16).toString('hex');
const headers = { Authorization: `Bearer ${token}` };
if (options.range) headers.Range = `bytes=${8 * MIB}-${12 * MIB - 1}`;

const profileArgs = (name) => {
  const dir = path.join(work, `prof-${name}`);
  mkdirSync(dir);
  return [`--cpu-prof`, `--cpu-prof-dir=${dir}`, ...(options.gc ? ['--trace-gc'] : [])];
};
const reference = await startReferenceServer({
  dataDir: path.join(work, 'ref'),
  token,
  userId: '@bench:bench.localhost',
  serverName: 'bench.localhost',
  logFile: path.join(work, 'reference.log'),
  nodeArgs: profileArgs('reference'),
});
const baseline = await startBaselineServer({
  filesDir,
  uploadDir: path.join(work, 'up'),
  token,
  logFile: path.join(work, 'baseline.log'),
  nodeArgs: profileArgs('baseline'),
});
const { content_uri: uri } = await uploadBuffer({ url: `${reference.url}/_matrix/media/v3/upload?filename=f.bin`, headers: { Authorization: headers.Authorization }, bytes });
const [, server, id] = /^mxc:\/\/([^/]+)\/([^/]+)$/.exec(uri);

const results = {};
for (const [name, target, url] of [
  ['reference', reference, `${reference.url}/_matrix/client/v1/media/download/${server}/${id}`],
  ['baseline', baseline, `${baseline.url}/media/file.bin`],
]) {
  const before = readCpuSeconds(target.pid);
  // V8 profile timestamps are CLOCK_MONOTONIC microseconds, like hrtime: samples outside this window are dropped.
  const from = Number(process.hrtime.bigint() / 1000n);
  let gib;
  if (Number(options.upload) > 0) {
    const uploadUrl = name === 'reference' ? `${target.url}/_matrix/media/v3/upload?filename=u.bin` : `${target.url}/upload`;
    await uploadGenerated({ url: uploadUrl, headers: { Authorization: headers.Authorization }, totalBytes: Number(options.upload) * MIB });
    gib = Number(options.upload) / 1024;
  } else {
    const args = ['-t', '1', '-c', options.connections, '-d', `${options.seconds}s`];
    for (const [key, value] of Object.entries(headers)) args.push('-H', `${key}: ${value}`);
    const output = execFileSync('wrk', [...args, url], { encoding: 'utf8' });
    const read = /([\d.]+)([KMG]B) read/.exec(output);
    gib = Number(read[1]) * { KB: 1 / 1024 / 1024, MB: 1 / 1024, GB: 1 }[read[2]];
  }
  const to = Number(process.hrtime.bigint() / 1000n);
  const cpu = readCpuSeconds(target.pid) - before;
  const seconds = (to - from) / 1e6;
  results[name] = { from, to, gib, cpu, cpuPerGiB: cpu / gib, mibPerSec: (gib * 1024) / seconds };
}
await reference.stop();
await baseline.stop();

for (const name of ['reference', 'baseline']) {
  const r = results[name];
  process.stdout.write(`\n== ${name}: ${r.mibPerSec.toFixed(0)} MiB/s, ${r.cpuPerGiB.toFixed(3)} CPU s/GiB\n`);
  const dir = path.join(work, `prof-${name}`);
  for (const file of readdirSync(dir)) {
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
    const self = new Map();
    const dt = profile.timeDeltas;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    let total = 0;
    let time = profile.startTime;
    profile.samples.forEach((id, index) => {
      time += dt[index] ?? 0;
      if (time < r.from || time > r.to) return;
      const node = byId.get(id);
      if (node.callFrame.functionName === '(idle)') return;
      const { functionName, url, lineNumber } = node.callFrame;
      const key = `${functionName || '(anon)'} ${url.split('/').slice(-2).join('/')}:${lineNumber}`;
      self.set(key, (self.get(key) ?? 0) + (dt[index] ?? 0));
      total += dt[index] ?? 0;
    });
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(options.top));
    process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s busy in the load window\n`);
    for (const [key, us] of top) process.stdout.write(`  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}\n`);
  }
}
if (options.gc) {
  for (const name of ['reference', 'baseline']) {
    const log = readFileSync(path.join(work, `${name}.log`), 'utf8');
    const scavenges = (log.match(/Scavenge/g) ?? []).length;
    const marks = (log.match(/Mark-Compact|Mark-sweep/gi) ?? []).length;
    process.stdout.write(`${name}: ${scavenges} scavenges, ${marks} mark-compacts\n`);
  }
}
process.stdout.write(`\nprofiles in ${work}\n`);
