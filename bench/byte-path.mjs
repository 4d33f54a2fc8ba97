#!/usr/bin/env node
/**
 * Measures candidate representations of the download byte path
 * (lib/byte-path-variants.mjs) against the plain pipe, in one run, rounds
 * interleaved: throughput and CPU seconds per GiB of each server process.
 * What docs/byte-path.md's choice rests on.
 *
 * Usage: node bench/byte-path.mjs [--variants pipe,reused-256k-x3] [--mib 32] [--connections 1,4,32]
 *                                 [--seconds 4] [--rounds 3] [--range]
 * Needs wrk.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readCpuSeconds } from './lib/process-stats.mjs';
import { stopChild } from './lib/servers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MIB = 1024 * 1024;
const { values: options } = parseArgs({
  options: {
    variants: { type: 'string', default: 'pipe,pipe-256k,fresh-256k,reused-256k-x2,reused-256k-x3,reused-128k-x4,web-256k' },
    mib: { type: 'string', default: '32' },
    connections: { type: 'string', default: '1,4,32' },
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    range: { type: 'boolean', default: false },
  },
});
const variantNames = options.variants.split(',');
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-byte-path-'));
const file = path.join(work, 'file.bin');
writeFileSync(file, randomBytes(Number(options.mib) * MIB));

function start(variant) {
  const child = spawn(process.execPath, [path.join(HERE, 'lib', 'byte-path-variants.mjs'), variant, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let output = '';
    child.once('exit', (code) => reject(new Error(`${variant} exited with ${code}`)));
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening (\d+)/.exec(output);
      if (match) resolve({ variant, child, url: `http://127.0.0.1:${match[1]}/` });
    });
  });
}

const servers = [];
try {
  for (const name of variantNames) servers.push(await start(name));
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  for (const connections of options.connections.split(',')) {
    const rounds = new Map(servers.map((server) => [server.variant, []]));
    for (let round = 0; round < Number(options.rounds); round++) {
      for (const server of servers) {
        const args = ['-t', '1', '-c', connections, '-d', `${options.seconds}s`];
        if (options.range) args.push('-H', `Range: bytes=${8 * MIB}-${12 * MIB - 1}`);
        if (round === 0) execFileSync('wrk', [...args.slice(0, 4), '-d', '1s', ...args.slice(6), server.url]);
        const before = readCpuSeconds(server.child.pid);
        const output = execFileSync('wrk', [...args, server.url], { encoding: 'utf8' });
        const cpu = readCpuSeconds(server.child.pid) - before;
        const read = /([\d.]+)([KMG]B) read/.exec(output);
        const gib = Number(read[1]) * { KB: 1 / MIB, MB: 1 / 1024, GB: 1 }[read[2]];
        rounds.get(server.variant).push({ mibPerSec: (gib * 1024) / Number(options.seconds), cpuPerGiB: cpu / gib });
      }
    }
    const base = rounds.get(variantNames[0]);
    const baseRate = median(base.map((r) => r.mibPerSec));
    const baseCpu = median(base.map((r) => r.cpuPerGiB));
    process.stdout.write(`\n${options.mib} MiB${options.range ? ' (4 MiB range)' : ''}, ${connections} connections, median of ${options.rounds}\n`);
    for (const [variant, results] of rounds) {
      const rate = median(results.map((r) => r.mibPerSec));
      const cpu = median(results.map((r) => r.cpuPerGiB));
      process.stdout.write(
        `  ${variant.padEnd(16)} ${rate.toFixed(0).padStart(6)} MiB/s ${(rate / baseRate).toFixed(2)}x   ${cpu.toFixed(3)} CPU s/GiB ${(cpu / baseCpu).toFixed(2)}x\n`,
      );
    }
  }
} finally {
  await Promise.all(servers.map((server) => stopChild(server.child)));
  rmSync(work, { recursive: true, force: true });
}
