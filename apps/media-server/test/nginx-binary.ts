import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * nginx from Debian's packages, installed when absent. An install that is
 * impossible fails the suite with a message saying so: never a silent skip.
 */
export function ensureNginx(): string {
  const find = (): string | undefined => ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));
  let nginx = find();
  if (nginx !== undefined) return nginx;
  try {
    execFileSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx-light'], {
      stdio: 'ignore',
      timeout: 300_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (err) {
    throw new Error(`nginx is not installed and "apt-get install nginx-light" failed (${(err as Error).message}); install nginx to run the reverse-proxy test`);
  }
  nginx = find();
  if (nginx === undefined) throw new Error('apt-get installed nginx-light but no nginx binary was found');
  return nginx;
}

/** A running nginx with a private prefix. */
export interface RunningNginx {
  readonly log: () => string;
  stop(): Promise<void>;
}

/**
 * Runs nginx in the foreground with `site` (what goes inside `http { }`) under `prefix`, after
 * `nginx -t`. Resolves once it runs; the caller waits for its ports.
 */
export async function runNginx(binary: string, prefix: string, site: string): Promise<RunningNginx> {
  await mkdir(join(prefix, 'logs'), { recursive: true });
  const conf = [
    'worker_processes 1;',
    `pid ${join(prefix, 'nginx.pid')};`,
    `error_log ${join(prefix, 'logs', 'error.log')} warn;`,
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${join(prefix, 'logs', 'access.log')};`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(prefix, `${kind}_temp`)};`),
    site,
    '}',
  ].join('\n');
  const confPath = join(prefix, 'nginx.conf');
  await writeFile(confPath, conf);
  execFileSync(binary, ['-t', '-p', prefix, '-c', confPath], { stdio: 'pipe' });
  const child: ChildProcess = spawn(binary, ['-p', prefix, '-c', confPath, '-g', 'daemon off; master_process on;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  return {
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGQUIT');
      await exited;
    },
  };
}
