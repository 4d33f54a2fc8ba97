/**
 * Starts Debian's clamd (`apt-get install clamav-daemon`) for a benchmark, on
 * a temp directory with a one-signature database of its own (nothing is
 * downloaded), listening on a Unix socket. Waits until it answers PING.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';

function ping(socket) {
  return new Promise((resolve) => {
    const connection = createConnection({ path: socket });
    let reply = '';
    const done = (ok) => {
      connection.destroy();
      resolve(ok);
    };
    connection.on('error', () => done(false));
    connection.on('close', () => done(false));
    connection.on('data', (data) => {
      reply += data.toString('latin1');
      if (reply.includes('\0')) done(reply.startsWith('PONG'));
    });
    connection.on('connect', () => connection.write('zPING\0'));
  });
}

/** @returns {Promise<{ socket: string, pid: number, stop: () => Promise<void> }>} */
export async function startClamd(dir) {
  const binary = ['/usr/sbin/clamd', '/usr/bin/clamd'].find((candidate) => existsSync(candidate));
  if (binary === undefined) throw new Error('clamd is missing: apt-get install --no-install-recommends clamav-daemon');
  const db = path.join(dir, 'clamd-db');
  mkdirSync(db, { recursive: true });
  writeFileSync(path.join(db, 'bench.ndb'), `Hsmedia.Bench.Body-1:0:*:${Buffer.from('HSMEDIA-BENCH-VIRUS-5d1e').toString('hex')}\n`);
  const socket = path.join(dir, 'clamd.sock');
  const config = path.join(dir, 'clamd.conf');
  writeFileSync(
    config,
    [`Foreground yes`, `DatabaseDirectory ${db}`, `LocalSocket ${socket}`, `TemporaryDirectory ${dir}`, `LogFile ${path.join(dir, 'clamd.log')}`, 'StreamMaxLength 100M', ''].join('\n'),
  );
  const child = spawn(binary, ['-c', config], { stdio: 'ignore' });
  const deadline = Date.now() + 180_000;
  for (let delay = 50; !(await ping(socket)); delay = Math.min(delay * 2, 1000)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`clamd did not start; see ${path.join(dir, 'clamd.log')}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  return {
    socket,
    pid: child.pid,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}
