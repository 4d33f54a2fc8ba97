/**
 * Drives GET load with a real load generator in its own process: `wrk` when
 * it is on PATH, else autocannon (a root devDependency).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { readCpuSeconds } from './process-stats.mjs';

const require = createRequire(import.meta.url);

/** `wrk` if it is on PATH, else `autocannon`. */
export function pickLoadTool(preferred) {
  if (preferred === 'wrk' || preferred === 'autocannon') return preferred;
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return 'wrk';
  } catch (error) {
    // wrk --version exits 1 after printing its version; only a missing binary means "no wrk".
    return error && error.code === 'ENOENT' ? 'autocannon' : 'wrk';
  }
}

function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} exited with ${code}: ${stderr || stdout}`));
    });
  });
}

const BINARY_UNITS = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** wrk prints sizes with 1024-based units: `150.01MB`. */
function parseWrkBytes(text) {
  const match = /^([\d.]+)([KMGT]?B)$/.exec(text);
  if (!match) throw new Error(`cannot parse wrk size ${text}`);
  return Number(match[1]) * BINARY_UNITS[match[2]];
}

function parseWrkSeconds(text) {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!match) throw new Error(`cannot parse wrk duration ${text}`);
  return Number(match[1]) * { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[match[2]];
}

async function runWrk({ url, headers, connections, durationSec }) {
  // Leave the other cores to the server under test.
  const threads = Math.max(1, Math.min(connections, Math.floor(availableParallelism() / 2)));
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${durationSec}s`, '--timeout', '30s'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  const output = await run('wrk', [...args, url]);
  const totals = /(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read/.exec(output);
  if (!totals) throw new Error(`unexpected wrk output:\n${output}`);
  const seconds = parseWrkSeconds(totals[2]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const errors = socket ? socket.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0;
  return {
    requests: Number(totals[1]),
    seconds,
    requestsPerSec: Number(totals[1]) / seconds,
    bytesPerSec: parseWrkBytes(totals[3]) / seconds,
    non2xx,
    errors,
  };
}

async function runAutocannon({ url, headers, connections, durationSec }) {
  const cli = require.resolve('autocannon/autocannon.js');
  const args = [cli, '-c', String(connections), '-d', String(durationSec), '-j', '-n', '-t', '30'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}=${value}`);
  const output = await run(process.execPath, [...args, url]);
  const result = JSON.parse(output.slice(output.indexOf('{')));
  const seconds = result.duration;
  return {
    requests: result.requests.total,
    seconds,
    requestsPerSec: result.requests.total / seconds,
    bytesPerSec: result.throughput.total / seconds,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/**
 * Runs `warmupSec` of load (discarded), then `durationSec` measured. With
 * `pid`, also reports the CPU seconds that process used during the measured part.
 * @returns {Promise<{ requests: number, seconds: number, requestsPerSec: number, bytesPerSec: number,
 *   non2xx: number, errors: number, cpuSeconds: number | null }>}
 */
export async function measureGetLoad({ tool, url, headers, connections, durationSec, warmupSec, pid }) {
  const runOnce = tool === 'wrk' ? runWrk : runAutocannon;
  if (warmupSec > 0) await runOnce({ url, headers, connections, durationSec: warmupSec });
  const cpuBefore = pid === undefined ? null : readCpuSeconds(pid);
  const result = await runOnce({ url, headers, connections, durationSec });
  const cpuAfter = pid === undefined ? null : readCpuSeconds(pid);
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${tool} against ${url}: ${result.non2xx} non-2xx responses and ${result.errors} socket errors`);
  }
  return { ...result, cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore };
}
