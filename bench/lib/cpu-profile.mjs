/**
 * Reads V8 CPU profiles (`node --cpu-prof`): self time per function inside
 * time windows. Profile timestamps are CLOCK_MONOTONIC microseconds, like
 * `process.hrtime`, so a bench can keep only the samples taken while its
 * load ran.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Self time per function of one profile, within `windows` (`[{ from, to }]`, µs of
 * `process.hrtime`), idle samples dropped. Returns the busy µs and `[key, µs]` sorted.
 */
export function selfTime(file, windows, by = 'function') {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  const dt = profile.timeDeltas;
  let busy = 0;
  let time = profile.startTime;
  profile.samples.forEach((id, index) => {
    time += dt[index] ?? 0;
    if (!windows.some((w) => time >= w.from && time <= w.to)) return;
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    if (functionName === '(idle)') return;
    const where = url.split('/').slice(-2).join('/');
    const key = by === 'file' ? where || functionName : `${functionName || '(anon)'} ${where}:${lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + (dt[index] ?? 0));
    busy += dt[index] ?? 0;
  });
  return { busyUs: busy, top: [...self.entries()].sort((a, b) => b[1] - a[1]) };
}

/** Prints the `top` functions (or files, `by` 'file') by self time of every profile in `dir`, within `windows`. */
export function printSelfTime(dir, windows, top = 25, by = 'function', write = (line) => process.stdout.write(`${line}\n`)) {
  for (const file of readdirSync(dir).sort()) {
    const { busyUs, top: entries } = selfTime(path.join(dir, file), windows, by);
    write(`${file}: ${(busyUs / 1e6).toFixed(3)} s busy in the load windows`);
    for (const [key, us] of entries.slice(0, top)) write(`  ${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(7)} ms  ${key}`);
  }
}
