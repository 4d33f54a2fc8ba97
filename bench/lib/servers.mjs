/**
 * Starts the servers under test as child processes (so their memory can be
 * read from /proc and they do not share the load generator's event loop).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');

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

/**
 * Starts `apps/media-server/dist/cli.js start` on 127.0.0.1 with SQLite and
 * files under `dataDir` and a static token table. `cli` runs another build
 * (a checkout of an earlier commit, for before/after in one run); `wrapper`
 * runs node under another program (valgrind) with the same process id.
 * @returns {Promise<{ url: string, pid: number, serverName: string, stop: () => Promise<void> }>}
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
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/_matrix/client/versions`, child, logFile, wrapper.length > 0 ? 600_000 : undefined);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return { url, pid: child.pid, serverName, signingKeyPath: path.join(dataDir, 'signing.key'), stop: () => stopChild(child) };
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
