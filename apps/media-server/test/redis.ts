import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

/** The Redis the cluster tests share (started here when nothing answers there). */
export const REDIS_PORT = 6379;
export const REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`;

const REDIS_SERVER = '/usr/bin/redis-server';

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * `redis-server` from Debian's packages, installed when absent. An install
 * that is impossible fails the suite with a message saying so: never a silent skip.
 */
export function ensureRedisBinary(): string {
  if (existsSync(REDIS_SERVER)) return REDIS_SERVER;
  try {
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '--no-install-recommends', 'redis-server'], {
      stdio: 'ignore',
      timeout: 900_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (err) {
    throw new Error(`redis-server is not installed and "apt-get install redis-server" failed (${(err as Error).message})`);
  }
  if (!existsSync(REDIS_SERVER)) throw new Error('apt-get installed redis-server but no redis-server binary was found');
  return REDIS_SERVER;
}

/** Waits until `port` accepts connections (or fails after `timeoutMs`). */
export async function waitAccepting(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await accepting(port))) {
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on 127.0.0.1:${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Makes sure the shared Redis on 127.0.0.1:6379 runs: started as a daemon (no persistence) when not. */
export async function ensureSharedRedis(): Promise<void> {
  if (await accepting(REDIS_PORT)) return;
  const binary = ensureRedisBinary();
  execFileSync(binary, ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  await waitAccepting(REDIS_PORT);
}

/** A private redis-server on `port`, a child of this process (stop it with `kill`). */
export async function startPrivateRedis(port: number): Promise<ChildProcess> {
  const child = spawn(ensureRedisBinary(), ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  await waitAccepting(port);
  return child;
}
