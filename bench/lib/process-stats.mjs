/**
 * Reads another process's resources: resident memory from /proc/<pid>/status
 * on Linux (VmRSS and the high-water mark VmHWM), `ps -o rss=` elsewhere (no
 * high-water mark); CPU time from /proc/<pid>/stat (null elsewhere).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** @returns {{ rssBytes: number, hwmBytes: number | null }} */
export function readMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM') };
  } catch {
    const rssKib = Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim());
    return { rssBytes: rssKib * 1024, hwmBytes: null };
  }
}

/**
 * Samples a process's RSS every `intervalMs` until stopped.
 * `stop()` returns the highest RSS seen and the final high-water mark.
 */
export function sampleMemory(pid, intervalMs = 20) {
  let peakRssBytes = readMemory(pid).rssBytes;
  const timer = setInterval(() => {
    try {
      peakRssBytes = Math.max(peakRssBytes, readMemory(pid).rssBytes);
    } catch {
      // The process may be gone; stop() reports what was seen.
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const last = readMemory(pid);
      return { peakRssBytes: Math.max(peakRssBytes, last.rssBytes), hwmBytes: last.hwmBytes };
    },
  };
}

let clockTicks;
/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, almost always 100). */
function clockTicksPerSecond() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * User + system CPU seconds a process has used, or null when /proc is not there.
 * Unlike throughput, CPU per request barely moves when other work shares the machine.
 */
export function readCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond();
  } catch {
    return null;
  }
}
