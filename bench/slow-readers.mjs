#!/usr/bin/env node
/**
 * Bounded memory under slow readers (issue 22, point 2): N clients download
 * the same large file from the reference server at a capped rate each. The
 * server's RSS growth must stay under --max-growth-mib (a few read buffers
 * per client, not the file), and once the clients disconnect its open file
 * descriptors must come back to where they were.
 *
 * Usage: node bench/slow-readers.mjs [--clients 64] [--mib 256] [--rate-mib 1] [--seconds 15] [--max-growth-mib 64]
 * Needs a build. Exits 1 when a bound is missed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readMemory, sampleMemory } from './lib/process-stats.mjs';
import { startReferenceServer } from './lib/servers.mjs';
import { uploadGenerated } from './lib/upload.mjs';

const MIB = 1024 * 1024;
const { values: options } = parseArgs({
  options: {
    clients: { type: 'string', default: '64' },
    mib: { type: 'string', default: '256' },
    'rate-mib': { type: 'string', default: '1' },
    seconds: { type: 'string', default: '15' },
    'max-growth-mib': { type: 'string', default: '64' },
  },
});
const clients = Number(options.clients);
const ratePerSec = Number(options['rate-mib']) * MIB;

const openFds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const log = (message) => process.stderr.write(`slow-readers: ${message}\n`);

/** A GET that reads at most `ratePerSec` bytes a second: the socket stays paused in between. */
function slowDownload(url, headers) {
  let received = 0;
  let status = 0;
  const started = Date.now();
  const req = request(url, { headers });
  const done = new Promise((resolve) => {
    req.once('response', (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (chunk) => {
        received += chunk.length;
        const due = (received / ratePerSec) * 1000 - (Date.now() - started);
        if (due > 0) {
          res.pause();
          setTimeout(() => res.resume(), due).unref();
        }
      });
      res.once('close', resolve);
    });
    req.once('error', resolve);
  });
  req.end();
  return { received: () => received, status: () => status, stop: () => req.destroy(), done };
}

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-slow-readers-'));
const token = randomBytes(16).toString('hex');
const headers = { Authorization: `Bearer ${token}` };
const server = await startReferenceServer({
  dataDir: work,
  token,
  userId: '@bench:bench.localhost',
  serverName: 'bench.localhost',
  logFile: path.join(work, 'reference.log'),
  maxUploadSize: '2G',
});
let failed = false;
try {
  const upload = await uploadGenerated({ url: `${server.url}/_matrix/media/v3/upload?filename=big.bin`, headers, totalBytes: Number(options.mib) * MIB });
  const [, serverName, mediaId] = /^mxc:\/\/([^/]+)\/([^/"]+)/.exec(JSON.parse(upload.body).content_uri);
  const url = `${server.url}/_matrix/client/v1/media/download/${serverName}/${mediaId}`;
  // One full-speed download first, so the JIT and caches are warm before the baseline is read.
  await new Promise((resolve, reject) => {
    request(url, { headers }, (res) => res.resume().once('end', resolve)).once('error', reject).end();
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = readMemory(server.pid);
  const fdsBefore = openFds(server.pid);
  const sampler = sampleMemory(server.pid, 100);
  log(`${clients} clients × ${options['rate-mib']} MiB/s on a ${options.mib} MiB file for ${options.seconds} s (RSS before ${(before.rssBytes / MIB).toFixed(1)} MiB, ${fdsBefore} fds)`);
  const downloads = Array.from({ length: clients }, () => slowDownload(url, headers));
  await new Promise((resolve) => setTimeout(resolve, Number(options.seconds) * 1000));
  const fdsDuring = openFds(server.pid);
  const memory = sampler.stop();
  const received = downloads.reduce((sum, download) => sum + download.received(), 0);
  const statuses = new Set(downloads.map((download) => download.status()));
  for (const download of downloads) download.stop();
  await Promise.all(downloads.map((download) => download.done));
  // The server notices each disconnect on its own schedule: wait (bounded) for the fds to come back.
  let fdsAfter = openFds(server.pid);
  for (let tries = 0; tries < 100 && fdsAfter > fdsBefore; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    fdsAfter = openFds(server.pid);
  }
  const growthMiB = (memory.peakRssBytes - before.rssBytes) / MIB;
  const maxGrowth = Number(options['max-growth-mib']);
  process.stdout.write(
    `clients ${clients}, statuses ${[...statuses].join(',')}, read ${(received / MIB).toFixed(0)} MiB in all (${(received / MIB / clients / Number(options.seconds)).toFixed(2)} MiB/s each)\n` +
      `peak RSS growth ${growthMiB.toFixed(1)} MiB (bound ${maxGrowth} MiB: ${(growthMiB * 1024 / clients).toFixed(0)} KiB per client)\n` +
      `fds: ${fdsBefore} before, ${fdsDuring} during, ${fdsAfter} after disconnect\n`,
  );
  if (!(growthMiB < maxGrowth) || fdsAfter > fdsBefore || !statuses.has(200)) failed = true;
} finally {
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(failed ? 'MISSED\n' : 'ok\n');
process.exit(failed ? 1 : 0);
