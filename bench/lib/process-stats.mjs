/**
 * Reads another process's resources: resident memory from /proc/<pid>/status
 * on Linux (VmRSS and the high-water mark VmHWM), `ps -o rss=` elsewhere (no
 * high-water mark); CPU time from /proc/<pid>/stat (null elsewhere).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/**
 * User + system CPU seconds of each thread of a process (Linux), by thread id:
 * `Map<tid, { name, seconds, user, system }>`, the name from /proc/<pid>/task/<tid>/comm
 * (`node` for the main thread and workers, `libuv-worker` for the thread pool,
 * `V8 DefaultWorke` for the garbage collector's helpers). Empty elsewhere.
 */
export function readThreadCpuSeconds(pid) {
  const threads = new Map();
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const [user, system] = [Number(fields[11]) / clockTicksPerSecond(), Number(fields[12]) / clockTicksPerSecond()];
      threads.set(tid, { name: tid === String(pid) ? 'main' : name, seconds: user + system, user, system });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return threads;
}
