/**
 * Starts the servers under test as child processes (so their memory can be
 * read from /proc and they do not share the load generator's event loop):
 * the reference server (with its workers), the `node:http` baseline, a Ceph
 * RADOS Gateway (scripts/ceph/start-rgw.sh) and nginx. Every bench starts
 * them from here, so a start-up fix is made once.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { readCpuSeconds } from './process-stats.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The built CLI of the reference server. */
export const REFERENCE_CLI = path.join(REPO_ROOT, 'apps', 'media-server', 'dist', 'cli.js');

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves once `url` answers any HTTP response; rejects after `timeoutMs` or when the child exits. */
async function waitForHttp(url, child, logFile, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  let exited = null;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  while (Date.now() < deadline) {
    if (exited) {
      throw new Error(`server exited (code ${exited.code}, signal ${exited.signal}) before listening; see ${logFile}`);
    }
    const answered = await new Promise((resolve) => {
      const req = request(url, { method: 'GET', timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (answered) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server did not answer on ${url} within ${timeoutMs} ms; see ${logFile}`);
}

/** Stops a child with SIGTERM (SIGKILL after `graceMs`) and waits for it. */
export function stopChild(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    // Never wait forever, even if the exit event is lost.
    const giveUp = setTimeout(resolve, graceMs + 2000);
    child.once('exit', () => {
      clearTimeout(kill);
      clearTimeout(giveUp);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The pids of a process and its children (a cluster's workers; nginx's workers). */
export function processTree(pid) {
  try {
    return [pid, ...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)];
  } catch {
    return [pid];
  }
}

/** CPU seconds used so far by all of `pids`. */
export const treeCpuSeconds = (pids) => pids.reduce((sum, pid) => sum + (readCpuSeconds(pid) ?? 0), 0);

/**
 * With `workers` > 1 the port answers once the first worker listens: waits
 * until every worker runs, then until start-up work (module loading,
 * migrations) is over, i.e. the processes sit idle for half a second.
 * Workers log nothing at `warn` once ready, so idleness is the signal.
 * @returns {number[]} the supervisor's pid and its workers'
 */
async function waitForWorkers(pid, workers, name) {
  for (let attempt = 0; processTree(pid).length < 1 + workers; attempt++) {
    if (attempt > 600) throw new Error(`${name}: workers did not start`);
    await sleep(100);
  }
  const pids = processTree(pid);
  for (let attempt = 0, before = treeCpuSeconds(pids); attempt < 120; attempt++) {
    await sleep(500);
    const now = treeCpuSeconds(pids);
    if (now - before < 0.05) break;
    before = now;
  }
  return pids;
}

/**
 * Starts `apps/media-server/dist/cli.js start` on 127.0.0.1 with SQLite and
 * files under `dataDir` and a static token table; `extraConfig` adds or
 * replaces top-level keys (`media_store`, `database`, `workers`, …). `cli`
 * runs another build (a checkout of an earlier commit, for before/after in
 * one run); `wrapper` runs node under another program (valgrind) with the
 * same process id. With `workers` > 1 in `extraConfig`, resolves once every
 * worker runs and start-up has settled; `pids` lists the supervisor and its workers.
 * @returns {Promise<{ url: string, pid: number, pids: number[], serverName: string, signingKeyPath: string, stop: () => Promise<void> }>}
 */
export async function startReferenceServer({ dataDir, token, userId, serverName, logFile, maxUploadSize = '2G', nodeArgs = [], logLevel = 'warn', extraConfig = {}, cli = REFERENCE_CLI, wrapper = [] }) {
  if (!existsSync(cli)) {
    throw new Error(`${path.relative(process.cwd(), cli)} is missing: run \`npm run build\` first (npm run bench does)`);
  }
  const port = await freePort();
  const configFile = path.join(dataDir, 'config.yaml');
  // JSON is valid YAML: no quoting rules to get wrong for paths or tokens.
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        server_name: serverName,
        listen: { host: '127.0.0.1', port },
        database: { sqlite: { path: path.join(dataDir, 'media.db') } },
        media_store: { filesystem: { path: path.join(dataDir, 'media') } },
        signing_key_path: path.join(dataDir, 'signing.key'),
        max_upload_size: maxUploadSize,
        auth: { tokens: { [token]: userId } },
        // Per-request log lines at `info` would measure stdout, not the server.
        log_level: logLevel,
        // One process, like the single-process baseline; bench/workers.mjs measures more.
        workers: 1,
        ...extraConfig,
      },
      null,
      2,
    ),
  );
  const log = createWriteStream(logFile);
  const [command, ...prefix] = [...wrapper, process.execPath];
  const child = spawn(command, [...prefix, ...nodeArgs, cli, 'start', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // The AWS SDK warns about Node 20 on every start: noise in the server's log.
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  const workers = Number(extraConfig.workers ?? 1);
  let pids = [child.pid];
  try {
    await waitForHttp(`${url}/_matrix/client/versions`, child, logFile, wrapper.length > 0 ? 600_000 : undefined);
    if (workers > 1) pids = await waitForWorkers(child.pid, workers, logFile);
  } catch (error) {
    await stopChild(child, 15_000);
    throw error;
  }
  return { url, pid: child.pid, pids, serverName, signingKeyPath: path.join(dataDir, 'signing.key'), stop: () => stopChild(child, 15_000) };
}

/**
 * Starts a throwaway Ceph RADOS Gateway (scripts/ceph/start-rgw.sh) under
 * `dir`, holding up to `memstoreBytes` (its OSD keeps objects in memory, and
 * frees deleted ones only at garbage collection, hours later). `client` is
 * an S3 client on it; `mediaStore(bucket, prefix)` is the reference
 * server's `media_store` section for a prefix of a bucket.
 */
export async function startRgw({ dir, memstoreBytes = 3 * 1024 ** 3 }) {
  // Loaded here only: the SDK is a large import for the benches without S3.
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
  const envText = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'ceph', 'start-rgw.sh'), dir], {
    encoding: 'utf8',
    env: { ...process.env, RGW_MEMSTORE_BYTES: String(memstoreBytes) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const env = Object.fromEntries(envText.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const client = new S3Client({
    endpoint: env.RGW_ENDPOINT,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.RGW_ACCESS_KEY, secretAccessKey: env.RGW_SECRET_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint: env.RGW_ENDPOINT,
    /** radosgw's process id (its CPU is part of every S3 figure). */
    pid: Number(readFileSync(path.join(dir, 'run', 'client.rgw.a.pid'), 'utf8')),
    client,
    createBucket: (bucket) => client.send(new CreateBucketCommand({ Bucket: bucket })),
    mediaStore: (bucket, prefix, extra = {}) => ({
      s3: { endpoint: env.RGW_ENDPOINT, bucket, prefix, force_path_style: true, access_key_id: env.RGW_ACCESS_KEY, secret_access_key: env.RGW_SECRET_KEY, ...extra },
    }),
    /** Stops the daemons; the directory stays (the caller's temp directory goes with it). */
    stop: () => {
      client.destroy();
      try {
        execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'ceph', 'stop-rgw.sh'), dir, '--keep'], { stdio: 'inherit' });
      } catch {
        // Best effort: the temp directory goes anyway.
      }
    },
  };
}

/** nginx's binary (Debian's nginx or nginx-light), or undefined. */
export const NGINX_BINARY = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((candidate) => existsSync(candidate));

/**
 * Starts nginx in the foreground with one worker, its files under `prefix`,
 * serving the `server { … }` blocks of `site`; resolves once `probeUrl`
 * answers. `workerPids()` lists its workers (their CPU is nginx's share).
 */
export async function startNginx({ prefix, site, probeUrl }) {
  if (NGINX_BINARY === undefined) throw new Error('nginx is not installed (apt-get install nginx-light)');
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  const conf = [
    'worker_processes 1;',
    `pid ${path.join(prefix, 'nginx.pid')};`,
    `error_log ${path.join(prefix, 'logs', 'error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    // No access log: it would be measured, not the delivery.
    '  access_log off;',
    '  sendfile on;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${path.join(prefix, `${kind}_temp`)};`),
    site,
    '}',
  ].join('\n');
  const confPath = path.join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  execFileSync(NGINX_BINARY, ['-t', '-q', '-p', prefix, '-c', confPath]);
  const child = spawn(NGINX_BINARY, ['-p', prefix, '-c', confPath, '-g', 'daemon off; master_process on;'], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGQUIT'); // graceful: workers finish their requests
    await exited;
  };
  for (let attempt = 0; ; attempt++) {
    if (await fetch(probeUrl).then((response) => response.arrayBuffer(), () => null)) break;
    if (attempt > 200 || child.exitCode !== null) {
      await stop();
      throw new Error(`nginx did not start; see ${path.join(prefix, 'logs', 'error.log')}`);
    }
    await sleep(50);
  }
  return { pid: child.pid, workerPids: () => processTree(child.pid).slice(1), stop };
}

/**
 * Starts the `node:http` baseline (./baseline-server.mjs) serving `filesDir`
 * at `/media/<name>` and accepting `POST /upload` into `uploadDir`.
 * @returns {Promise<{ url: string, pid: number, stop: () => Promise<void> }>}
 */
export async function startBaselineServer({ filesDir, uploadDir, token, logFile, nodeArgs = [] }) {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [...nodeArgs, path.join(HERE, 'baseline-server.mjs'), filesDir, uploadDir, token], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.pipe(log);
  const port = await new Promise((resolve, reject) => {
    let output = '';
    const onExit = (code) => reject(new Error(`baseline server exited with code ${code}; see ${logFile}`));
    child.once('exit', onExit);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening (\d+)/.exec(output);
      if (match) {
        child.off('exit', onExit);
        resolve(Number(match[1]));
      }
    });
  });
  child.stdout.pipe(log);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => stopChild(child) };
}
